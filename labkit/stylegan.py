"""A StyleGAN-style generator small enough for a CPU (11.3.2.1): each mechanism of Karras et al.

Notebook 07 builds this design in its own cells (the layers, the generator, the discriminator and
the training step); this module keeps one copy for reuse outside the notebook (tests, the seed
study ``experiments/07_few_faces.py``), and ``tests/test_nb07_faces.py`` checks that both build the
same architecture and, with the same weights, the same images. It also holds the notebook's
sampling plumbing (:func:`sample_images`, :func:`images_from_z`, :func:`images_from_ws`,
:func:`discriminate`), which works with either generator.

Generator (StyleGAN, Karras et al. 2019; StyleGAN2, Karras et al. 2020)::

    z (latent_dim) ──mapping MLP──► w ──affine per layer──► styles s
    learned 4x4 constant ─► [modulated 3x3 conv + noise + bias + LeakyReLU] at 4, 8, 16, 32 px ─► toGrey

* **mapping network** z → w: an MLP; w lives in a learned, less entangled space than z;
* **learned constant input**: the image starts from a trained 4x4 tensor, not from z;
* **weight (de)modulation** (StyleGAN2): each layer's style ``s = A(w)`` scales the conv's input
  channels; demodulation divides each output channel by ``sqrt(Σ (w·s)²)`` so unit-variance input
  gives unit-variance output (it replaces AdaIN's instance normalisation);
* **noise inputs**: per-pixel Gaussian noise, scaled per channel by a learned factor, added after
  each conv: stochastic detail (hair strands, skin) without spending latent capacity;
* **style mixing**: layers before ``switch`` take w from one z, later ones from another; used as a
  regulariser in training and to show which layers carry coarse (pose) vs fine (texture) styles;
* **truncation trick**: ``w' = w_avg + ψ (w - w_avg)`` with ``w_avg`` tracked during training;
  ψ < 1 trades diversity for typicality.

:class:`StyleGAN` reuses :class:`labkit.gan.GAN` (optimisers, weight EMA, sampling) and trains
with :func:`labkit.training.fit` like every model of the course; its step adds the non-saturating loss, a lazy R1
penalty and, optionally, DiffAugment (:func:`labkit.augment.diff_augment`) on everything the
discriminator sees. Modulation is implemented the "non-fused" way: scale activations, convolve
with the shared kernel, scale outputs — mathematically the same as per-sample modulated weights
(a unit test compares the two) and cheap on a CPU.
"""
from __future__ import annotations

import numpy as np

from .gan import GAN, to_unit
from .params import ParameterError, check_float, check_int

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

RESOLUTIONS = (4, 8, 16, 32)


def _lrelu(x):
    return tf.nn.leaky_relu(x, 0.2) * np.sqrt(2.0).astype("float32")


# --- layers ----------------------------------------------------------------------------------

@keras.saving.register_keras_serializable("labkit")
class ModulatedConv2D(layers.Layer):
    """A conv whose input channels are scaled per sample by a style ``s = A(w)`` (StyleGAN2).

    ``demodulate=True`` rescales each output channel by ``1 / sqrt(Σ_{k,i} (W_kio s_i)² + ε)``,
    so for unit-variance, independent input the output has unit variance.
    """

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.demodulate = bool(demodulate)

    def build(self, input_shape):
        x_shape, w_shape = input_shape
        in_channels = int(x_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(stddev=1.0))
        # the affine map A: w → style, biased to 1 so training starts from "no modulation"
        self.affine = layers.Dense(in_channels, bias_initializer="ones", name="affine")
        self.affine.build(w_shape)

    def styles(self, w):
        """The per-sample style ``s = A(w)``, shape (N, in_channels)."""
        return self.affine(w)

    def call(self, inputs):
        x, w = inputs
        s = self.styles(w)
        fan_in = self.kernel_size * self.kernel_size * int(x.shape[-1])
        kernel = self.kernel / np.sqrt(fan_in).astype("float32")  # equalised learning rate
        y = tf.nn.conv2d(x * s[:, None, None, :], kernel, 1, "SAME")
        if self.demodulate:
            # Σ_{k,i} (W_kio s_i)² = Σ_i s_i² Σ_k W_kio²   → (N, filters)
            d = tf.math.rsqrt(tf.square(s) @ tf.reduce_sum(tf.square(kernel), axis=[0, 1]) + 1e-8)
            y = y * d[:, None, None, :]
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "demodulate": self.demodulate}


