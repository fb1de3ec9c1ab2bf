"""Variational autoencoders for binarised digits: encoder, decoder, ELBO, IWAE, training.

The model (Kingma & Welling 2014):

* prior          p(z) = N(0, I)
* decoder        p(x | z) = Bernoulli(sigmoid(logits(z)))  for each of the 784 pixels
* encoder        q(z | x) = N(mean(x), diag(exp(log_var(x))))

and its training objective, the evidence lower bound (ELBO), per image::

    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))   <=   log p(x)
    KL      = -1/2 * sum_j (1 + log_var_j - mean_j**2 - exp(log_var_j))

The importance-weighted bound (Burda et al. 2016) with k samples z_i ~ q(z | x)::

    IWAE_k(x) = log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)

equals the ELBO in expectation for k = 1 and rises towards log p(x) as k grows.

A learned prior, the VampPrior (Tomczak & Welling 2018), replaces N(0, I) by the average of the
encoder's posteriors at K learned pseudo-images, p(z) = (1/K) sum_k q(z | u_k); its KL term has no
closed form and is estimated from the same draw of z. Functions that evaluate a model take
``prior=None`` (the standard normal) or a :class:`VampPrior`.
Everything is in nats (natural logarithm), summed over the 784 pixels of one image.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from .params import check_float, check_int
from .training import Model

import keras  # noqa: E402  (labkit's __init__ has quietened TensorFlow already)
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

LOG_2PI = math.log(2.0 * math.pi)
IMAGE_SHAPE = (28, 28, 1)
TEST_BINARIZATION_SEED = 2016  # one fixed Bernoulli draw for the held-out digits


# --- data ----------------------------------------------------------------------------------

def binarize(images, seed: int = TEST_BINARIZATION_SEED) -> np.ndarray:
    """Stochastic binarisation: each pixel is 1 with probability equal to its grey level in [0, 1].

    The published MNIST log-likelihoods use test digits binarised once this way with a fixed
    draw; the same ``seed`` gives the same binary images.
    """
    images = np.asarray(images, dtype="float32")
    if images.size and (np.isnan(images).any() or images.min() < 0.0 or images.max() > 1.0):
        raise ValueError("binarize expects grey levels in [0, 1] (divide 0-255 images by 255 first)")
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype="float32") < images).astype("float32")


def as_images(x) -> np.ndarray:
    """(N, 28, 28), (N, 784) or (N, 28, 28, 1) → float32 (N, 28, 28, 1)."""
    x = np.asarray(x, dtype="float32")
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {x.shape}")
    return x


# --- the networks --------------------------------------------------------------------------

def build_encoder(latent_dim: int = 32, hidden=(512, 256), name: str = "encoder") -> keras.Model:
    """q(z | x): image (N, 28, 28, 1) in [0, 1] → [mean, log_var], each (N, latent_dim)."""
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    images = keras.Input(shape=IMAGE_SHAPE, name="image")
    h = layers.Flatten()(images)
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
    mean = layers.Dense(latent_dim, name="mean")(h)
    log_var = layers.Dense(latent_dim, name="log_var")(h)
    return keras.Model(images, [mean, log_var], name=name)


def build_decoder(latent_dim: int = 32, hidden=(256, 512), name: str = "decoder") -> keras.Model:
    """p(x | z): latent (N, latent_dim) → Bernoulli logits (N, 28, 28, 1); sigmoid gives pixel means."""
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(hidden):
        h = layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
    logits = layers.Dense(int(np.prod(IMAGE_SHAPE)), name="logits")(h)
    return keras.Model(z, layers.Reshape(IMAGE_SHAPE, name="image_logits")(logits), name=name)


# --- the pieces of the ELBO ----------------------------------------------------------------

def reparameterize(mean, log_var, eps):
    """z = mean + sigma * eps with eps ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    return mean + tf.exp(0.5 * log_var) * eps


def kl_standard_normal(mean, log_var):
    """KL( N(mean, diag(exp(log_var))) || N(0, I) ) in closed form, summed over the last axis."""
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def bernoulli_log_likelihood(x, logits):
    """log p(x | z) = sum over pixels of x log p + (1 - x) log(1 - p), p = sigmoid(logits)."""
    per_pixel = -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)  # stable form
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


