"""Exercises of notebook 04 — GANs on handwritten digits (11.2.2.1, 11.3.2)."""
import numpy as np

from . import Exercise, Incorrect, call


def _bce_from_logits(targets, logits):
    """Mean binary cross-entropy of logits against targets, in NumPy (numerically stable)."""
    logits = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))


def _as_float(value):
    return float(np.asarray(value, dtype=np.float64).mean())


def _logits(seed):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return tf.constant(rng.normal(0, 2, size=(16, 1)).astype(np.float32))


# q1 -------------------------------------------------------------------------------------

def generator_loss(fake_logits):
    """Reference: the non-saturating generator loss, BCE of the fake logits against "real" (1)."""
    import keras
    import tensorflow as tf

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return bce(tf.ones_like(fake_logits), fake_logits)


def _check_generator_loss(function):
    for seed in (0, 1):
        logits = _logits(seed)
        got = _as_float(call(function, logits))
        values = logits.numpy()
        if np.isclose(got, _bce_from_logits(1.0, values), rtol=1e-4):
            continue
        if np.isclose(got, _bce_from_logits(0.0, values), rtol=1e-4):
            raise Incorrect("that is the discriminator's target for fakes. The generator wants the "
                            "discriminator to call its images *real*")
        if np.isclose(got, -_bce_from_logits(0.0, values), rtol=1e-4):
            raise Incorrect("that is the original minimax loss: it saturates (its gradient vanishes) "
                            "exactly when the discriminator rejects the fakes confidently, early in "
                            "training. Use the non-saturating form")
        raise Incorrect("compute the binary cross-entropy of the fake logits against one target "
                        "value for every image")


# q2 -------------------------------------------------------------------------------------

def discriminator_loss(real_logits, fake_logits, real_label=0.9):
    """Reference: BCE on real images against ``real_label`` plus BCE on fakes against 0."""
    import keras
    import tensorflow as tf

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    return (bce(tf.fill(tf.shape(real_logits), real_label), real_logits)
            + bce(tf.zeros_like(fake_logits), fake_logits))


def _check_discriminator_loss(function):
    real, fake = _logits(2), _logits(3)
    r, f = real.numpy(), fake.numpy()
    got = _as_float(call(function, real, fake, 0.9))
    want = _bce_from_logits(0.9, r) + _bce_from_logits(0.0, f)
    if np.isclose(got, want, rtol=1e-4):
        got_plain = _as_float(call(function, real, fake, 1.0))
        if not np.isclose(got_plain, _bce_from_logits(1.0, r) + _bce_from_logits(0.0, f), rtol=1e-4):
            raise Incorrect("with real_label=1.0 the loss should be the plain GAN loss: use the "
                            "argument, not a hard-coded 0.9")
        return
    if np.isclose(got, _bce_from_logits(0.9, r) + _bce_from_logits(0.1, f), rtol=1e-4):
        raise Incorrect("smooth only the real side (one-sided smoothing): fakes keep target 0, or "
                        "the discriminator would reward fakes it is sure about")
    if np.isclose(got, _bce_from_logits(1.0, r) + _bce_from_logits(0.0, f), rtol=1e-4):
        raise Incorrect("close: now use `real_label` as the target for the real images")
    raise Incorrect("the loss is a sum of two cross-entropies: real logits against real_label, "
                    "fake logits against 0")


# q3 -------------------------------------------------------------------------------------

TOO_FAST_CHOICES = {
    "a": "the generator improves faster, because it gets a sharper teacher",
    "b": "the discriminator wins: its loss falls towards 0, the generator's loss climbs and "
         "its samples stop improving (or collapse to a few shapes)",
    "c": "nothing changes: the two learning rates only affect speed, not the outcome",
    "d": "both losses settle at log 4 ≈ 1.39, the equilibrium of the minimax game",
}


def _check_too_fast(answer):
    if not isinstance(answer, str) or answer.strip().lower() not in TOO_FAST_CHOICES:
        raise Incorrect(f"answer with one letter from {sorted(TOO_FAST_CHOICES)}")
    if answer.strip().lower() != "b":
        raise Incorrect("think about what the generator's gradient is made of: it flows through "
                        "the discriminator's output. What is that output when D is certain?")


# q4 -------------------------------------------------------------------------------------

def fid_1d(mu1, sd1, mu2, sd2):
    """Reference: the Fréchet distance of two 1-D Gaussians, (mu1 - mu2)² + (sd1 - sd2)²."""
    return (mu1 - mu2) ** 2 + (sd1 - sd2) ** 2


def _check_fid_1d(function):
    cases = [(0.0, 1.0, 0.0, 1.0), (1.0, 1.0, -1.0, 1.0), (0.0, 2.0, 0.0, 0.5), (3.0, 0.2, 1.0, 1.7)]
    for case in cases:
        got = float(call(function, *case))
        if not np.isclose(got, fid_1d(*case)):
            mu1, sd1, mu2, sd2 = case
            if np.isclose(got, (mu1 - mu2) ** 2 + sd1 ** 2 + sd2 ** 2 - 2 * sd1 * sd2):
                continue  # the same formula, expanded
            raise Incorrect(f"for mu1={mu1}, sd1={sd1}, mu2={mu2}, sd2={sd2} expected another value. "
                            "In 1-D, Tr(S1 + S2 - 2 (S1 S2)^½) uses variances S = sd²")


