"""Exercises of notebook 09 — quality, privacy and responsible use of synthetic data (11.2.1, 11.4)."""
import numpy as np

from . import Exercise, Incorrect, call


def attack_auc(member_scores, non_member_scores):
    """Reference: the share of (member, non-member) pairs in which the member scores higher, ties 1/2."""
    m, n = np.asarray(member_scores, float), np.asarray(non_member_scores, float)
    return float(((m[:, None] > n[None, :]) + 0.5 * (m[:, None] == n[None, :])).mean())


def _check_auc(function):
    members = np.array([0.9, 0.8, 0.4, 0.4])
    non_members = np.array([0.7, 0.4, 0.1])
    got = float(call(function, members, non_members))
    want = attack_auc(members, non_members)
    if np.isclose(got, 1 - want):
        raise Incorrect("you measured how often the non-member wins: the attack says 'member' for high scores")
    if np.isclose(got, np.mean(members) - np.mean(non_members)):
        raise Incorrect("the AUC compares every member with every non-member, not the two means")
    if np.isclose(got, attack_auc(members, non_members) - 0.5 * 2 / 12):
        raise Incorrect("a tie (equal scores) counts as half a win")
    if not np.isclose(got, want):
        raise Incorrect("count, over all (member, non-member) pairs, the share where the member's score "
                        "is higher (ties count 1/2)")
    if not np.isclose(float(call(function, np.ones(3), np.ones(5))), 0.5):
        raise Incorrect("with all scores equal the attack is guessing: the AUC must be 0.5")


def dcr_ratio(dcr_synthetic, dcr_holdout):
    """Reference: median distance to closest record of synthetic rows over that of held-out rows."""
    return float(np.median(dcr_synthetic) / np.median(dcr_holdout))


def _check_dcr(function):
    rng = np.random.default_rng(0)
    syn, hold = rng.gamma(2.0, 1.0, 101), rng.gamma(3.0, 1.5, 99)
    syn[0] = 500.0                                     # one far outlier: the median does not care
    got = float(call(function, syn, hold))
    if np.isclose(got, 1 / dcr_ratio(syn, hold)):
        raise Incorrect("the ratio is upside down: synthetic over held-out, so copying gives a value below 1")
    if np.isclose(got, np.mean(syn) / np.mean(hold)):
        raise Incorrect("use medians: one far-away sample should not hide many near-copies")
    if not np.isclose(got, dcr_ratio(syn, hold)):
        raise Incorrect("divide the median of the synthetic distances by the median of the held-out ones")


def clip_per_example(grads, clip_norm):
    """Reference: DP-SGD's per-example clipping. ``grads`` holds one tensor per variable, each of shape
    (B, ...); example i's gradient is ``[g[i] for g in grads]``. Each example's whole gradient (all
    variables together) is scaled to L2 norm at most ``clip_norm``."""
    import tensorflow as tf

    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in grads]
    norms = tf.sqrt(tf.add_n(squares))                                 # (B,): one norm per example
    scale = tf.minimum(1.0, clip_norm / tf.maximum(norms, 1e-12))
    return [g * tf.reshape(scale, [-1] + [1] * (len(g.shape) - 1)) for g in grads]


def _clip_cases():
    rng = np.random.default_rng(1)
    size = np.array([0.1, 3, 0.5, 10, 1, 0.01, 0.6])               # example 6: each part short, the whole long
    a = (rng.normal(size=(7, 3, 2)) * size[:, None, None]).astype("float32")
    b = (rng.normal(size=(7, 4)) * size[:, None]).astype("float32")
    a[6] *= 0.9 / np.linalg.norm(a[6])
    b[6] *= 0.9 / np.linalg.norm(b[6])
    return [a, b]


def _per_example_norms(parts):
    return np.sqrt(sum(np.sum(np.reshape(p, (len(p), -1)) ** 2, axis=1) for p in parts))


def _check_clip(function):
    import tensorflow as tf

    grads = _clip_cases()
    got = call(function, [tf.constant(g) for g in grads], 1.0)
    if not isinstance(got, (list, tuple)) or len(got) != len(grads):
        raise Incorrect(f"return a list with one clipped tensor per variable ({len(grads)} here)")
    got = [np.asarray(g, float) for g in got]
    if any(g.shape != w.shape for g, w in zip(got, grads)):
        raise Incorrect("keep every tensor's shape: " + ", ".join(str(w.shape) for w in grads))
    want = [np.asarray(g) for g in clip_per_example([tf.constant(g) for g in grads], 1.0)]
    whole = np.sqrt(sum(np.sum(g.astype(float) ** 2) for g in grads))
    if all(np.allclose(g, w / max(1.0, whole), atol=1e-6) for g, w in zip(got, grads)):
        raise Incorrect("you clipped the whole batch at once: DP-SGD clips every example on its own, so "
                        "that no single example can move the model by more than clip_norm")
    if all(np.allclose(g, np.clip(w, -1.0, 1.0), atol=1e-6) for g, w in zip(got, grads)):
        raise Incorrect("clipping each coordinate changes the gradient's direction; scale each example's "
                        "whole gradient instead")
    norms = _per_example_norms(got)
    if np.any(norms > 1.0 + 1e-5):
        raise Incorrect("some examples' gradients are still longer than clip_norm once all variables are "
                        "counted: the norm of an example is taken over all its variables together (clipping "
                        "each variable alone lets an example move the model by clip_norm per variable)")
    if not all(np.allclose(g, w, rtol=1e-5, atol=1e-6) for g, w in zip(got, want)):
        raise Incorrect("examples already shorter than clip_norm must stay as they are; longer ones keep "
                        "their direction and get length clip_norm")
    try:
        tf.function(function)([tf.constant(g) for g in grads], 1.0)
    except Exception as error:  # noqa: BLE001 - a NumPy answer fails inside the compiled step
        raise Incorrect("the training step runs as a compiled TensorFlow graph: use TensorFlow operations "
                        f"(tf.reduce_sum, tf.sqrt, tf.minimum), not NumPy ({type(error).__name__})") from None