def gaussian_log_density(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))) summed over the last axis (mean = log_var = 0: the prior)."""
    return -0.5 * tf.reduce_sum(LOG_2PI + log_var + tf.square(z - mean) * tf.exp(-log_var), axis=-1)


class VampPrior:
    """p(z) = (1/K) sum_k q(z | u_k): a mixture of the encoder's posteriors at K pseudo-images u_k.

    Tomczak & Welling (2018), "VAE with a VampPrior". The pseudo-images are learned with the rest
    of the model (see :class:`VAE`); the prior then sits where the encoder actually puts real
    digits, instead of pulling every code towards N(0, I).
    """

    def __init__(self, encoder, pseudo_inputs):
        self.encoder = encoder
        self.pseudo_inputs = pseudo_inputs                    # (K, 28, 28, 1) in [0, 1]
        self._fixed = None

    def frozen(self) -> "VampPrior":
        """The same prior with its components computed once (for evaluation: no re-encoding)."""
        prior = VampPrior(self.encoder, self.pseudo_inputs)
        prior._fixed = tuple(tf.constant(a) for a in self.components())
        return prior

    @property
    def size(self) -> int:
        return int(self.pseudo_inputs.shape[0])

    def components(self):
        """(means, log_vars) of the K mixture components, each (K, latent_dim)."""
        if self._fixed is not None:
            return self._fixed
        return self.encoder(self.pseudo_inputs, training=False)

    def log_prob(self, z):
        """log p(z) for codes z (..., latent_dim): a log-mean-exp over the K components."""
        mean, log_var = self.components()
        per_component = gaussian_log_density(z[..., None, :], mean, log_var)    # (..., K)
        return tf.reduce_logsumexp(per_component, axis=-1) - math.log(self.size)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n codes drawn from the mixture: a component uniformly at random, then its Gaussian."""
        mean, log_var = (np.asarray(a) for a in self.components())
        rng = np.random.default_rng(seed)
        k = rng.integers(0, self.size, size=n)
        eps = rng.standard_normal((n, mean.shape[1])).astype("float32")
        return (mean[k] + np.exp(0.5 * log_var[k]) * eps).astype("float32")


def log_prior(z, prior=None):
    """log p(z): the standard normal N(0, I) when ``prior`` is None, else ``prior.log_prob``."""
    return gaussian_log_density(z, 0.0, 0.0) if prior is None else prior.log_prob(z)


def kl_term(mean, log_var, z, prior=None):
    """The ELBO's KL(q(z|x) || p(z)): closed form for N(0, I); for another prior the one-draw
    estimate log q(z|x) - log p(z) at the code z that was drawn from q (unbiased)."""
    if prior is None:
        return kl_standard_normal(mean, log_var)
    return gaussian_log_density(z, mean, log_var) - prior.log_prob(z)


# --- the model that trains -----------------------------------------------------------------