# q5 -------------------------------------------------------------------------------------

def r1_penalty(discriminator, real_images, gamma):
    """Reference: ``gamma / 2 * E ||grad_x D(x)||^2`` over a batch of real images."""
    import tensorflow as tf

    x = tf.convert_to_tensor(real_images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.reduce_sum(discriminator(x))
    grad = tape.gradient(logits, x)
    return 0.5 * gamma * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))


def _check_r1_penalty(function):
    import keras
    import tensorflow as tf

    from ..gan import dcgan_discriminator

    keras.utils.set_random_seed(5)
    discriminator = dcgan_discriminator(width=4)
    real = tf.constant(np.random.default_rng(5).uniform(-1, 1, (6, 28, 28, 1)).astype(np.float32))
    want = float(r1_penalty(discriminator, real, 3.0))
    got = call(function, discriminator, real, 3.0)
    if got is None:
        raise Incorrect("the function returns None: return the penalty")
    got = _as_float(got)
    if np.isclose(got, want, rtol=1e-3):
        return
    if np.isclose(got, 2 * want, rtol=1e-3):
        raise Incorrect("twice the expected value: the penalty is gamma / 2 times the squared norm")
    if np.isclose(got, want / (28 * 28), rtol=1e-3):
        raise Incorrect("the squared norm of each image's gradient is a *sum* over its 784 pixels; "
                        "average only over the images of the batch")
    raise Incorrect("differentiate the discriminator's logits with respect to the *images* (watch them "
                    "with a GradientTape), square, sum over each image's pixels, average over the batch")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `generator_loss(fake_logits)`: the non-saturating generator loss "
                          "(the discriminator's logits on generated images go in, a scalar comes out).",
        checker=_check_generator_loss,
        hints=("The generator is trained to make the discriminator answer 'real'.",
               "`keras.losses.BinaryCrossentropy(from_logits=True)(targets, logits)` with "
               "`tf.ones_like(fake_logits)` as targets."),
        solution_code="bce = keras.losses.BinaryCrossentropy(from_logits=True)\n"
                      "def generator_loss(fake_logits):\n"
                      "    return bce(tf.ones_like(fake_logits), fake_logits)",
        reference=generator_loss),
    Exercise(
        name="q2", prompt="Fix the broken step: write `discriminator_loss(real_logits, fake_logits, "
                          "real_label=0.9)` with one-sided label smoothing.",
        checker=_check_discriminator_loss,
        hints=("Two cross-entropies: one for the real batch, one for the fake batch.",
               "Only the real targets are smoothed: `tf.fill(tf.shape(real_logits), real_label)`; "
               "fakes keep `tf.zeros_like(fake_logits)`."),
        solution_code="def discriminator_loss(real_logits, fake_logits, real_label=0.9):\n"
                      "    return (bce(tf.fill(tf.shape(real_logits), real_label), real_logits)\n"
                      "            + bce(tf.zeros_like(fake_logits), fake_logits))",
        reference=discriminator_loss),
    Exercise(
        name="q3", prompt="Predict: the discriminator learns much faster than the generator (say a "
                          "10x learning rate). What happens? One letter from "
                          "`labkit.exercises.nb04.TOO_FAST_CHOICES`.",
        checker=_check_too_fast,
        hints=("The generator learns only through the discriminator's gradient.",
               "With a sigmoid output near 0 for every fake, how much does a small change to a "
               "fake change the discriminator's verdict?"),
        solution_code='answer = "b"', reference="b"),
    Exercise(
        name="q4", prompt="Write `fid_1d(mu1, sd1, mu2, sd2)`: the Fréchet distance between two "
                          "1-D Gaussians N(mu1, sd1²) and N(mu2, sd2²).",
        checker=_check_fid_1d,
        hints=("Start from FID = |mu1 - mu2|² + Tr(S1 + S2 - 2 (S1 S2)^½) with S = sd².",
               "In one dimension sd1² + sd2² - 2 sd1 sd2 is a perfect square."),
        solution_code="def fid_1d(mu1, sd1, mu2, sd2):\n"
                      "    return (mu1 - mu2) ** 2 + (sd1 - sd2) ** 2",
        reference=fid_1d),
    Exercise(
        name="q5", prompt="Write `r1_penalty(discriminator, real_images, gamma)`: the R1 penalty "
                          "gamma / 2 * E ||grad_x D(x)||² over a batch of real images (N, 28, 28, 1).",
        checker=_check_r1_penalty,
        hints=("The gradient is taken with respect to the *input images*, not the weights: "
               "`tape.watch(x)` inside a `tf.GradientTape`, then `tape.gradient(logits, x)`.",
               "Sum the logits over the batch before differentiating (each image's logit depends "
               "only on that image); then square the gradient, `reduce_sum` over axes 1-3, "
               "`reduce_mean` over the batch, times gamma / 2."),
        solution_code="def r1_penalty(discriminator, real_images, gamma):\n"
                      "    x = tf.convert_to_tensor(real_images)\n"
                      "    with tf.GradientTape() as tape:\n"
                      "        tape.watch(x)\n"
                      "        logits = tf.reduce_sum(discriminator(x))\n"
                      "    grad = tape.gradient(logits, x)\n"
                      "    squared_norm = tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])\n"
                      "    return 0.5 * gamma * tf.reduce_mean(squared_norm)",
        reference=r1_penalty),
]
