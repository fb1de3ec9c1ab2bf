"""Exercises of notebook 10 — beyond GANs and VAEs: diffusion (11.3.1, 11.4.2)."""
import numpy as np

from . import Exercise, Incorrect, call


def _arrays(seed, shape=(6, 4)):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(0, 1, size=shape).astype(np.float32)
    noise = rng.normal(0, 1, size=shape).astype(np.float32)
    alpha_bar = rng.uniform(0.05, 0.95, size=(shape[0], 1)).astype(np.float32)
    return x0, alpha_bar, noise


def _in_graph(function, *args):
    """Run ``function`` on TensorFlow tensors inside a ``tf.function``, as the training step does."""
    import tensorflow as tf

    tensors = [tf.constant(a) for a in args]
    return np.asarray(tf.function(lambda *t: function(*t))(*tensors))


# q1 -------------------------------------------------------------------------------------

def q_sample(x0, alpha_bar_t, noise):
    """Reference: a draw of x_t from q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)."""
    return alpha_bar_t ** 0.5 * x0 + (1.0 - alpha_bar_t) ** 0.5 * noise


def _check_q_sample(function):
    for seed in (0, 1):
        x0, ab, noise = _arrays(seed)
        got = np.asarray(call(function, x0, ab, noise), dtype=np.float64)
        if got.shape != x0.shape:
            raise Incorrect(f"x_t must have the shape of x_0, {x0.shape}; got {got.shape}")
        if np.allclose(got, q_sample(x0, ab, noise), atol=1e-5):
            continue
        if np.allclose(got, ab * x0 + (1 - ab) * noise, atol=1e-5):
            raise Incorrect("alpha_bar_t is a share of *variance*: the coefficients of x_0 and of the "
                            "noise are the square roots of the variances they carry")
        if np.allclose(got, ab ** 0.5 * x0 + (1 - ab) * noise, atol=1e-5):
            raise Incorrect("the signal's coefficient is right; the noise should carry variance "
                            "1 - alpha_bar_t, so its coefficient is a square root too")
        if np.allclose(got, (1 - ab) ** 0.5 * x0 + ab ** 0.5 * noise, atol=1e-5):
            raise Incorrect("the two coefficients are swapped: alpha_bar_t near 1 (small t) must leave "
                            "the image almost untouched")
        raise Incorrect("x_t should be a weighted sum of x_0 and the noise whose variances add up to 1")
    x0, ab, noise = _arrays(2)
    try:
        in_graph = _in_graph(function, x0, ab, noise)
    except Exception as err:  # noqa: BLE001 - a student's code may raise anything
        raise Incorrect("it works on NumPy arrays but not on TensorFlow tensors inside the training "
                        f"step ({type(err).__name__}); use `** 0.5` or `tf.sqrt`, not `np.sqrt`") from None
    if not np.allclose(in_graph, q_sample(x0, ab, noise), atol=1e-5):
        raise Incorrect("on TensorFlow tensors your function gives other values than on NumPy arrays")


# q2 -------------------------------------------------------------------------------------

def ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev):
    """Reference: one deterministic DDIM update (eta = 0) from step t to the earlier step."""
    x0 = (x_t - (1.0 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5
    return alpha_bar_prev ** 0.5 * x0 + (1.0 - alpha_bar_prev) ** 0.5 * eps


def _check_ddim_step(function):
    rng = np.random.default_rng(3)
    x_t = rng.normal(size=(5, 4)).astype(np.float64)
    eps = rng.normal(size=(5, 4)).astype(np.float64)
    ab, ab_prev = 0.3, 0.6
    got = np.asarray(call(function, x_t, eps, ab, ab_prev), dtype=np.float64)
    if got.shape != x_t.shape:
        raise Incorrect(f"the result must have the shape of x_t, {x_t.shape}; got {got.shape}")
    if np.allclose(got, ddim_step(x_t, eps, ab, ab_prev), atol=1e-6):
        x0 = np.asarray(call(function, x_t, eps, ab, 1.0), dtype=np.float64)
        if not np.allclose(x0, ddim_step(x_t, eps, ab, 1.0), atol=1e-6):
            raise Incorrect("with alpha_bar_prev = 1 (the last step) the update must return the "
                            "predicted x_0 itself")
        return
    x0 = (x_t - (1 - ab) ** 0.5 * eps) / ab ** 0.5
    if np.allclose(got, x0, atol=1e-6):
        raise Incorrect("that is the predicted x_0; now move it to the earlier step: re-noise it "
                        "with the same eps at the level alpha_bar_prev")
    if np.allclose(got, ab ** 0.5 * x0 + (1 - ab) ** 0.5 * eps, atol=1e-6):
        raise Incorrect("re-noising at alpha_bar_t gives x_t back; use alpha_bar_prev")
    raise Incorrect("first predict x_0 from x_t and eps (invert the forward process), then "
                    "re-noise it to the earlier step with the same eps")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `q_sample(x0, alpha_bar_t, noise)`: the noisy x_t that the forward "
                          "process q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) gives for this noise draw. "
                          "It must work on NumPy arrays and on TensorFlow tensors.",
        checker=_check_q_sample,
        hints=("The mean is √ᾱ_t · x_0 and the variance (1 − ᾱ_t): a standard normal draw times its "
               "standard deviation, plus the mean.",
               "`alpha_bar_t ** 0.5 * x0 + ...` works for arrays and tensors alike."),
        solution_code="def q_sample(x0, alpha_bar_t, noise):\n"
                      "    return alpha_bar_t ** 0.5 * x0 + (1.0 - alpha_bar_t) ** 0.5 * noise",
        reference=q_sample),
    Exercise(
        name="q2", prompt="Write `ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev)`: the deterministic "
                          "DDIM update (η = 0). Predict x_0 from x_t and the predicted noise eps, then "
                          "put it at the earlier noise level alpha_bar_prev with the same eps.",
        checker=_check_ddim_step,
        hints=("Solve x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for x_0.",
               "Then return √ᾱ_prev · x_0 + √(1 − ᾱ_prev) · ε."),
        solution_code="def ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev):\n"
                      "    x0 = (x_t - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5\n"
                      "    return alpha_bar_prev ** 0.5 * x0 + (1 - alpha_bar_prev) ** 0.5 * eps",
        reference=ddim_step),
]