@keras.saving.register_keras_serializable(package="labkit")
class VAE(Model):
    """Encoder + decoder trained on -ELBO, with a weight ``beta`` on the KL term (beta-VAE).

    A :class:`labkit.training.Model`: :func:`fit` (epochs) or :func:`labkit.training.fit` (steps)
    trains it. Each epoch visits the training images in a fresh order drawn from ``(seed, epoch)``.

    With ``dynamic_binarization`` every training batch is binarised afresh each time it is seen
    (the usual protocol for binarised MNIST; it also acts as data augmentation).
    With ``num_pseudo_inputs`` = K > 0 the prior is a :class:`VampPrior` whose K pseudo-images are
    weights of this model (stored as logits, so the images stay in [0, 1]), learned with the rest.
    """

    def __init__(self, encoder, decoder, beta=1.0, dynamic_binarization=True, seed=0,
                 num_pseudo_inputs=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.beta = check_float("beta", beta, minimum=0.0)
        self.kl_weight = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.beta),
                                         trainable=False, name="kl_weight")   # beta; the warm-up ramps it
        self.dynamic_binarization = bool(dynamic_binarization)
        self.num_pseudo_inputs = check_int("num_pseudo_inputs", num_pseudo_inputs, minimum=0)
        self.pseudo_logits = None
        if self.num_pseudo_inputs:
            self.pseudo_logits = self.add_weight(shape=(self.num_pseudo_inputs,) + IMAGE_SHAPE,
                                                 initializer="zeros", name="pseudo_logits")
        self.seed_generator = keras.random.SeedGenerator(seed)   # its state is checkpointed
        self.steps_per_epoch, self.kl_warmup_epochs = 1, 0          # set by :func:`fit`
        self._order = (None, None)

    @property
    def prior(self):
        """None for N(0, I), else the :class:`VampPrior` at the current pseudo-images."""
        if self.pseudo_logits is None:
            return None
        return VampPrior(self.encoder, tf.sigmoid(self.pseudo_logits))

    def set_pseudo_inputs(self, images):
        """Start the VampPrior's pseudo-images from ``images`` (K grey images in [0, 1])."""
        images = np.clip(as_images(images), 0.02, 0.98)
        if self.pseudo_logits is None or len(images) != self.num_pseudo_inputs:
            raise ValueError(f"this VAE has {self.num_pseudo_inputs} pseudo-inputs, got {len(images)} images")
        self.pseudo_logits.assign(np.log(images / (1.0 - images)))

    def pseudo_inputs(self) -> np.ndarray:
        """The learned pseudo-images, (K, 28, 28) in [0, 1]."""
        return tf.sigmoid(self.pseudo_logits).numpy()[..., 0]

    def checkpoint_params(self) -> dict:
        return {"steps_per_epoch": self.steps_per_epoch, "kl_warmup_epochs": self.kl_warmup_epochs,
                "beta": self.beta, "dynamic_binarization": self.dynamic_binarization}

    def draw_batch(self, data, rng, batch_size):
        """The next batch of an epoch-wise shuffle: epoch ``e`` visits the images in an order from ``(seed, e)``."""
        epoch, i = divmod(int(self.step.numpy()), self.steps_per_epoch)
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.run_seed, epoch, 7]).permutation(len(data)))
        return data[self._order[1][i * batch_size:(i + 1) * batch_size]]

    def call(self, x, training=False):
        """Reconstruction logits, decoding the mean of q(z|x)."""
        mean, _ = self.encoder(x, training=training)
        return self.decoder(mean, training=training)

    def losses_of(self, x, training=False):
        """The ELBO's two terms for a batch of binary images, and the loss to minimise."""
        mean, log_var = self.encoder(x, training=training)
        eps = keras.random.normal(tf.shape(mean), seed=self.seed_generator)
        z = reparameterize(mean, log_var, eps)                        # the reparameterisation trick
        recon = bernoulli_log_likelihood(x, self.decoder(z, training=training))  # log p(x|z)
        kl = kl_term(mean, log_var, z, self.prior)                    # KL(q(z|x) || p(z))
        loss = tf.reduce_mean(self.kl_weight * kl - recon)            # -ELBO when the weight is 1
        return loss, recon, kl

    def train_step(self, data):
        """One Adam step on -ELBO (KL weight ramped by the warm-up); returns loss, recon cost and KL."""
        x = data[0] if isinstance(data, tuple) else data
        if self.kl_warmup_epochs:   # KL warm-up: beta * min(1, epoch / warm-up epochs)
            epoch = tf.cast(self.step // self.steps_per_epoch, tf.float32)
            self.kl_weight.assign(self.beta * tf.minimum(1.0, epoch / self.kl_warmup_epochs))
        if self.dynamic_binarization:                                 # a fresh binary image each time
            x = tf.cast(keras.random.uniform(tf.shape(x), seed=self.seed_generator) < x, x.dtype)
        with tf.GradientTape() as tape:
            loss, recon, kl = self.losses_of(x, training=True)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss, "recon": -tf.reduce_mean(recon), "kl": tf.reduce_mean(kl)}  # recon as a cost

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "beta": self.beta, "dynamic_binarization": self.dynamic_binarization,
                "num_pseudo_inputs": self.num_pseudo_inputs}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def make_vae(latent_dim: int = 32, hidden=(512, 256), beta: float = 1.0, learning_rate: float = 1e-3,
             dynamic_binarization: bool = True, seed: int = 0, decay_steps: int | None = None,
             pseudo_inputs=None, jit_compile: bool = True) -> VAE:
    """A compiled VAE (encoder with ``hidden`` layers, the decoder its mirror image), ready to fit.

    With ``decay_steps`` (training steps = epochs * batches per epoch) the learning rate follows a
    cosine from ``learning_rate`` down to 1% of it; small steps at the end settle the weights.
    With ``pseudo_inputs`` (K grey images in [0, 1], e.g. K training digits) the prior is a
    VampPrior whose pseudo-images start from them. ``jit_compile`` compiles the training step
    with XLA (about 1.7x faster on a CPU).
    """
    k = 0 if pseudo_inputs is None else len(pseudo_inputs)
    vae = VAE(build_encoder(latent_dim, hidden), build_decoder(latent_dim, tuple(reversed(hidden))),
              beta=beta, dynamic_binarization=dynamic_binarization, seed=seed, num_pseudo_inputs=k)
    rate = check_float("learning_rate", learning_rate, minimum=0.0)
    if decay_steps is not None:
        rate = keras.optimizers.schedules.CosineDecay(
            rate, check_int("decay_steps", decay_steps, minimum=1), alpha=0.01)
    vae.compile(optimizer=keras.optimizers.Adam(rate))
    vae.train_jit_compile = bool(jit_compile)
    vae(np.zeros((1,) + IMAGE_SHAPE, dtype="float32"))              # build: a checkpoint needs the variables
    if k:
        vae.set_pseudo_inputs(pseudo_inputs)
    return vae


