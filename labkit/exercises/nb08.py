"""Exercises of notebook 08 — the financial-data case (synthetic market series and credit records)."""
import numpy as np

from . import Exercise, Incorrect, call

FACTS = ("heavy tails", "no linear autocorrelation", "volatility clustering", "leverage effect",
         "gain/loss asymmetry")
NEVER = {"leverage effect", "gain/loss asymmetry"}


# --- q1: the WGAN-GP gradient penalty (the next cells train with it) ----------------------------

def gradient_penalty(critic, real, fake, eps):
    """Reference: E[(||grad critic(x_hat)|| - 1)^2] at x_hat = eps real + (1 - eps) fake, one gradient
    norm per example over all its other axes (Gulrajani et al. 2017)."""
    import tensorflow as tf

    mixed = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        score = critic(mixed, training=True)
    grad = tape.gradient(score, mixed)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def _penalty_cases():
    """Two small critics (sequences (n, 6, 3) and table rows (n, 5)) with inputs and mixing weights."""
    import keras

    rng = np.random.default_rng(3)
    cases = []
    for shape in ((6, 3), (5,)):
        keras.utils.set_random_seed(7)
        critic = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                                   keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
        for layer in critic.layers:             # weights large enough that norms fall on both sides of 1
            layer.set_weights([w * 2.5 for w in layer.get_weights()])
        real = rng.normal(size=(16,) + shape).astype(np.float32)
        fake = rng.normal(0.5, 1.5, size=(16,) + shape).astype(np.float32)
        eps = rng.uniform(size=(16,) + (1,) * len(shape)).astype(np.float32)
        cases.append((critic, real, fake, eps))
    return cases


def _norms(critic, x):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = critic(x, training=True)
    grad = tape.gradient(score, x)
    return grad.numpy().reshape(len(x), -1)


def _check_penalty(function):
    import tensorflow as tf

    for critic, real, fake, eps in _penalty_cases():
        args = [tf.constant(a) for a in (real, fake, eps)]
        got = call(function, critic, *args)
        got = float(got.numpy() if hasattr(got, "numpy") else got)
        want = float(gradient_penalty(critic, *args))
        if np.isclose(got, want, rtol=1e-4, atol=1e-6):
            continue
        mixed = eps * real + (1 - eps) * fake
        g = _norms(critic, mixed)
        norm = np.sqrt((g ** 2).sum(axis=1))
        if np.isclose(got, np.mean(norm ** 2), rtol=1e-3):
            raise Incorrect("that penalises the squared gradient norm, pushing it to 0; WGAN-GP wants "
                            "each norm near 1 (a 1-Lipschitz critic)")
        if np.isclose(got, np.mean(np.maximum(norm - 1, 0) ** 2), rtol=1e-3):
            raise Incorrect("that is the one-sided penalty (only norms above 1); the course's WGAN-GP "
                            "penalises both sides")
        if np.isclose(got, np.mean((np.abs(g) - 1) ** 2), rtol=1e-3):
            raise Incorrect("take one norm per example, over all its values (days and features), then "
                            "average (norm - 1)^2 over the batch")
        if np.isclose(got, np.sum((norm - 1) ** 2), rtol=1e-3):
            raise Incorrect("average over the batch, not sum: the penalty weight 10 assumes a mean")
        for name, x in (("real", real), ("generated", fake)):
            n = np.sqrt((_norms(critic, x) ** 2).sum(axis=1))
            if np.isclose(got, np.mean((n - 1) ** 2), rtol=1e-3):
                raise Incorrect(f"that is the penalty at the {name} points; take it at the mixed points "
                                "eps * real + (1 - eps) * fake")
        raise Incorrect("compute the critic's gradient at the mixed points, its norm per example, and "
                        "return the batch mean of (norm - 1)^2")
    critic, *arrays = _penalty_cases()[0]
    real, fake, eps = (tf.constant(a) for a in arrays)
    try:
        value = tf.function(lambda r, f, e: function(critic, r, f, e))(real, fake, eps)
    except Exception as err:  # noqa: BLE001
        raise Incorrect(f"your function must also run inside a compiled training step (tf.function): "
                        f"use TensorFlow operations, not NumPy ({type(err).__name__})") from None
    if not np.isclose(float(value), float(gradient_penalty(critic, real, fake, eps)), rtol=1e-4, atol=1e-6):
        raise Incorrect("inside tf.function your function gives another value: use TensorFlow operations")


