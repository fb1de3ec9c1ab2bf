"""Generative adversarial networks for 28x28 digits: models, one training step, a resumable loop.

Three families, all producing images in [-1, 1] (``tanh``; map to [0, 1] with ``to_unit``):

* ``dense_generator`` / ``dense_discriminator`` — the chapter's small fully connected GAN;
* ``dcgan_generator`` / ``dcgan_discriminator`` — convolutional (DCGAN, Radford et al. 2016);
  pass ``num_classes`` to make them class-conditional (cGAN, Mirza & Osindero 2014).

:class:`GAN` (a :class:`labkit.training.Model`) holds a generator, a discriminator and their
optimisers; :meth:`GAN.train_step` is the whole algorithm in a dozen lines. :func:`labkit.training.fit`
runs it for a number of steps with a progress bar, a checkpoint that an interrupted run resumes
from, and callbacks for sample snapshots and evaluations. Batches and noise are drawn from
``(seed, step)``, so a resumed run continues exactly where it stopped.
"""
from __future__ import annotations

import numpy as np

from .params import check_float, check_int
from .training import Model

import keras  # noqa: E402  (labkit's __init__ has quietened TensorFlow already)
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


def to_unit(images) -> np.ndarray:
    """Map generator output in [-1, 1] to images in [0, 1], shape (N, 28, 28)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)


def to_tanh(images) -> np.ndarray:
    """Map images in [0, 1] (N, 28, 28) to the generator's range [-1, 1], shape (N, 28, 28, 1)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    return x * 2.0 - 1.0


# --- models ----------------------------------------------------------------------------------

def dcgan_generator(latent_dim: int = 64, width: int = 64, num_classes: int | None = None):
    """z (and a class label) → Dense 7x7x2w → [ConvT stride 2 → BN → ReLU] → ConvT → 28x28x1 tanh."""
    z = keras.Input((latent_dim,), name="z")
    inputs, x = [z], z
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        x = layers.Concatenate()([z, layers.Embedding(num_classes, 16)(label)])
    x = layers.Dense(7 * 7 * 2 * width, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((7, 7, 2 * width))(x)
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)  # 14x14
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    image = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh")(x)  # 28x28
    name = "cgan_generator" if num_classes else "dcgan_generator"
    return keras.Model(inputs if num_classes else z, image, name=name)


def dcgan_discriminator(width: int = 64, num_classes: int | None = None):
    """image → [Conv stride 2 → LeakyReLU] x2 → Dense 1 logit.

    Conditional (``num_classes``): the label enters as an extra image channel (a learned 28x28 map
    per class) and again at the output as a projection term <embed(y), h> (Miyato & Koyama 2018),
    which keeps the generator from drifting away from the requested class.
    """
    image = keras.Input((28, 28, 1), name="image")
    inputs, x = [image], image
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        plane = layers.Reshape((28, 28, 1))(layers.Embedding(num_classes, 28 * 28)(label))
        x = layers.Concatenate()([image, plane])
    x = layers.Conv2D(width, 4, strides=2, padding="same")(x)  # 14x14
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(2 * width, 4, strides=2, padding="same")(x)  # 7x7
    x = layers.LeakyReLU(0.2)(x)
    h = layers.Flatten()(x)
    logit = layers.Dense(1)(h)
    if num_classes:
        projection = layers.Dot(axes=1)([h, layers.Embedding(num_classes, h.shape[-1])(label)])
        logit = layers.Add()([logit, projection])
    name = "cgan_discriminator" if num_classes else "dcgan_discriminator"
    return keras.Model(inputs if num_classes else image, logit, name=name)


# --- the algorithm ------------------------------------------------------------------------------

bce = keras.losses.BinaryCrossentropy(from_logits=True)