@keras.saving.register_keras_serializable("labkit")
class NoiseInput(layers.Layer):
    """Adds per-pixel Gaussian noise (one map shared by all channels) times a learned per-channel scale."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),), initializer="zeros")

    def call(self, x, noise=None):
        if noise is None:
            shape = tf.concat([tf.shape(x)[:3], [1]], axis=0)
            noise = tf.random.normal(shape)
        return x + noise * self.scale


# --- the generator ---------------------------------------------------------------------------

@keras.saving.register_keras_serializable("labkit")
class StyleGenerator(keras.Model):
    """Mapping network + synthesis network; ``generator(z)`` returns images in about [-1, 1].

    ``channels`` gives the width at 4, 8, 16 and 32 px. There is one modulated conv per
    resolution and a modulated 1x1 toGrey at the end, so ``num_ws = 5`` styles per image.
    """

    def __init__(self, latent_dim: int = 64, w_dim: int = 64, mapping_layers: int = 4,
                 channels=(64, 64, 32, 32), w_avg_beta: float = 0.995, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.w_dim = check_int("w_dim", w_dim, minimum=1)
        self.mapping_layers = check_int("mapping_layers", mapping_layers, minimum=1)
        self.channels = tuple(int(c) for c in channels)
        if len(self.channels) != len(RESOLUTIONS) or min(self.channels) < 1:
            raise ParameterError("channels", channels, f"{len(RESOLUTIONS)} positive widths "
                                 f"(for {', '.join(f'{r} px' for r in RESOLUTIONS)})")
        self.w_avg_beta = check_float("w_avg_beta", w_avg_beta, minimum=0.0, maximum=1.0)
        # one named attribute per layer (not lists): tf.train.Checkpoint tracks attributes only
        for i in range(self.mapping_layers):
            setattr(self, f"mapping_{i}", layers.Dense(self.w_dim, name=f"mapping_{i}"))
        for c, r in zip(self.channels, RESOLUTIONS):
            setattr(self, f"conv_{r}", ModulatedConv2D(c, 3, name=f"conv_{r}"))
            setattr(self, f"noise_{r}", NoiseInput(name=f"noise_{r}"))
        self.to_grey = ModulatedConv2D(1, 1, demodulate=False, name="to_grey")
        self.num_ws = len(RESOLUTIONS) + 1
        # build every weight now, so that a loaded model and an EMA copy have them too
        self.const = self.add_weight(name="const", shape=(1, 4, 4, self.channels[0]),
                                     initializer=keras.initializers.RandomNormal(stddev=1.0))
        for c, r in zip(self.channels, RESOLUTIONS):
            setattr(self, f"bias_{r}", self.add_weight(name=f"bias_{r}", shape=(c,), initializer="zeros"))
        self.w_avg = self.add_weight(name="w_avg", shape=(self.w_dim,), initializer="zeros",
                                     trainable=False)
        self.synthesize(self.map(tf.zeros((1, self.latent_dim))))
        self.built = True

    @property
    def mapping(self):
        """The mapping network's dense layers."""
        return [getattr(self, f"mapping_{i}") for i in range(self.mapping_layers)]

    @property
    def convs(self):
        """The modulated 3x3 convs at 4, 8, 16 and 32 px."""
        return [getattr(self, f"conv_{r}") for r in RESOLUTIONS]

    @property
    def noises(self):
        """The noise inputs after each conv."""
        return [getattr(self, f"noise_{r}") for r in RESOLUTIONS]

    @property
    def biases(self):
        """The bias added after each conv's noise."""
        return [getattr(self, f"bias_{r}") for r in RESOLUTIONS]

    # -- mapping network ------------------------------------------------------------------
    def map(self, z):
        """z → w: normalise z (pixel norm), then the MLP. Shape (N, w_dim)."""
        x = tf.convert_to_tensor(z, tf.float32)
        x = x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + 1e-8)
        for dense in self.mapping:
            x = _lrelu(dense(x))
        return x

    def truncate(self, w, psi: float):
        """The truncation trick: ``w_avg + psi * (w - w_avg)`` (psi = 1: unchanged; 0: the mean)."""
        return self.w_avg + psi * (tf.convert_to_tensor(w, tf.float32) - self.w_avg)

    def broadcast(self, w):
        """One w for every layer: (N, w_dim) → (N, num_ws, w_dim)."""
        return tf.tile(w[:, None, :], [1, self.num_ws, 1])

    def mix(self, w_first, w_second, switch: int):
        """Per-layer ws: layers ``< switch`` from ``w_first``, layers ``>= switch`` from ``w_second``."""
        switch = tf.convert_to_tensor(switch)
        use_second = tf.range(self.num_ws) >= tf.cast(switch, tf.int32)
        return tf.where(use_second[None, :, None], self.broadcast(w_second), self.broadcast(w_first))

    # -- synthesis network ----------------------------------------------------------------
    def noise_shapes(self, n: int):
        """The shapes of the noise maps a batch of ``n`` images uses, one per resolution."""
        return [(n, r, r, 1) for r in RESOLUTIONS]

    def synthesize(self, ws, noise=None):
        """Per-layer ws (N, num_ws, w_dim) (or one w, (N, w_dim)) → images (N, 32, 32, 1).

        ``noise``: a list of noise maps (see :meth:`noise_shapes`); ``None`` draws fresh noise.
        """
        ws = tf.convert_to_tensor(ws, tf.float32)
        if ws.shape.rank == 2:
            ws = self.broadcast(ws)
        n = tf.shape(ws)[0]
        x = tf.tile(self.const, [n, 1, 1, 1])
        for i, (conv, noise_layer, bias) in enumerate(zip(self.convs, self.noises, self.biases)):
            if i > 0:
                x = tf.image.resize(x, [RESOLUTIONS[i]] * 2, method="bilinear")
            x = conv([x, ws[:, i]])
            x = noise_layer(x, None if noise is None else noise[i])
            x = _lrelu(x + bias)
        return self.to_grey([x, ws[:, -1]])

    def call(self, z, training=None):
        return self.synthesize(self.map(z))

    def update_w_avg(self, w):
        """Move the tracked mean w towards the batch mean (called in every generator step)."""
        self.w_avg.assign(self.w_avg_beta * self.w_avg
                          + (1.0 - self.w_avg_beta) * tf.reduce_mean(w, axis=0))

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "w_dim": self.w_dim,
                "mapping_layers": self.mapping_layers, "channels": list(self.channels),
                "w_avg_beta": self.w_avg_beta}