def fit(vae: VAE, x_train, epochs: int, batch_size: int = 100, validation_data=None,
        checkpoint_dir=None, callbacks=(), seed: int = 0, kl_warmup: int = 0,
        checkpoint_every: int = 10, desc: str = "VAE", show_progress: bool = True) -> dict:
    """Train ``vae`` for ``epochs`` on grey images in [0, 1] (binarised on the fly) with :func:`labkit.training.fit`.

    Returns the per-epoch history: ``loss``, ``recon`` (the cost -log p(x|z)), ``kl`` (means over
    the epoch's batches) and, with ``validation_data`` (binary images), ``val_*`` at each epoch's
    end; plus ``seconds`` (training time, the original one when a finished run is restored).
    ``checkpoint_dir``: a checkpoint every ``checkpoint_every`` epochs, exact resume, full history
    on a re-run. ``kl_warmup`` = N > 0 ramps the KL weight from 0 to beta over the first N epochs
    (Bowman et al. 2016; Sønderby et al. 2016): early on the decoder is poor and the KL term alone
    would push every q(z|x) onto the prior, switching latent units off for good; ``loss`` is then
    the weighted loss, not yet -ELBO, during those epochs. ``callbacks``: labkit training callbacks.
    """
    from . import training

    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    x_train = as_images(x_train)
    if x_train.min() < 0 or x_train.max() > 1:
        raise ValueError("x_train must hold grey levels in [0, 1]")
    vae.steps_per_epoch = -(-len(x_train) // batch_size)
    vae.kl_warmup_epochs = check_int("kl_warmup", kl_warmup, minimum=0)
    cbs = list(callbacks)
    if validation_data is not None:
        cbs.append(training.Evaluate(partial(validation_losses, x=as_images(validation_data), seed=seed),
                                     every=vae.steps_per_epoch, key="validation"))
    history = training.fit(vae, x_train, epochs * vae.steps_per_epoch, batch_size=batch_size, seed=seed,
                           checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every * vae.steps_per_epoch,
                           callbacks=cbs, desc=desc, show_progress=show_progress)
    return per_epoch(history, vae.steps_per_epoch)


def validation_losses(vae: VAE, x, seed: int = 0) -> dict:
    """``loss`` (at the current KL weight), ``recon`` cost and ``kl`` on binary images, one seeded draw of z."""
    t = evaluate_elbo(vae.encoder, vae.decoder, x, seed=seed, prior=vae.prior)
    weight = float(vae.kl_weight.numpy())
    return {"loss": float(np.mean(weight * t["kl"] - t["recon"])), "recon": float(-t["recon"].mean()),
            "kl": float(t["kl"].mean())}


def per_epoch(history: dict, steps_per_epoch: int) -> dict:
    """A per-step training history as per-epoch means (``loss``, ``recon``, ``kl``) and ``val_*``."""
    out = {}
    for name in ("loss", "recon", "kl"):
        values = np.asarray(history.get(name, []), dtype=np.float64)
        epochs = len(values) // steps_per_epoch
        out[name] = values[:epochs * steps_per_epoch].reshape(epochs, steps_per_epoch).mean(axis=1).tolist()
    for entry in history.get("validation", []):
        for name in ("loss", "recon", "kl"):
            out.setdefault(f"val_{name}", []).append(entry[name])
    out["seconds"] = history["seconds"]
    return out


# --- evaluation ----------------------------------------------------------------------------

def _batches(x, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


def _proposal(encoder, x, posterior, start=0):
    """(mean, log_var) of the proposal for images ``x`` (rows ``start``... of the whole set):
    the encoder's output, or the rows of a fixed ``posterior`` = (means, log_vars) when given."""
    if posterior is None:
        return encoder(x, training=False)
    mean, log_var = (np.asarray(p, dtype="float32")[start:start + len(x)] for p in posterior)
    return tf.constant(mean), tf.constant(log_var)


def _check_posterior(posterior, n):
    if posterior is not None:
        if len(posterior) != 2 or any(np.shape(p)[0] != n for p in posterior):
            raise ValueError(f"posterior must be a pair (means, log_vars) with one row per image ({n})")


def evaluate_elbo(encoder, decoder, x, num_samples: int = 1, batch_size: int = 500, seed: int = 0,
                  posterior=None, prior=None) -> dict:
    """Per-image ELBO terms in nats on binary images ``x``: dict of arrays ``elbo``, ``recon``
    (E_q log p(x|z), averaged over ``num_samples`` draws of z) and ``kl`` (closed form for the
    standard normal prior, else averaged over the same draws).

    q(z|x) is the encoder's, or a fixed ``posterior`` = (means, log_vars), e.g. from
    :func:`refine_posterior`. ``prior``: None for N(0, I), or a :class:`VampPrior`.
    """
    num_samples = check_int("num_samples", num_samples, minimum=1)
    x = as_images(x)
    _check_posterior(posterior, len(x))
    prior = None if prior is None else prior.frozen()
    rng = np.random.default_rng(seed)
    out = {"elbo": [], "recon": [], "kl": []}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        mean, log_var = _proposal(encoder, xb, posterior, start)
        recon, kl = np.zeros(len(xb)), np.zeros(len(xb))
        for _ in range(num_samples):
            eps = tf.constant(rng.standard_normal(tuple(mean.shape), dtype="float32"))
            z = reparameterize(mean, log_var, eps)
            recon += bernoulli_log_likelihood(xb, decoder(z, training=False)).numpy()
            kl += kl_term(mean, log_var, z, prior).numpy()
        recon /= num_samples
        kl /= num_samples
        out["recon"].append(recon)
        out["kl"].append(kl)
        out["elbo"].append(recon - kl)
    return {k: np.concatenate(v) for k, v in out.items()}


def refine_posterior(encoder, decoder, x, steps: int = 100, learning_rate: float = 0.05,
                     num_samples: int = 8, batch_size: int = 1000, seed: int = 0, prior=None):
    """Close the amortisation gap: start from the encoder's q(z|x) and run ``steps`` of Adam on
    each image's own (mean, log_var) to maximise its ELBO, with the decoder fixed.

    The encoder is one network for all images; trained on a few thousand digits it fits them
    better than new ones, so its q(z|x) for a held-out digit is not the best Gaussian the
    decoder allows (Cremer et al. 2018). Any q gives a valid lower bound on log p(x), so the
    refined ELBO and an IWAE bound that uses the refined q as its proposal are still bounds.
    ``prior``: None for N(0, I), or a :class:`VampPrior`. Returns (means, log_vars), (N, latent_dim).
    """
    steps = check_int("steps", steps, minimum=0)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    x = as_images(x)
    prior = None if prior is None else prior.frozen()
    generator = tf.random.Generator.from_seed(seed)
    means, log_vars = [], []
    for xb in _batches(x, batch_size):
        xb = tf.constant(xb)
        mean0, log_var0 = encoder(xb, training=False)
        mean, log_var = tf.Variable(mean0), tf.Variable(log_var0)
        optimizer = keras.optimizers.Adam(check_float("learning_rate", learning_rate, minimum=0.0))
        x_rep = tf.reshape(tf.broadcast_to(xb[None], (num_samples,) + tuple(xb.shape)),
                           (-1,) + IMAGE_SHAPE)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                eps = generator.normal((num_samples,) + tuple(mean.shape))
                z = reparameterize(mean[None], log_var[None], eps)
                logits = decoder(tf.reshape(z, (-1, mean.shape[1])), training=False)
                recon = tf.reshape(bernoulli_log_likelihood(x_rep, logits), (num_samples, -1))
                kl = kl_term(mean[None], log_var[None], z, prior)      # (num_samples, N)
                elbo = tf.reduce_mean(recon - kl, axis=0)
                loss = -tf.reduce_sum(elbo)                  # images are independent: sum is fine
            grads = tape.gradient(loss, [mean, log_var])
            optimizer.apply_gradients(zip(grads, [mean, log_var]))

        for _ in range(steps):
            step()
        means.append(mean.numpy())
        log_vars.append(log_var.numpy())
    return np.concatenate(means), np.concatenate(log_vars)


def log_weights(encoder, decoder, x, k: int, seed=0, posterior=None, prior=None) -> np.ndarray:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for k draws z_i ~ q(z|x): array (k, N).

    ``seed`` is an int or a ``np.random.Generator``. The mean over draws is the ELBO. q is the
    encoder's, or a fixed ``posterior`` = (means, log_vars) with one row per image of ``x``;
    p(z) is N(0, I) or ``prior`` (a :class:`VampPrior`).
    """
    x = tf.convert_to_tensor(as_images(x))
    _check_posterior(posterior, x.shape[0])
    mean, log_var = _proposal(encoder, x, posterior)
    n, d = mean.shape
    eps = tf.constant(np.random.default_rng(seed).standard_normal((k, n, d), dtype="float32"))
    z = reparameterize(mean[None], log_var[None], eps)                      # (k, N, d)
    logits = decoder(tf.reshape(z, (k * n, d)), training=False)             # (k*N, 28, 28, 1)
    x_rep = tf.reshape(tf.broadcast_to(x[None], (k, n) + IMAGE_SHAPE), (k * n,) + IMAGE_SHAPE)
    log_px_z = tf.reshape(bernoulli_log_likelihood(x_rep, logits), (k, n))
    log_pz = log_prior(z, prior)
    log_qz = gaussian_log_density(z, mean[None], log_var[None])
    return (log_px_z + log_pz - log_qz).numpy().astype("float64")


def log_mean_exp(a, axis=0) -> np.ndarray:
    """log(mean(exp(a))) along ``axis``, computed without overflow."""
    a = np.asarray(a, dtype="float64")
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.mean(np.exp(a - top), axis=axis))


def iwae_bound(encoder, decoder, x, k: int = 1000, chunk: int = 250, batch_size: int = 20,
               seed: int = 0, progress=None, posterior=None, prior=None) -> np.ndarray:
    """Importance-weighted bound log (1/k) sum_i w_i of each binary image (nats), array (N,).

    The k draws are made ``chunk`` at a time (memory ~ chunk * batch_size decoded images).
    ``progress`` optionally wraps the loop over batches (e.g. ``labkit.progress``). The
    proposal is the encoder's q(z|x), or a fixed ``posterior`` = (means, log_vars); the prior is
    N(0, I) or ``prior`` (a :class:`VampPrior`).
    """
    k = check_int("k", k, minimum=1)
    x = as_images(x)
    prior = None if prior is None else prior.frozen()
    _check_posterior(posterior, len(x))
    starts = range(0, len(x), batch_size)
    if progress is not None:
        starts = progress(starts, total=len(starts), desc=f"IWAE bound, k={k}")
    rng = np.random.default_rng(seed)
    out = []
    for start in starts:
        xb = x[start:start + batch_size]
        rows = None if posterior is None else tuple(np.asarray(p)[start:start + batch_size]
                                                     for p in posterior)
        lw = np.concatenate([log_weights(encoder, decoder, xb, min(chunk, k - lo), seed=rng,
                                         posterior=rows, prior=prior)
                             for lo in range(0, k, chunk)])
        out.append(log_mean_exp(lw, axis=0))
    return np.concatenate(out)


# --- looking at the model ------------------------------------------------------------------

def decode(decoder, z, batch_size: int = 1000, labels=None, num_classes: int = 10) -> np.ndarray:
    """Pixel means sigmoid(logits) in [0, 1], (N, 28, 28), of latent codes z (N, latent_dim).

    A conditional decoder (:func:`build_cvae`) also takes the digit ``labels`` (N integers).
    """
    z = np.asarray(z, dtype="float32")
    onehot = None if labels is None else np.eye(num_classes, dtype="float32")[np.asarray(labels, dtype=int)]
    logits = []
    for start in range(0, len(z), batch_size):
        inputs = z[start:start + batch_size]
        if onehot is not None:
            inputs = [inputs, onehot[start:start + batch_size]]
        logits.append(np.asarray(decoder(inputs, training=False)))
    return (1.0 / (1.0 + np.exp(-np.concatenate(logits)[..., 0]))).astype("float32")


def sample_prior(decoder, n: int, seed: int = 0, prior=None) -> np.ndarray:
    """n images (pixel means in [0, 1], (n, 28, 28)) decoded from z ~ p(z): N(0, I), or ``prior``."""
    n = check_int("n", n, minimum=1)
    if prior is not None:
        return decode(decoder, prior.sample(n, seed=seed))
    z = np.random.default_rng(seed).standard_normal((n, decoder.input_shape[-1]), dtype="float32")
    return decode(decoder, z)


def encode_mean(encoder, x, batch_size: int = 1000) -> np.ndarray:
    """The mean of q(z|x) of each image, (N, latent_dim)."""
    x = as_images(x)
    return np.concatenate([encoder(xb, training=False)[0].numpy() for xb in _batches(x, batch_size)])


def interpolate(decoder, z_start, z_end, steps: int = 10) -> np.ndarray:
    """Decode ``steps`` evenly spaced points from z_start to z_end: (steps, 28, 28)."""
    t = np.linspace(0.0, 1.0, check_int("steps", steps, minimum=2), dtype="float32")[:, None]
    return decode(decoder, (1 - t) * np.asarray(z_start, "float32") + t * np.asarray(z_end, "float32"))


def manifold_grid(decoder, n: int = 15, limit: float = 2.0) -> np.ndarray:
    """For a 2-D latent: decoded images on an n x n grid over [-limit, limit]^2, (n*n, 28, 28),
    row by row from the top (z2 = +limit) down, each row from z1 = -limit to +limit."""
    if decoder.input_shape[-1] != 2:
        raise ValueError(f"manifold_grid needs a 2-D latent space; this decoder's is {decoder.input_shape[-1]}-D")
    values = np.linspace(-limit, limit, check_int("n", n, minimum=2), dtype="float32")
    return decode(decoder, np.array([[a, b] for b in values[::-1] for a in values], dtype="float32"))


# --- a conditional VAE (labelled samples; the generator attacked in notebook 09) -------------


def build_cvae(latent_dim: int = 16, hidden: int = 256, num_classes: int = 10):
    """A conditional VAE for 28x28 digits: encoder (image, one-hot label) -> [mean, log_var];
    decoder (z, one-hot label) -> Bernoulli logits (N, 28, 28, 1). One hidden layer each."""
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    hidden = check_int("hidden", hidden, minimum=1)
    image, label = keras.Input((28, 28, 1)), keras.Input((num_classes,))
    h = layers.Dense(hidden, activation="relu")(layers.Concatenate()([layers.Flatten()(image), label]))
    encoder = keras.Model([image, label], [layers.Dense(latent_dim)(h), layers.Dense(latent_dim)(h)],
                          name="cvae_encoder")
    z, label2 = keras.Input((latent_dim,)), keras.Input((num_classes,))
    h = layers.Dense(hidden, activation="relu")(layers.Concatenate()([z, label2]))
    logits = layers.Reshape((28, 28, 1))(layers.Dense(784)(h))
    decoder = keras.Model([z, label2], logits, name="cvae_decoder")
    return encoder, decoder


def cvae_losses(encoder, decoder, x, label, eps, beta: float = 1.0):
    """Per-example negative ELBO of a conditional VAE: -E_q[log p(x|z,y)] + beta * KL(q(z|x,y) || N(0,I)).

    ``x``: grey digits in [0, 1] used as Bernoulli targets; ``eps``: the standard-normal draw of the
    reparameterisation (passed in, so per-example gradients stay deterministic).
    """
    x, label, eps = (tf.convert_to_tensor(a, tf.float32) for a in (x, label, eps))
    mean, log_var = encoder([x, label])
    z = reparameterize(mean, log_var, eps)
    return beta * kl_standard_normal(mean, log_var) - bernoulli_log_likelihood(x, decoder([z, label]))


def cvae_sample(decoder, labels, seed: int = 0, num_classes: int = 10) -> np.ndarray:
    """Images (pixel means in [0, 1], (N, 28, 28)) of the given digit labels, z ~ N(0, I)."""
    labels = np.asarray(labels, dtype=int)
    z = np.random.default_rng(seed).standard_normal((len(labels), decoder.input_shape[0][-1]))
    return decode(decoder, z, labels=labels, num_classes=num_classes)
