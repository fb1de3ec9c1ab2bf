"""Exercises of notebook 07 — a StyleGAN-style face generator and the four-step case (11.3.2.1)."""
import numpy as np

from . import Exercise, Incorrect, call


# q1 -------------------------------------------------------------------------------------

def demodulation(kernel, styles, eps=1e-8):
    """Reference: StyleGAN2's demodulation factors, 1/sqrt(Σ_{k,i} (W_kio s_ni)² + eps), shape (N, out).

    Written with ``keras.ops`` so that it runs on NumPy arrays and inside the compiled training step.
    """
    from keras import ops

    # Σ_{k,i} W_kio² s_ni² = Σ_i s_ni² (Σ_k W_kio²): a (N, in) @ (in, out) product
    return 1.0 / ops.sqrt(ops.matmul(ops.square(styles), ops.sum(ops.square(kernel), axis=(0, 1))) + eps)


def _numpy_demodulation(kernel, styles, eps=1e-8):
    modulated = kernel[None] * styles[:, None, None, :, None]          # (N, k, k, in, out)
    return 1.0 / np.sqrt((modulated ** 2).sum(axis=(1, 2, 3)) + eps)


def _check_demodulation(function):
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 4, 5)).astype("float32")
    styles = rng.uniform(0.5, 2.0, size=(2, 4)).astype("float32")
    got = np.asarray(call(function, kernel, styles), dtype=float)
    if got.shape != (2, 5):
        raise Incorrect(f"one factor per sample and *output* channel: expected shape (2, 5), got {got.shape}")
    want = _numpy_demodulation(kernel.astype(float), styles.astype(float))
    if np.allclose(got, 1.0 / np.sqrt((kernel.astype(float) ** 2).sum(axis=(0, 1, 2)))[None], rtol=1e-4):
        raise Incorrect("demodulate the *modulated* weights: multiply input channel i by s[n, i] first")
    if np.allclose(got, want ** 2, rtol=1e-4):
        raise Incorrect("you divided by the sum of squares; the factor is 1 / sqrt(sum of squares)")
    if np.allclose(got, 1.0 / want, rtol=1e-4):
        raise Incorrect("that is the norm itself; demodulation *divides* by it: return 1 / norm")
    if not np.allclose(got, want, rtol=1e-4):
        raise Incorrect("the factor is 1 / sqrt(sum over k and i of (W[k, i, o] * s[n, i])²): "
                        "the inverse L2 norm of each output channel's modulated weights")
    import tensorflow as tf

    try:
        traced = tf.function(function)(tf.constant(kernel), tf.constant(styles))
    except Exception as err:  # noqa: BLE001 - any failure to trace is the learner's to fix
        raise Incorrect("right numbers, but it does not run inside the compiled training step "
                        f"({type(err).__name__}); use keras.ops (ops.sum, ops.sqrt, ops.square) "
                        "or tensor operators instead of NumPy functions") from None
    if not np.allclose(np.asarray(traced), want, rtol=1e-4):
        raise Incorrect("it gives other numbers inside the compiled step; use keras.ops, not NumPy")


# q2 -------------------------------------------------------------------------------------

def truncate(w, w_avg, psi):
    """Reference: the truncation trick, w_avg + psi * (w - w_avg)."""
    return w_avg + psi * (w - w_avg)


def _check_truncate(function):
    rng = np.random.default_rng(0)
    w, w_avg = rng.normal(size=(5, 8)), rng.normal(size=8)
    got = np.asarray(call(function, w, w_avg, 0.7), dtype=float)
    if got.shape != w.shape:
        raise Incorrect(f"return one truncated w per row: expected shape {w.shape}, got {got.shape}")
    if np.allclose(got, 0.7 * w):
        raise Incorrect("you shrank w towards 0; truncation shrinks it towards the *mean* w")
    if np.allclose(got, w_avg + 0.3 * (w - w_avg)):
        raise Incorrect("psi is the share of the distance from the mean that is *kept*: psi = 1 changes nothing")
    if not np.allclose(got, truncate(w, w_avg, 0.7)):
        raise Incorrect("psi = 0 should give w_avg for every row, psi = 1 should give w unchanged")


# q3 -------------------------------------------------------------------------------------