# --- the discriminator -----------------------------------------------------------------------

@keras.saving.register_keras_serializable("labkit")
class MinibatchStd(layers.Layer):
    """Appends one channel: the batch's mean standard deviation (lets D notice a lack of variety)."""

    def call(self, x):
        std = tf.sqrt(tf.math.reduce_variance(x, axis=0) + 1e-8)
        feature = tf.ones_like(x[..., :1]) * tf.reduce_mean(std)
        return tf.concat([x, feature], axis=-1)


def discriminator(channels=(32, 64, 64), image_size: int = 32):
    """A small conv discriminator: 32 → 16 → 8 → 4 px, minibatch std-dev feature, one logit."""
    image = keras.Input((image_size, image_size, 1), name="image")
    x = image
    for i, width in enumerate(channels):
        x = layers.Conv2D(width, 3, padding="same", name=f"conv_{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.AveragePooling2D(2, name=f"down_{i}")(x)
    x = MinibatchStd(name="minibatch_std")(x)
    x = layers.Conv2D(channels[-1], 3, padding="same", name="conv_out")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(channels[-1], name="dense")(x)
    x = layers.LeakyReLU(0.2)(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(image, logit, name="stylegan_discriminator")


# --- the GAN ---------------------------------------------------------------------------------

class StyleGAN(GAN):
    """A :class:`StyleGenerator`, a discriminator and the StyleGAN2 training step.

    * loss: non-saturating logistic, ``D: softplus(D(fake)) + softplus(-D(real))``, ``G: softplus(-D(fake))``;
    * lazy R1 (Mescheder et al. 2018): ``gamma/2 ||∇_x D(x_real)||²`` every ``r1_every`` steps, scaled up;
    * style mixing: a share ``mixing`` of each batch mixes two ws at a random switch layer;
    * ``diffaugment``: transforms (e.g. ``"translation,cutout,brightness,contrast"``) applied with
      :func:`labkit.augment.diff_augment` to real *and* fake images whenever D sees them, in both
      steps, so gradients reach G through the augmentation; ``None`` or ``""`` trains without.
    """

    def __init__(self, generator: StyleGenerator, discriminator, learning_rate: float = 2e-3,
                 beta_1: float = 0.0, beta_2: float = 0.99, r1_gamma: float = 0.1, r1_every: int = 4,
                 mixing: float = 0.9, diffaugment: str | None = "translation,cutout,brightness,contrast",
                 ema: float | None = 0.99, jit_compile: bool = False):
        from .augment import check_diff_augment

        super().__init__(generator, discriminator, latent_dim=generator.latent_dim,
                         learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, ema=ema,
                         jit_compile=jit_compile, r1_gamma=r1_gamma, real_label=1.0)
        self.r1_every = check_int("r1_every", r1_every, minimum=1)
        self.mixing = check_float("mixing", mixing, minimum=0.0, maximum=1.0)
        self.diffaugment = check_diff_augment(diffaugment)

    def clone_generator(self):
        """A fresh :class:`StyleGenerator` with the same configuration (for the EMA generator)."""
        return StyleGenerator.from_config(self.generator.get_config())

    def augment(self, images, seed=None):
        """DiffAugment (or nothing) on a batch in [-1, 1]; ``seed``: a stateless seed."""
        from .augment import diff_augment

        return diff_augment(images, self.diffaugment, seed=seed) if self.diffaugment else images

    def _mixed_ws(self, noise, seed):
        g = self.generator
        w = g.map(noise)
        w_other = tf.roll(w, shift=1, axis=0)           # another sample's w from the same batch
        switch = tf.random.stateless_uniform([], _fold(seed, 0), 1, g.num_ws, dtype=tf.int32)
        mixed = g.mix(w, w_other, switch)
        use = tf.random.stateless_uniform([tf.shape(w)[0], 1, 1], _fold(seed, 1)) < self.mixing
        return tf.where(use, mixed, g.broadcast(w)), w

    def _noise_maps(self, n: int, seed):
        return [tf.random.stateless_normal(shape, _fold(seed, i))
                for i, shape in enumerate(self.generator.noise_shapes(n))]

    def train_step(self, batch):
        """One D update (with lazy R1) and one G update; every random draw keyed by (seed, step)."""
        g, d = self.generator, self.discriminator
        real_images, noise = batch["images"], batch["noise"]
        n = real_images.shape[0]
        seed = self.random_seed()
        ws, _ = self._mixed_ws(noise, _fold(seed, 1))
        with tf.GradientTape() as tape:
            fake = g.synthesize(ws, self._noise_maps(n, _fold(seed, 2)))
            real_logits = d(self.augment(real_images, _fold(seed, 3)), training=True)
            fake_logits = d(self.augment(fake, _fold(seed, 4)), training=True)
            d_loss = tf.reduce_mean(tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits))
            loss = d_loss + tf.cond(tf.equal(self.step % self.r1_every, 0),
                                    lambda: self.r1_penalty(real_images, _fold(seed, 5)) * self.r1_every,
                                    lambda: tf.constant(0.0))
        grads = tape.gradient(loss, d.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, d.trainable_variables))
        with tf.GradientTape() as tape:
            ws, w = self._mixed_ws(noise, _fold(seed, 6))
            fake = g.synthesize(ws, self._noise_maps(n, _fold(seed, 7)))
            fake_logits = d(self.augment(fake, _fold(seed, 8)), training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
        grads = tape.gradient(g_loss, g.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, g.trainable_variables))
        g.update_w_avg(w)
        self.update_ema()
        return {"d_loss": d_loss, "g_loss": g_loss}

    def r1_penalty(self, real_images, seed=None):
        """``gamma / 2 * E ||∇_x D(x)||²`` on (augmented) real images."""
        x = self.augment(real_images, seed)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.reduce_sum(self.discriminator(x, training=True))
        grad = tape.gradient(logits, x)
        return 0.5 * self.r1_gamma * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))

    def _generator(self, averaged):
        return self.ema_generator if averaged and self.ema_generator is not None else self.generator

    def generate(self, noise, labels=None, batch_size: int = 1000, averaged: bool = True,
                 psi: float = 1.0, noise_seed: int | None = 0, shared_noise: bool = False) -> np.ndarray:
        """Images in [0, 1] (N, 32, 32) from latent vectors z; ``psi`` < 1 truncates in w.

        ``noise_seed`` fixes the per-layer noise maps (``None``: fresh random noise);
        ``shared_noise=True`` gives every image the same maps, so only the styles differ.
        """
        g = self._generator(averaged)
        z = np.asarray(noise, dtype=np.float32).reshape(-1, self.latent_dim)
        w = g.truncate(g.map(z), psi)
        return self.synthesize(g.broadcast(w), noise_seed=noise_seed, batch_size=batch_size,
                               averaged=averaged, shared_noise=shared_noise)

    def synthesize(self, ws, noise_seed: int | None = 0, batch_size: int = 1000,
                   averaged: bool = True, shared_noise: bool = False) -> np.ndarray:
        """Images in [0, 1] from per-layer ws (N, num_ws, w_dim), with seeded noise maps."""
        return images_from_ws(self._generator(averaged), ws, noise_seed=noise_seed,
                              shared_noise=shared_noise, batch_size=batch_size)

    def discriminate(self, images, batch_size: int = 500) -> np.ndarray:
        """The discriminator's logits on images in [0, 1] (no augmentation)."""
        return discriminate(self.discriminator, images, batch_size)


