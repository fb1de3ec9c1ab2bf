"""Exercises of notebook 06 — adversarial attacks and defences (11.2.2.3)."""
import numpy as np

from . import Exercise, Incorrect, call


def fgsm_step(x, grad, eps):
    """Reference: one untargeted FGSM step from the loss gradient, kept in [0, 1]."""
    return np.clip(x + eps * np.sign(grad), 0.0, 1.0)


def _check_fgsm_step(function):
    rng = np.random.default_rng(0)
    x = rng.random((4, 6)).astype("float32")
    grad = rng.normal(size=(4, 6)).astype("float32")
    got = np.asarray(call(function, x, grad, 0.2), dtype="float32")
    want = fgsm_step(x, grad, 0.2)
    if got.shape != x.shape:
        raise Incorrect(f"return one adversarial input per input: expected shape {x.shape}, got {got.shape}")
    if np.allclose(got, np.clip(x - 0.2 * np.sign(grad), 0, 1)):
        raise Incorrect("you moved against the gradient: that lowers the loss of the true class. "
                        "An untargeted attack climbs the loss")
    if np.allclose(got, x + 0.2 * np.sign(grad)):
        raise Incorrect("some pixels left [0, 1]: an image has a valid range, keep it")
    if np.allclose(got, np.clip(x + 0.2 * grad, 0, 1)):
        raise Incorrect("FGSM uses only the sign of each gradient component, not its size")
    if not np.allclose(got, want, atol=1e-6):
        raise Incorrect("every pixel should move by exactly eps (before clipping), in the direction "
                        "in which the loss grows")


def max_linear_change(w, eps):
    """Reference: the largest change of w . x over perturbations with max |delta_i| <= eps."""
    return float(eps * np.abs(w).sum())


def _check_max_linear(function):
    rng = np.random.default_rng(1)
    w = rng.normal(size=784)
    got = float(call(function, w, 0.1))
    if np.isclose(got, 0.1 * np.linalg.norm(w)):
        raise Incorrect("that is the best change in an L2 ball of radius eps; here every pixel may "
                        "move by eps independently (an L-infinity ball)")
    if not np.isclose(got, max_linear_change(w, 0.1)):
        raise Incorrect("choose delta_i = eps * sign(w_i) and add up w_i * delta_i")


def project(x_adv, x, eps):
    """Reference: PGD's projection onto the eps-ball around x, then onto the pixel range [0, 1].

    TensorFlow ops, so that it also runs inside a compiled training step."""
    import tensorflow as tf

    return tf.clip_by_value(tf.clip_by_value(x_adv, x - eps, x + eps), 0.0, 1.0)


def _check_project(function):
    rng = np.random.default_rng(2)
    x = rng.random((3, 10)).astype("float32")
    x_adv = (x + rng.normal(scale=0.5, size=x.shape)).astype("float32")
    got = np.asarray(call(function, x_adv, x, 0.1), dtype=float)
    if got.shape != x.shape:
        raise Incorrect(f"expected shape {x.shape}, got {got.shape}")
    if np.abs(got - x).max() > 0.1 + 1e-6:
        raise Incorrect("some pixels are more than eps away from the original: clip to [x - eps, x + eps]")
    if got.min() < 0 or got.max() > 1:
        raise Incorrect("some pixels left the range [0, 1]")
    want = np.clip(np.clip(x_adv, x - 0.1, x + 0.1), 0.0, 1.0)
    if not np.allclose(got, want, atol=1e-6):
        raise Incorrect("the projection should change a pixel only when it is outside the ball or "
                        "the range, and then move it to the nearest allowed value")
    import tensorflow as tf

    try:  # the training step runs compiled: the projection must work on symbolic tensors too
        compiled = tf.function(lambda a, b: function(a, b, tf.constant(0.1)))
        got = np.asarray(compiled(tf.constant(x_adv), tf.constant(x)), dtype=float)
    except Exception as err:  # noqa: BLE001 - e.g. NumPy on a symbolic tensor
        raise Incorrect("right on arrays, but it fails inside a compiled training step "
                        f"({type(err).__name__}); write it with TensorFlow ops such as "
                        "tf.clip_by_value, tf.minimum, tf.maximum") from None
    if not np.allclose(got, want, atol=1e-6):
        raise Incorrect("right on arrays, but not on TensorFlow tensors")


