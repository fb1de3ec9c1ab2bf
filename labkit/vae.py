"""The VAE pieces that other notebooks reuse; notebook 05 builds and trains its VAEs in its own cells.

* :func:`binarize` and ``TEST_BINARIZATION_SEED``: the fixed stochastic binarisation of held-out
  digits under which the published MNIST log-likelihoods (and notebook 05's nats) are measured;
* the small **conditional VAE** that notebook 09 trains and attacks (:func:`build_cvae`,
  :func:`cvae_losses`, :func:`cvae_sample`); notebook 05 shows the same architecture in a cell, and
  ``tests/test_nb05_vae.py`` checks that the two build the same model;
* the ELBO's pieces it uses: :func:`reparameterize`, :func:`kl_standard_normal` (closed form against
  N(0, I)), :func:`bernoulli_log_likelihood`, and :func:`decode` (codes to pixel probabilities).

Everything is in nats (natural logarithm), summed over the 784 pixels of one image.
"""
from __future__ import annotations

import numpy as np

from .params import check_int

import tensorflow as tf  # noqa: E402  (labkit's __init__ has quietened TensorFlow already)
from keras import layers  # noqa: E402
import keras  # noqa: E402

TEST_BINARIZATION_SEED = 2016  # one fixed Bernoulli draw for the held-out digits


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


def reparameterize(mean, log_var, eps):
    """z = mean + sigma * eps with eps ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    return mean + tf.exp(0.5 * log_var) * eps


def kl_standard_normal(mean, log_var):
    """KL( N(mean, diag(exp(log_var))) || N(0, I) ) in closed form, summed over the last axis."""
    return -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mean) - tf.exp(log_var), axis=-1)


def bernoulli_log_likelihood(x, logits):
    """log p(x | z) = sum over pixels of x log p + (1 - x) log(1 - p), p = sigmoid(logits); one value per image."""
    per_pixel = -tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)  # stable form
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=-1)


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