# --- sampling plumbing (any generator with map / broadcast / synthesize / noise_shapes / w_avg) ----

def default_truncate(w, w_avg, psi):
    """The truncation trick ``w_avg + psi * (w - w_avg)``."""
    return w_avg + psi * (w - w_avg)


def images_from_ws(generator, ws, noise_seed: int | None = 0, shared_noise: bool = False,
                   batch_size: int = 1000) -> np.ndarray:
    """Images in [0, 1] (N, S, S) from per-layer ws (N, num_ws, w_dim), with noise maps from ``noise_seed``.

    ``shared_noise=True`` gives every image the same noise maps, so only the styles differ;
    ``noise_seed=None`` draws fresh noise.
    """
    ws = np.asarray(ws, np.float32)
    if ws.ndim == 2:
        ws = np.asarray(generator.broadcast(ws))
    rng = np.random.default_rng(noise_seed)
    one = [rng.standard_normal(s).astype(np.float32) for s in generator.noise_shapes(1)]
    out = []
    for start in range(0, len(ws), batch_size):
        chunk = ws[start:start + batch_size]
        if shared_noise:
            noise = [np.repeat(m, len(chunk), axis=0) for m in one]
        else:
            noise = [rng.standard_normal(s).astype(np.float32) for s in generator.noise_shapes(len(chunk))]
        out.append(np.asarray(generator.synthesize(chunk, noise)))
    return to_unit(np.concatenate(out))