class GAN(Model):
    """A generator, a discriminator, their Adam optimisers and one training step (a ``training.Model``).

    Train it with :func:`labkit.training.fit`: ``fit(gan, images, steps)`` (images in [0, 1]) or
    ``fit(gan, (images, labels), steps)`` for a conditional GAN. Each step draws its batch and its
    noise on the host from ``(seed, step)`` (:meth:`draw_batch`), so a resumed run continues exactly.

    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016): the discriminator is
    asked for 0.9 instead of 1 on real images, so it cannot become over-confident.

    ``r1_gamma`` > 0 adds the R1 gradient penalty (Mescheder et al. 2018) to the discriminator's
    loss, ``r1_gamma / 2 * E ||grad_x D(x)||^2`` on real images: D may not change steeply around
    the real digits, so it cannot push the generator away from the parts of the data it has not
    covered yet. It costs an extra forward and backward pass through D per step (20-40% more
    time per step for notebook 04's DCGAN); the default (0) is off. ``r1_batch`` computes it on
    the first ``r1_batch`` real images of each batch only (a random subset, so the same expectation,
    estimated with more noise) and makes that pass cheaper; ``None`` uses the whole batch.
    (StyleGAN2's "lazy" R1, every k-th step inside ``tf.cond``, was about three times *slower* per
    step than this under XLA on a CPU, so it is not offered here.)
    """

    def __init__(self, generator, discriminator, latent_dim: int, num_classes: int | None = None,
                 learning_rate: float = 2e-4, beta_1: float = 0.5, real_label: float = 0.9,
                 d_learning_rate: float | None = None, ema: float | None = 0.999,
                 jit_compile: bool = False, r1_gamma: float = 0.0, beta_2: float = 0.999,
                 r1_batch: int | None = None):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.num_classes = num_classes
        self.real_label = check_float("real_label", real_label, minimum=0.5, maximum=1.0)
        lr = check_float("learning_rate", learning_rate, minimum=1e-8)
        d_lr = lr if d_learning_rate is None else check_float("d_learning_rate", d_learning_rate,
                                                              minimum=1e-8)
        self.g_optimizer = keras.optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2)
        self.d_optimizer = keras.optimizers.Adam(d_lr, beta_1=beta_1, beta_2=beta_2)
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        self.r1_gamma = check_float("r1_gamma", r1_gamma, minimum=0.0)
        self.r1_batch = None if r1_batch is None else check_int("r1_batch", r1_batch, minimum=1)
        # An exponential moving average (EMA) of the generator's weights: a smoother generator
        # for sampling, free to compute (Yazici et al. 2019). ``ema=None`` samples the raw one.
        self.ema = None if ema is None else check_float("ema", ema, minimum=0.0, maximum=1.0)
        self.ema_generator = None
        if self.ema is not None:
            self.ema_generator = self.clone_generator()
            self.ema_generator.set_weights(generator.get_weights())
        # XLA compilation (``jit_compile``) makes a CPU step ~20% faster after a few seconds' compile.
        self.train_jit_compile = bool(jit_compile)

    def checkpoint_params(self):
        """Settings in plain attributes that change training: they join the checkpoint key."""
        return {"real_label": self.real_label, "r1_gamma": self.r1_gamma, "r1_batch": self.r1_batch,
                "ema": self.ema}

    def clone_generator(self):
        """A fresh copy of the generator's architecture (for the EMA generator)."""
        return keras.models.clone_model(self.generator)

    def _inputs(self, x, labels):
        return [x, labels] if self.num_classes else x

    def draw_batch(self, data, rng, batch_size):
        """Real images (in [-1, 1]), their labels and the generator's noise for one step, from ``rng``."""
        images, labels = data if isinstance(data, (tuple, list)) else (data, None)
        if self.num_classes and labels is None:
            raise ValueError("a conditional GAN needs labels: fit(gan, (images, labels), ...)")
        index = rng.integers(0, len(images), batch_size)
        noise = rng.standard_normal((batch_size, self.latent_dim), dtype=np.float32)
        return {"images": to_tanh(np.asarray(images)[index]), "noise": noise,
                "labels": (np.zeros(batch_size, np.int32) if labels is None
                           else np.asarray(labels, np.int32)[index])}

    def train_step(self, batch):
        """One discriminator update on real and fake, then one generator update (and the EMA)."""
        real_images, labels, noise = batch["images"], batch["labels"], batch["noise"]
        batch_size = tf.shape(real_images)[0]
        # 1) discriminator: real images → "real" (label smoothed), generated images → "fake" (0)
        with tf.GradientTape() as tape:
            fake_images = self.generator(self._inputs(noise, labels), training=True)
            real_logits = self.discriminator(self._inputs(real_images, labels), training=True)
            fake_logits = self.discriminator(self._inputs(fake_images, labels), training=True)
            d_loss = (bce(tf.fill([batch_size, 1], self.real_label), real_logits)
                      + bce(tf.zeros([batch_size, 1]), fake_logits))
            # optional: the R1 penalty on real images (``r1_gamma``, off by default)
            n = self.r1_batch  # R1 on the first n real images (None: all)
            loss = (d_loss + self.r1_penalty(real_images[:n], labels[:n])) if self.r1_gamma > 0 else d_loss
        grads = tape.gradient(loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        # 2) generator: make the discriminator say "real" (1) on new fakes. Only the generator's
        #    weights are updated: this is what "freezing the discriminator" means.
        with tf.GradientTape() as tape:
            fake_images = self.generator(self._inputs(noise, labels), training=True)
            fake_logits = self.discriminator(self._inputs(fake_images, labels), training=True)
            g_loss = bce(tf.ones([batch_size, 1]), fake_logits)
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self.update_ema()
        return {"d_loss": d_loss, "g_loss": g_loss}

    def r1_penalty(self, real_images, labels=None):
        """``r1_gamma / 2 * E ||grad_x D(x)||^2`` over real images ``x`` (the gradient of the logit)."""
        with tf.GradientTape() as tape:
            tape.watch(real_images)
            logits = tf.reduce_sum(self.discriminator(self._inputs(real_images, labels), training=True))
        grad = tape.gradient(logits, real_images)
        squared_norm = tf.reduce_sum(tf.square(grad), axis=tf.range(1, tf.rank(grad)))
        return 0.5 * self.r1_gamma * tf.reduce_mean(squared_norm)

    def update_ema(self):
        """Move the EMA generator towards the live one (warm-up: about the last min(step, 1/(1-ema)) steps)."""
        if self.ema_generator is None:
            return
        step = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.ema, (1.0 + step) / (10.0 + step))
        for avg, live in zip(self.ema_generator.trainable_variables, self.generator.trainable_variables):
            avg.assign(decay * avg + (1.0 - decay) * live)
        for avg, live in zip(self.ema_generator.non_trainable_variables,
                             self.generator.non_trainable_variables):
            avg.assign(live)  # batch-norm statistics: copied

    def sample(self, n: int, labels=None, seed: int = 0, batch_size: int = 1000,
               averaged: bool = True) -> np.ndarray:
        """``n`` generated images in [0, 1], shape (n, 28, 28); ``labels`` for a conditional GAN."""
        n = check_int("n", n, minimum=1)
        if self.num_classes:
            if labels is None:
                labels = np.arange(n) % self.num_classes
            labels = np.asarray(labels, dtype=np.int32)
            if labels.shape != (n,) or labels.min() < 0 or labels.max() >= self.num_classes:
                raise ValueError(f"labels must be {n} integers in 0..{self.num_classes - 1}")
        noise = np.random.default_rng(seed).normal(size=(n, self.latent_dim)).astype(np.float32)
        return self.generate(noise, labels, batch_size, averaged)

    def generate(self, noise, labels=None, batch_size: int = 1000, averaged: bool = True) -> np.ndarray:
        """Images in [0, 1] (N, 28, 28) from latent vectors (and labels); EMA generator if any."""
        generator = self.ema_generator if averaged and self.ema_generator is not None else self.generator
        noise = np.asarray(noise, dtype=np.float32).reshape(-1, self.latent_dim)
        out = []
        for start in range(0, len(noise), batch_size):
            z = noise[start:start + batch_size]
            inputs = [z, np.asarray(labels[start:start + batch_size], np.int32)] if self.num_classes else z
            out.append(generator(inputs, training=False).numpy())
        return to_unit(np.concatenate(out))


def plot_losses(history, window: int = 50, title: str | None = None):
    """Discriminator and generator losses per step, smoothed over ``window`` steps."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for name in ("d_loss", "g_loss"):
        values = np.asarray(history[name], dtype=float)
        w = max(1, min(window, len(values)))
        smooth = np.convolve(values, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, len(values) + 1), smooth,
                label={"d_loss": "discriminator", "g_loss": "generator"}[name])
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss (mean of {window} steps)")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
