"""Exercises of notebook 05 — variational autoencoders (11.2.2.2)."""
import math

import numpy as np

from . import Exercise, Incorrect, call

# q1: the KL term of one image, by hand
Q1_MEAN = (1.0, 0.0)
Q1_SIGMA = (1.0, 0.5)


def _kl_by_hand():
    mean, sigma = np.array(Q1_MEAN), np.array(Q1_SIGMA)
    return float(0.5 * np.sum(mean**2 + sigma**2 - 1.0 - np.log(sigma**2)))


def _check_kl(answer):
    if not isinstance(answer, (int, float, np.floating)) or isinstance(answer, bool):
        raise Incorrect("answer with one number (nats)")
    want = _kl_by_hand()
    if abs(answer - want) < 1e-3:
        return
    if answer < 0:
        raise Incorrect("a KL divergence is never negative; check the signs of the four terms")
    if abs(answer - 2 * want) < 1e-3:
        raise Incorrect("close: you forgot the factor 1/2 in front of the sum")
    mean, sigma = np.array(Q1_MEAN), np.array(Q1_SIGMA)
    if abs(answer - float(0.5 * np.sum(mean**2 + sigma**2 - 1.0 - np.log(sigma)))) < 1e-3:
        raise Incorrect("the formula has log sigma**2 (the log-variance), not log sigma")
    raise Incorrect("add up, over both dimensions, mean**2 + sigma**2 - 1 - log(sigma**2), then halve")


# q2: the IWAE bound from log weights, without overflow
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
    got = np.asarray(call(function, large), dtype=float)
    if not np.all(np.isfinite(got)) or not np.allclose(got, iwae_from_log_weights(large)):
        raise Incorrect("right formula, but with log weights near -800 (typical for a 784-pixel image) "
                        "exp underflows to 0: subtract the largest log weight before exp, add it back after")


# q3: what beta does
BETA_OPTIONS = {
    "a": "reconstructions get sharper, the KL (rate) grows, and samples from the prior get worse",
    "b": "the KL falls towards 0, codes carry little about the image, reconstructions blur "
         "towards an average digit",
    "c": "nothing changes: beta only rescales the loss, and Adam does not care about scale",
}
BETA_ANSWER = {"beta_to_zero": "a", "beta_large": "b"}


def _check_beta(answer):
    if not isinstance(answer, dict) or set(answer) != set(BETA_ANSWER):
        raise Incorrect("answer with a dict with keys 'beta_to_zero' and 'beta_large'")
    bad = [v for v in answer.values() if v not in BETA_OPTIONS]
    if bad:
        raise Incorrect(f"use the letters {sorted(BETA_OPTIONS)}; got {bad[0]!r}")
    if "c" in answer.values():
        raise Incorrect("beta weighs the KL against the reconstruction term, so it changes which "
                        "solution is best, not just the loss scale")
    if answer != BETA_ANSWER:
        raise Incorrect("swap them: which term is left when beta -> 0, and which one dominates "
                        "when beta is large?")


EXERCISES = [
    Exercise(
        name="q1", prompt=f"An encoder gives mean = {Q1_MEAN} and sigma = {Q1_SIGMA} for one image. "
                          "Compute KL(q(z|x) || N(0, I)) in nats by hand (a number).",
        checker=_check_kl,
        hints=("KL = 1/2 * sum_j (mean_j**2 + sigma_j**2 - 1 - log sigma_j**2).",
               "The first dimension gives 1/2 * (1 + 1 - 1 - 0); do the second the same way."),
        solution_code="mean, sigma = np.array([1.0, 0.0]), np.array([1.0, 0.5])\n"
                      "answer = 0.5 * np.sum(mean**2 + sigma**2 - 1 - np.log(sigma**2))  # 0.818",
        reference=_kl_by_hand()),
    Exercise(
        name="q2", prompt="Write `iwae(log_w)`: given log weights of shape (k, N), return the IWAE bound "
                          "log (1/k) sum_i w_i of each of the N images, without overflow or underflow.",
        checker=_check_iwae,
        hints=("Average the weights w_i = exp(log_w_i), not the log weights.",
               "log mean exp(a) = m + log mean exp(a - m) with m = a.max(axis=0)."),
        solution_code="def iwae(log_w):\n"
                      "    top = log_w.max(axis=0)\n"
                      "    return top + np.log(np.mean(np.exp(log_w - top), axis=0))",
        reference=iwae_from_log_weights),
    Exercise(
        name="q3", prompt="The beta-VAE loss is beta * KL - E_q[log p(x|z)]. Which of "
                          "`labkit.exercises.nb05.BETA_OPTIONS` happens as beta -> 0, and which for "
                          "a large beta (say 8)? Answer {'beta_to_zero': letter, 'beta_large': letter}.",
        checker=_check_beta,
        hints=("With beta = 0 nothing pulls q(z|x) towards the prior: the model is a plain autoencoder.",
               "A large beta makes every nat of KL expensive; the cheapest code says nothing."),
        solution_code="answer = {'beta_to_zero': 'a', 'beta_large': 'b'}",
        reference=dict(BETA_ANSWER)),
]