def images_from_z(generator, z, psi: float = 1.0, truncate=None, noise_seed: int | None = 0,
                  shared_noise: bool = False, batch_size: int = 1000) -> np.ndarray:
    """Images in [0, 1] from latent vectors z: map to w, truncate towards ``generator.w_avg`` by ``psi``."""
    z = np.asarray(z, np.float32).reshape(-1, generator.latent_dim)
    w = np.asarray(generator.map(z))
    if psi != 1.0:
        w = np.asarray((truncate or default_truncate)(w, np.asarray(generator.w_avg), psi), np.float32)
    return images_from_ws(generator, w, noise_seed=noise_seed, shared_noise=shared_noise, batch_size=batch_size)


def sample_images(generator, n: int, seed: int = 0, psi: float = 1.0, truncate=None) -> np.ndarray:
    """``n`` images in [0, 1] from z ~ N(0, I) drawn with ``seed`` (noise maps from the same seed)."""
    z = np.random.default_rng(seed).normal(size=(check_int("n", n, minimum=1), generator.latent_dim))
    return images_from_z(generator, z.astype(np.float32), psi=psi, truncate=truncate, noise_seed=seed)


def discriminate(discriminator, images, batch_size: int = 500) -> np.ndarray:
    """A discriminator's logits on images in [0, 1] (N, S, S) (no augmentation)."""
    x = np.asarray(images, np.float32)[..., None] * 2.0 - 1.0
    return np.concatenate([np.asarray(discriminator(x[i:i + batch_size], training=False))[:, 0]
                           for i in range(0, len(x), batch_size)])


def _fold(seed, k: int):
    """A distinct stateless sub-seed ``k`` of ``seed``."""
    return tf.random.experimental.stateless_fold_in(seed, k)


def build(latent_dim: int = 64, w_dim: int = 64, channels=(64, 64, 32, 32), d_channels=(32, 64, 64),
          seed: int = 0, **gan_kwargs) -> StyleGAN:
    """A fresh :class:`StyleGAN` with seeded weights; ``gan_kwargs`` go to :class:`StyleGAN`."""
    keras.utils.set_random_seed(seed)
    generator = StyleGenerator(latent_dim=latent_dim, w_dim=w_dim, channels=channels)
    return StyleGAN(generator, discriminator(d_channels), **gan_kwargs)
