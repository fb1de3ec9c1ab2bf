"""Exercises of notebook 05 — variational autoencoders (11.2.2.2).

q1 (the KL term), q2 (the reparameterisation) and q3 (the IWAE bound) are pieces of the model: the
notebook hands the learner's function on with ``ex.qN.use(...)``, and the VAE it then trains (q1,
q2) or measures (q3) uses it. The checkers call the function on TensorFlow tensors, also inside a
``tf.function``, because that is how the training step calls it.
"""
import math

import numpy as np

from . import Exercise, Incorrect, call

import tensorflow as tf  # noqa: E402  (after labkit's import has quietened TensorFlow)


def _as_array(value):
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype="float64")


def _in_graph(function, *args):
    """``function(*args)`` traced by ``tf.function``, as the training step calls it."""
    try:
        return _as_array(tf.function(function)(*[tf.constant(a, tf.float32) for a in args]))
    except Exception as error:  # noqa: BLE001 - e.g. NumPy on a symbolic tensor (NotImplementedError)
        raise Incorrect("right in eager mode but it fails inside tf.function, where the training step calls "
                        f"it ({type(error).__name__}): use TensorFlow ops (tf.exp, tf.reduce_sum), "
                        "not NumPy") from None


# q1: the KL term KL(N(mean, diag exp(log_var)) || N(0, I)), per image
def kl_to_standard_normal(mean, log_var):
    """Reference: the closed form, summed over the latent dimensions (last axis)."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)


def _q1_inputs():
    rng = np.random.default_rng(11)
    return (rng.normal(0, 1, (3, 4)).astype("float32"), rng.normal(0, 0.7, (3, 4)).astype("float32"))


def _check_kl(function):
    mean, log_var = _q1_inputs()
    got = _as_array(call(function, tf.constant(mean), tf.constant(log_var)))
    want = _as_array(kl_to_standard_normal(mean, log_var))
    if got.shape != want.shape:
        raise Incorrect(f"for mean and log_var of shape (3, 4) (3 images, 4 latent dimensions) return one KL "
                        f"per image, shape (3,); got {got.shape}. Sum over the last axis only")
    if np.allclose(got, want, rtol=1e-4, atol=1e-5):
        got = _in_graph(function, mean, log_var)
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            raise Incorrect("right in eager mode but not inside tf.function: use TensorFlow ops (tf.exp, "
                            "tf.reduce_sum), not NumPy")
        return
    m, lv = mean.astype("float64"), log_var.astype("float64")
    if np.all(got <= 0):
        raise Incorrect("a KL divergence is never negative; check the signs of the four terms")
    if np.allclose(got, 2 * want, rtol=1e-4):
        raise Incorrect("close: you forgot the factor 1/2 in front of the sum")
    if np.allclose(got, 0.5 * np.sum(m**2 + np.exp(2 * lv) - 1 - 2 * lv, axis=-1), rtol=1e-4):
        raise Incorrect("log_var is log sigma**2 (the log-variance), not log sigma: sigma**2 = exp(log_var)")
    if np.allclose(got, 0.5 * np.mean(m**2 + np.exp(lv) - 1 - lv, axis=-1), rtol=1e-4):
        raise Incorrect("the KL of independent dimensions is their sum, not their mean")
    raise Incorrect("add up, over the latent dimensions, mean**2 + sigma**2 - 1 - log(sigma**2), then halve")


# q2: the reparameterisation z = mean + sigma * eps
def reparameterize(mean, log_var, eps):
    """Reference: a draw of N(mean, diag exp(log_var)) from standard-normal noise ``eps``."""
    return mean + tf.exp(0.5 * log_var) * eps


def _check_reparameterize(function):
    rng = np.random.default_rng(12)
    mean = rng.normal(0, 1, (5, 3)).astype("float32")
    log_var = rng.normal(0, 1, (5, 3)).astype("float32")
    eps = rng.standard_normal((5, 3)).astype("float32")
    got = _as_array(call(function, tf.constant(mean), tf.constant(log_var), tf.constant(eps)))
    want = _as_array(reparameterize(mean, log_var, eps))
    if got.shape != want.shape:
        raise Incorrect(f"return one code per image and dimension, shape {want.shape}; got {got.shape}")
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        m, lv, e = (a.astype("float64") for a in (mean, log_var, eps))
        if np.allclose(got, m + np.exp(lv) * e, rtol=1e-4):
            raise Incorrect("exp(log_var) is the variance sigma**2; the noise is scaled by the standard "
                            "deviation sigma")
        if np.allclose(got, m + e, rtol=1e-4):
            raise Incorrect("the noise must be scaled by sigma, which comes from log_var")
        if np.allclose(got, m + lv * e, rtol=1e-4):
            raise Incorrect("log_var is a log-variance, not a standard deviation")
        raise Incorrect("z should be a draw of N(mean, sigma**2) made from the given standard-normal eps "
                        "(use eps: do not draw new noise)")
    got = _in_graph(function, mean, log_var, eps)
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise Incorrect("right in eager mode but not inside tf.function: use TensorFlow ops, not NumPy")
    m, lv = tf.Variable(mean), tf.Variable(log_var)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(function(m, lv, tf.constant(eps)))
    grads = tape.gradient(total, [m, lv])
    if any(g is None for g in grads):
        raise Incorrect("no gradient flows back to mean and log_var: compute z from them with "
                        "TensorFlow ops (no .numpy(), no new random draw)")


# q3: the IWAE bound from log weights, without overflow
def iwae_from_log_weights(log_w):
    """Reference: log (1/k) sum_i exp(log_w[i]) along axis 0, stably."""
    log_w = np.asarray(log_w, dtype=float)
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def _check_iwae(function):
    rng = np.random.default_rng(5)
    small = rng.normal(0.0, 1.0, size=(7, 3))
    got = np.asarray(call(function, small), dtype=float)
    if got.shape != (3,):
        raise Incorrect(f"for log weights of shape (k=7, N=3) return one bound per image, shape (3,); "
                        f"got {got.shape}")
    if not np.allclose(got, iwae_from_log_weights(small)):
        if np.allclose(got, small.mean(axis=0)):
            raise Incorrect("that is the average of the log weights: the ELBO estimate, not the IWAE "
                            "bound. Average the weights, then take the log")
        if np.allclose(got, iwae_from_log_weights(small) + math.log(7)):
            raise Incorrect("that is the log of the sum: divide by k (subtract log k)")
        raise Incorrect("the bound is log( mean over the k draws of exp(log_w) ) for each image")
    large = rng.normal(-800.0, 3.0, size=(50, 4))
    with np.errstate(all="ignore"):
        got = np.asarray(call(function, large), dtype=float)
    if not np.all(np.isfinite(got)) or not np.allclose(got, iwae_from_log_weights(large)):
        raise Incorrect("right formula, but with log weights near -800 (typical for a 784-pixel image) "
                        "exp underflows to 0: subtract the largest log weight before exp, add it back after")


# q4: what beta does
BETA_OPTIONS = {
    "a": "reconstructions get sharper, the KL (rate) grows, and samples from the prior get worse",
    "b": "the KL falls towards 0, codes carry little about the image, reconstructions blur "
         "towards an average digit",
    "c": "nothing changes: beta only rescales the loss, and Adam does not care about scale",
}
_BETA_KEY = {"beta_to_zero": "a", "beta_large": "b"}


def _check_beta(answer):
    if not isinstance(answer, dict) or set(answer) != set(_BETA_KEY):
        raise Incorrect("answer with a dict with keys 'beta_to_zero' and 'beta_large'")
    bad = [v for v in answer.values() if v not in BETA_OPTIONS]
    if bad:
        raise Incorrect(f"use the letters {sorted(BETA_OPTIONS)}; got {bad[0]!r}")
    if "c" in answer.values():
        raise Incorrect("beta weighs the KL against the reconstruction term, so it changes which "
                        "solution is best, not just the loss scale")
    if answer != _BETA_KEY:
        raise Incorrect("swap them: which term is left when beta -> 0, and which one dominates "
                        "when beta is large?")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `kl_divergence(mean, log_var)`: KL(q(z|x) || N(0, I)) in nats for a diagonal "
                          "Gaussian q with the encoder's `mean` and `log_var` (log sigma**2), both of shape "
                          "(N, latent_dim); return one value per image, shape (N,). Use TensorFlow ops.",
        checker=_check_kl,
        hints=("KL = 1/2 * sum_j (mean_j**2 + sigma_j**2 - 1 - log sigma_j**2), and sigma_j**2 = exp(log_var_j).",
               "tf.reduce_sum(..., axis=-1) sums over the latent dimensions and keeps one value per image."),
        solution_code="def kl_divergence(mean, log_var):\n"
                      "    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)",
        reference=kl_to_standard_normal),
    Exercise(
        name="q2", prompt="Write `reparameterize(mean, log_var, eps)`: a draw z of N(mean, diag sigma**2) made "
                          "from the standard-normal noise `eps` (same shape as mean), so that gradients flow "
                          "to mean and log_var. Use TensorFlow ops.",
        checker=_check_reparameterize,
        hints=("If eps ~ N(0, 1), then mean + sigma * eps ~ N(mean, sigma**2).",
               "sigma = sqrt(exp(log_var)) = exp(log_var / 2)."),
        solution_code="def reparameterize(mean, log_var, eps):\n"
                      "    return mean + tf.exp(0.5 * log_var) * eps",
        reference=reparameterize),
    Exercise(
        name="q3", prompt="Write `iwae(log_w)`: given log weights of shape (k, N), return the IWAE bound "
                          "log (1/k) sum_i w_i of each of the N images, without overflow or underflow.",
        checker=_check_iwae,
        hints=("Average the weights w_i = exp(log_w_i), not the log weights.",
               "log mean exp(a) = m + log mean exp(a - m) with m = a.max(axis=0)."),
        solution_code="def iwae(log_w):\n"
                      "    top = log_w.max(axis=0)\n"
                      "    return top + np.log(np.mean(np.exp(log_w - top), axis=0))",
        reference=iwae_from_log_weights),
    Exercise(
        name="q4", prompt="The beta-VAE loss is beta * KL - E_q[log p(x|z)]. Which of "
                          "`labkit.exercises.nb05.BETA_OPTIONS` happens as beta -> 0, and which for "
                          "a large beta (say 8)? Answer {'beta_to_zero': letter, 'beta_large': letter}.",
        checker=_check_beta,
        hints=("With beta = 0 nothing pulls q(z|x) towards the prior: the model is a plain autoencoder.",
               "A large beta makes every nat of KL expensive; the cheapest code says nothing."),
        solution_code="answer = {'beta_to_zero': 'a', 'beta_large': 'b'}",
        reference=dict(_BETA_KEY)),
]
