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


def clip_rows(gradients, clip_norm):
    """Reference: per-example clipping, each row scaled to L2 norm at most clip_norm."""
    g = np.asarray(gradients, float)
    norms = np.linalg.norm(g, axis=1, keepdims=True)
    return g * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))


def _check_clip(function):
    rng = np.random.default_rng(1)
    g = rng.normal(size=(6, 5)) * np.array([[0.1], [3], [0.5], [10], [1], [0.01]])
    got = np.asarray(call(function, g, 1.0), float)
    if got.shape != g.shape:
        raise Incorrect(f"return one clipped gradient per example: expected shape {g.shape}, got {got.shape}")
    norms = np.linalg.norm(got, axis=1)
    if np.allclose(got, g / np.linalg.norm(g)):
        raise Incorrect("you clipped the whole batch at once: DP-SGD clips every example on its own")
    if np.allclose(got, np.clip(g, -1, 1)):
        raise Incorrect("clipping each coordinate changes the direction; scale the whole row instead")
    if np.any(norms > 1.0 + 1e-9):
        raise Incorrect("some rows are still longer than clip_norm")
    if not np.allclose(got, clip_rows(g, 1.0)):
        raise Incorrect("rows already shorter than clip_norm must stay as they are; longer rows keep their "
                        "direction and get length clip_norm")


def may_share(card):
    """Reference: share only if the membership attack is at chance, there is no excess of near-copies
    and a formal guarantee exists — i.e. every privacy check passed."""
    checks = {c["check"]: c["passed"] for c in card["checks"]}
    privacy = [name for name in checks if name != "useful for training models"]
    return bool(all(checks[name] for name in privacy))


def _card(auc_ok, copies_ok, dcr_ok, dp_ok, useful):
    names = ["membership attack at chance", "no excess of near-copies",
             "not closer to training data than fresh data", "formal privacy guarantee",
             "useful for training models"]
    return {"name": "example", "checks": [{"check": n, "passed": p, "evidence": ""}
                                          for n, p in zip(names, (auc_ok, copies_ok, dcr_ok, dp_ok, useful))]}


def _check_share(function):
    cases = [(_card(True, True, True, True, True), True, "every check passed"),
             (_card(True, True, True, True, False), True,
              "a set of little use is not a privacy risk: utility does not decide whether it may be shared"),
             (_card(False, True, True, True, True), False,
              "the membership attack beats chance: training records can be recognised"),
             (_card(True, True, True, False, True), False,
              "an attack at chance today is no guarantee against tomorrow's attack: without a formal "
              "guarantee, do not share"),
             (_card(True, False, True, True, True), False, "the set holds too many near-copies")]
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
        name="q3", prompt="Write `clip_rows(gradients, clip_norm)`: DP-SGD's per-example clipping for a "
                          "(N, D) array holding one flattened gradient per example.",
        checker=_check_clip,
        hints=("Each row is scaled by min(1, clip_norm / its L2 norm).",
               "`np.linalg.norm(g, axis=1, keepdims=True)`."),
        solution_code="def clip_rows(gradients, clip_norm):\n"
                      "    norms = np.linalg.norm(gradients, axis=1, keepdims=True)\n"
                      "    return gradients * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))",
        reference=clip_rows),
    Exercise(
        name="q4", prompt="Write `may_share(card)`: given a data card as a dict (like `card.as_dict()`), "
                          "decide whether the synthetic set may be shared.",
        checker=_check_share,
        hints=("Look at `card['checks']`: which of them are about privacy, and which about usefulness?",
               "Every privacy check must pass, including the formal guarantee; utility does not decide."),
        solution_code="def may_share(card):\n"
                      "    return all(c['passed'] for c in card['checks']\n"
                      "               if c['check'] != 'useful for training models')",
        reference=may_share),
]