# --- q2: what symmetric GARCH cannot do ---------------------------------------------------------

def _check_garch_never(answer):
    chosen = ({str(a).strip().lower() for a in answer} if isinstance(answer, (set, list, tuple))
              else {answer.strip().lower()} if isinstance(answer, str) else None)
    if chosen is None or not chosen or not chosen <= set(FACTS):
        raise Incorrect("answer with a set of facts from: " + ", ".join(repr(f) for f in FACTS))
    produced = chosen - NEVER
    if produced:
        fact = sorted(produced)[0]
        why = {"volatility clustering": "a large shock yesterday raises today's variance: that is clustering",
               "heavy tails": "Student-t shocks, and a variance that changes over time, both fatten the tails",
               "no linear autocorrelation": "r_t - mu = sigma_t eps_t with a fresh eps_t: no linear "
                                            "dependence on the past"}[fact]
        raise Incorrect(f"GARCH(1,1)-t does produce {fact!r}: {why}")
    if chosen != NEVER:
        raise Incorrect("there is a second one: which facts need the model to know the *sign* of a return?")


def hill_alpha(x, k):
    """Reference: the Hill tail index from the k largest absolute values."""
    a = np.sort(np.abs(np.asarray(x, dtype=float)))[::-1]
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def _check_hill(function):
    rng = np.random.default_rng(0)
    x = rng.pareto(3.0, 20000) + 1.0          # a Pareto tail with alpha = 3
    got = float(call(function, x, 1000))
    if not np.isclose(got, hill_alpha(x, 1000), rtol=1e-6):
        if np.isclose(got, 1.0 / hill_alpha(x, 1000), rtol=1e-6):
            raise Incorrect("you returned the Hill estimate of 1/alpha (the extreme-value index); invert it")
        raise Incorrect("sort |x| from largest down, average log(x_(i) / x_(k+1)) over the k largest, "
                        "and return one over that mean")


def tv_complement(real, synthetic):
    """Reference: 1 - total variation distance between the category frequencies."""
    cats = set(real) | set(synthetic)
    p = {c: list(real).count(c) / len(real) for c in cats}
    q = {c: list(synthetic).count(c) / len(synthetic) for c in cats}
    return 1.0 - 0.5 * sum(abs(p[c] - q[c]) for c in cats)


def _check_tv(function):
    real = ["A"] * 5 + ["B"] * 3 + ["C"] * 2
    synth = ["A"] * 3 + ["B"] * 5 + ["D"] * 2
    got = float(call(function, real, synth))
    if np.isclose(got, 1 - tv_complement(real, synth)):
        raise Incorrect("that is the distance; the score is one minus it (1 = identical)")
    if np.isclose(got, 1 - 2 * (1 - tv_complement(real, synth))):
        raise Incorrect("total variation distance has a factor 1/2 in front of the sum")
    if not np.isclose(got, tv_complement(real, synth)):
        raise Incorrect("compare frequencies (shares, not counts) over the union of both sets of "
                        "categories; a category missing on one side has frequency 0 there")


DCR_STATEMENTS = {
    "a": "no synthetic row is an exact copy of a training row",
    "b": "the generator is differentially private",
    "c": "synthetic rows are typically no closer to training rows than unseen real rows are",
    "d": "no attribute of a person in the training set can be inferred from the synthetic table",
}