LAYER_CHOICES = {
    "a": "the 4x4 and 8x8 layers set pose, face outline and overall lighting; 16x16 and 32x32 only "
         "change finer detail and texture",
    "b": "every layer holds everything equally: the switch layer makes no difference",
    "c": "the 32x32 layer holds pose, because pose needs the finest resolution",
    "d": "the noise inputs decide pose; the ws only change brightness",
}


def _check_layers(answer):
    if not isinstance(answer, str) or answer.strip().lower() not in LAYER_CHOICES:
        raise Incorrect(f"answer with one letter from {sorted(LAYER_CHOICES)}")
    if answer.strip().lower() != "a":
        raise Incorrect("look at the style-mixing grid again: when the switch is early (the second "
                        "face's w from layer 1 on), what is left of the first face? When it is late?")


# q4 -------------------------------------------------------------------------------------

def copy_share(distances, holdout_distances, quantile=0.01):
    """Reference: share of samples nearer to a training face than the `quantile` of held-out distances."""
    threshold = np.quantile(np.asarray(holdout_distances, float), quantile)
    return float((np.asarray(distances, float) < threshold).mean())


def _check_copy_share(function):
    holdout = np.linspace(2.0, 6.0, 101)                # 1% quantile = 2.04
    distances = np.array([0.1, 0.5, 2.0, 3.0, 5.0, 7.0, 9.0, 9.5])
    got = float(call(function, distances, holdout))
    if np.isclose(got, 0.5):
        raise Incorrect("you used the held-out *median*; a near-copy is nearer than almost every real new face")
    if np.isclose(got, 0.25):
        raise Incorrect("compare with the held-out faces' 1% quantile, not their smallest distance")
    if not np.isclose(got, copy_share(distances, holdout)):
        raise Incorrect("threshold = np.quantile(holdout_distances, 0.01); count samples strictly below it")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `demodulation(kernel, styles)`: StyleGAN2's factor for each sample "
                          "and output channel, for a kernel of shape (k, k, in, out) and styles of "
                          "shape (N, in). Use `keras.ops` (it runs on NumPy arrays and inside the "
                          "training step); the generator below trains with your function.",
        checker=_check_demodulation,
        hints=("Modulate first: W'[n, k, i, o] = W[k, i, o] * s[n, i], e.g. "
               "`kernel[None] * styles[:, None, None, :, None]`.",
               "Then one number per sample n and output channel o: 1 / sqrt(sum over the kernel "
               "positions and input channels of W'² + eps), i.e. `ops.sum(..., axis=(1, 2, 3))`."),
        solution_code="def demodulation(kernel, styles, eps=1e-8):\n"
                      "    modulated = kernel[None] * styles[:, None, None, :, None]   # (N, k, k, in, out)\n"
                      "    return 1 / ops.sqrt(ops.sum(modulated ** 2, axis=(1, 2, 3)) + eps)",
        reference=demodulation),
    Exercise(
        name="q2", prompt="Write `truncate(w, w_avg, psi)`: the truncation trick for a batch of ws "
                          "(rows) and the tracked mean `w_avg`; the truncation figures below use it.",
        checker=_check_truncate,
        hints=("psi = 0 must give the mean face for every row; psi = 1 the untouched w.",
               "A straight line from w_avg to w, at the fraction psi."),
        solution_code="def truncate(w, w_avg, psi):\n    return w_avg + psi * (w - w_avg)",
        reference=truncate),
    Exercise(
        name="q3", prompt="Which layers hold pose and which hold texture? Answer with one letter "
                          "from `labkit.exercises.nb07.LAYER_CHOICES`.",
        checker=_check_layers,
        hints=("A 4x4 feature map can only describe where the big blobs are.",
               "In the style-mixing grid, each row keeps the outline and lighting of its own face, whatever the column."),
        solution_code='answer = "a"', reference="a"),
    Exercise(
        name="q4", prompt="Write `copy_share(distances, holdout_distances, quantile=0.01)`: the share "
                          "of generated faces nearer to their nearest training face than the 1% "
                          "quantile of the held-out real faces' nearest-training distances.",
        checker=_check_copy_share,
        hints=("Held-out real faces are new faces by construction: use them to calibrate 'near'.",
               "`np.quantile`, then the mean of a boolean array."),
        solution_code="def copy_share(distances, holdout_distances, quantile=0.01):\n"
                      "    threshold = np.quantile(holdout_distances, quantile)\n"
                      "    return float((np.asarray(distances) < threshold).mean())",
        reference=copy_share),
]