def detection_rates(clean_scores, adversarial_scores, threshold):
    """Reference: (true-positive rate, false-positive rate) of flagging scores above threshold."""
    return (float(np.mean(np.asarray(adversarial_scores) > threshold)),
            float(np.mean(np.asarray(clean_scores) > threshold)))


def _check_rates(function):
    clean = np.array([0.01, 0.02, 0.5, 0.03, 0.04])
    adversarial = np.array([0.9, 1.2, 0.05, 1.5])
    got = call(function, clean, adversarial, 0.3)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Incorrect("return a pair (tpr, fpr)")
    tpr, fpr = map(float, got)
    if np.isclose(tpr, 0.2) and np.isclose(fpr, 0.75):
        raise Incorrect("the two rates are swapped: the true-positive rate is about adversarial inputs")
    if not np.isclose(tpr, 0.75):
        raise Incorrect("tpr: the share of adversarial inputs whose score is above the threshold")
    if not np.isclose(fpr, 0.2):
        raise Incorrect("fpr: the share of clean inputs whose score is above the threshold")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `my_fgsm_step(x, grad, eps)`: one untargeted FGSM step, given the "
                          "gradient of the loss with respect to `x`; keep pixels in [0, 1]. The FGSM "
                          "attacks of the notebook use it once it passes.",
        checker=_check_fgsm_step,
        hints=("The attack wants the loss of the true class to go *up*.",
               "`np.sign` and `np.clip`."),
        solution_code="def my_fgsm_step(x, grad, eps):\n"
                      "    return np.clip(x + eps * np.sign(grad), 0.0, 1.0)",
        reference=fgsm_step),
    Exercise(
        name="q2", prompt="Why the sign? Write `max_linear_change(w, eps)`: the largest increase of "
                          "a linear score `w @ x` over all perturbations with every |delta_i| <= eps.",
        checker=_check_max_linear,
        hints=("Each term w_i * delta_i is largest on its own when delta_i has the sign of w_i.",
               "The total grows with the number of pixels: eps times the L1 norm of w."),
        solution_code="def max_linear_change(w, eps):\n    return eps * np.abs(w).sum()",
        reference=max_linear_change),
    Exercise(
        name="q3", prompt="Write PGD's projection `my_project(x_adv, x, eps)`: back into the eps-ball "
                          "around `x` (L-infinity), then into the pixel range [0, 1], with TensorFlow "
                          "ops. PGD and adversarial training use it once it passes.",
        checker=_check_project,
        hints=("In L-infinity the projection works pixel by pixel: each pixel on its own.",
               "Two `tf.clip_by_value` calls (NumPy cannot run inside the compiled training step)."),
        solution_code="def my_project(x_adv, x, eps):\n"
                      "    return tf.clip_by_value(tf.clip_by_value(x_adv, x - eps, x + eps), 0.0, 1.0)",
        reference=project),
    Exercise(
        name="q4", prompt="Write `detection_rates(clean_scores, adversarial_scores, threshold)` "
                          "returning `(tpr, fpr)` for a detector that flags scores above the threshold.",
        checker=_check_rates,
        hints=("A positive is a flagged input; which inputs *should* be flagged?",),
        solution_code="def detection_rates(clean_scores, adversarial_scores, threshold):\n"
                      "    return (np.mean(adversarial_scores > threshold),\n"
                      "            np.mean(clean_scores > threshold))",
        reference=detection_rates),
]