def _check_dcr(answer):
    chosen = {str(a).strip().lower() for a in answer} if isinstance(answer, (set, list, tuple)) else None
    if chosen is None or not chosen <= set(DCR_STATEMENTS):
        raise Incorrect("answer with a set of letters, e.g. {'a'}, from " + ", ".join(DCR_STATEMENTS))
    if "a" in chosen:
        raise Incorrect("a median says nothing about the closest few rows; exact copies need their own count")
    if "b" in chosen or "d" in chosen:
        raise Incorrect("differential privacy and attribute inference are guarantees about every person, "
                        "under any attack; one summary distance cannot give them")
    if chosen != {"c"}:
        raise Incorrect("one statement is what the comparison with the holdout set is built to show")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `gradient_penalty(critic, real, fake, eps)`: WGAN-GP's penalty, the batch "
                          "mean of (||grad of the critic at x_hat|| - 1)^2 with x_hat = eps * real + "
                          "(1 - eps) * fake and one norm per example.",
        checker=_check_penalty,
        hints=("tape.gradient(score, mixed) has the shape of the inputs: (batch, days, features) for "
               "sequences, (batch, columns) for table rows.",
               "Sum the squared gradient over every axis but the first, take the square root (add 1e-12 "
               "inside it), then average (norm - 1)^2."),
        solution_code=("def gradient_penalty(critic, real, fake, eps):\n"
                       "    mixed = eps * real + (1.0 - eps) * fake\n"
                       "    with tf.GradientTape() as tape:\n        tape.watch(mixed)\n"
                       "        score = critic(mixed, training=True)\n"
                       "    grad = tape.gradient(score, mixed)\n"
                       "    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))) + 1e-12)\n"
                       "    return tf.reduce_mean(tf.square(norm - 1.0))"),
        reference=gradient_penalty),
    Exercise(
        name="q2", prompt="Which stylised facts can a symmetric GARCH(1,1)-t model *never* produce, whatever "
                          "its parameters? Answer with a set of facts from " + ", ".join(repr(f) for f in FACTS) + ".",
        checker=_check_garch_never,
        hints=("Write down sigma_t^2 = omega + alpha (r_{t-1} - mu)^2 + beta sigma_{t-1}^2 and ask what "
               "changes if every shock flips its sign.",
               "Flipping the sign of every shock leaves the variance path unchanged and mirrors the returns."),
        solution_code='answer = {"leverage effect", "gain/loss asymmetry"}', reference=set(NEVER)),
    Exercise(
        name="q3", prompt="Write `hill_alpha(x, k)`: the Hill estimate of the tail index alpha from the "
                          "k largest values of |x|.",
        checker=_check_hill,
        hints=("Sort |x| in decreasing order: a[0] >= a[1] >= ...",
               "alpha = 1 / mean(log(a[:k] / a[k]))."),
        solution_code="def hill_alpha(x, k):\n    a = np.sort(np.abs(x))[::-1]\n"
                      "    return 1 / np.mean(np.log(a[:k] / a[k]))",
        reference=hill_alpha),
    Exercise(
        name="q4", prompt="Write `tv_complement(real, synthetic)` for two lists of categories: "
                          "1 - total variation distance of their frequencies (SDMetrics' TVComplement).",
        checker=_check_tv,
        hints=("TV distance = 1/2 * sum over categories of |p(c) - q(c)|.",
               "Use the union of categories; frequencies are counts divided by the list length."),
        solution_code="def tv_complement(real, synthetic):\n    cats = set(real) | set(synthetic)\n"
                      "    p = {c: real.count(c) / len(real) for c in cats}\n"
                      "    q = {c: synthetic.count(c) / len(synthetic) for c in cats}\n"
                      "    return 1 - 0.5 * sum(abs(p[c] - q[c]) for c in cats)",
        reference=tv_complement),
    Exercise(
        name="q5", prompt="The median distance from synthetic rows to their closest training row is no "
                          "smaller than that of held-out real rows. Which statements does this show? "
                          + "; ".join(f"({k}) {v}" for k, v in DCR_STATEMENTS.items())
                          + ". Answer with a set of letters.",
        checker=_check_dcr,
        hints=("The holdout rows are real people the generator never saw: what does 'as far as them' mean?",
               "Which statements are about every single row or every possible attack?"),
        solution_code="answer = {'c'}", reference={"c"}),
]