def may_share(card):
    """Reference: share only if every privacy check passed (the attack shown weak, no excess of
    near-copies, not closer to the training data than fresh data, a formal guarantee)."""
    checks = {c["check"]: c["passed"] for c in card["checks"]}
    privacy = [name for name in checks if name != "useful for training models"]
    return bool(all(checks[name] for name in privacy))


def _card(auc_ok, copies_ok, dcr_ok, dp_ok, useful):
    names = ["membership attack shown weak", "no excess of near-copies",
             "not closer to training data than fresh data", "formal privacy guarantee",
             "useful for training models"]
    return {"name": "example", "checks": [{"check": n, "passed": p, "evidence": ""}
                                          for n, p in zip(names, (auc_ok, copies_ok, dcr_ok, dp_ok, useful))]}


def _check_share(function):
    cases = [(_card(True, True, True, True, True), True, "every check passed"),
             (_card(True, True, True, True, False), True,
              "a set of little use is not a privacy risk: utility does not decide whether it may be shared"),
             (_card(False, True, True, True, True), False,
              "the membership attack is not shown to be weak: training records may be recognisable"),
             (_card(True, True, True, False, True), False,
              "an attack at chance today is no guarantee against tomorrow's attack: without a formal "
              "guarantee, do not share"),
             (_card(True, False, True, True, True), False, "the set holds too many near-copies"),
             (_card(True, True, False, True, True), False,
              "the synthetic rows sit closer to the training data than fresh real rows do")]
    for card, want, why in cases:
        got = call(function, card)
        if bool(got) != want:
            raise Incorrect(f"{'share' if want else 'do not share'} expected when {why}")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `attack_auc(member_scores, non_member_scores)`: the ROC AUC of a "
                          "membership attack, by counting pairs.",
        checker=_check_auc,
        hints=("The AUC is the probability that a random member scores higher than a random non-member.",
               "Compare every pair with broadcasting: `m[:, None] > n[None, :]`; add half of the ties."),
        solution_code="def attack_auc(member_scores, non_member_scores):\n"
                      "    m, n = np.asarray(member_scores), np.asarray(non_member_scores)\n"
                      "    return ((m[:, None] > n[None, :]) + 0.5 * (m[:, None] == n[None, :])).mean()",
        reference=attack_auc),
    Exercise(
        name="q2", prompt="Write `dcr_ratio(dcr_synthetic, dcr_holdout)`: how much closer synthetic rows sit to "
                          "the training set than held-out real rows do.",
        checker=_check_dcr,
        hints=("Below 1 means the synthetic rows are closer to the training data than new real data are.",
               "A ratio of two medians."),
        solution_code="def dcr_ratio(dcr_synthetic, dcr_holdout):\n"
                      "    return np.median(dcr_synthetic) / np.median(dcr_holdout)",
        reference=dcr_ratio),
    Exercise(
        name="q3", prompt="Write `clip_per_example(grads, clip_norm)`: DP-SGD's per-example clipping. "
                          "`grads` is a list with one tensor per variable, each of shape (B, ...); scale every "
                          "example's whole gradient (all variables together) to L2 norm at most `clip_norm`. "
                          "Use TensorFlow operations: the DP-SGD step below trains with your function.",
        checker=_check_clip,
        hints=("One norm per example: square every tensor, sum over all axes but the first, add the sums of "
               "all variables, take the square root. Then scale example i by min(1, clip_norm / norm_i).",
               "`tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1)` is one variable's share "
               "of the squared norms; reshape the (B,) scale to `[-1] + [1] * (len(g.shape) - 1)` to multiply."),
        solution_code="def clip_per_example(grads, clip_norm):\n"
                      "    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in grads]\n"
                      "    norms = tf.sqrt(tf.add_n(squares))\n"
                      "    scale = tf.minimum(1.0, clip_norm / tf.maximum(norms, 1e-12))\n"
                      "    return [g * tf.reshape(scale, [-1] + [1] * (len(g.shape) - 1)) for g in grads]",
        reference=clip_per_example),
    Exercise(
        name="q4", prompt="Write `may_share(card)`: given a data card as a dict (like `card.as_dict()`), "
                          "decide whether the synthetic set may be shared.",
        checker=_check_share,
        hints=("Look at `card['checks']`: which of them are about privacy, and which about usefulness?",
               "Every privacy check must pass (four of them), including the formal guarantee; utility does not decide."),
        solution_code="def may_share(card):\n"
                      "    return all(c['passed'] for c in card['checks']\n"
                      "               if c['check'] != 'useful for training models')",
        reference=may_share),
]
