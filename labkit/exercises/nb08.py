"""Exercises of notebook 08 — the financial-data case (synthetic market series and credit records)."""
import numpy as np

from . import Exercise, Incorrect, call

FACTS = ("heavy tails", "no linear autocorrelation", "volatility clustering", "leverage effect",
         "gain/loss asymmetry")


def _check_garch_fact(answer):
    if not isinstance(answer, str) or answer.strip().lower() not in FACTS:
        raise Incorrect("answer with one of: " + ", ".join(repr(f) for f in FACTS))
    if answer.strip().lower() != "volatility clustering":
        raise Incorrect("look at the GARCH recursion: which quantity of today depends on yesterday's "
                        "squared return? A symmetric GARCH has no term that knows the sign of a return")


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
        name="q1", prompt="Which stylised fact does a symmetric GARCH(1,1) reproduce *by construction*? "
                          "Answer with one of " + ", ".join(repr(f) for f in FACTS) + ".",
        checker=_check_garch_fact,
        hints=("Write down sigma_t^2 = omega + alpha r_{t-1}^2 + beta sigma_{t-1}^2.",
               "A large |r| yesterday raises today's variance, whatever its sign."),
        solution_code='answer = "volatility clustering"', reference="volatility clustering"),
    Exercise(
        name="q2", prompt="Write `hill_alpha(x, k)`: the Hill estimate of the tail index alpha from the "
                          "k largest values of |x|.",
        checker=_check_hill,
        hints=("Sort |x| in decreasing order: a[0] >= a[1] >= ...",
               "alpha = 1 / mean(log(a[:k] / a[k]))."),
        solution_code="def hill_alpha(x, k):\n    a = np.sort(np.abs(x))[::-1]\n"
                      "    return 1 / np.mean(np.log(a[:k] / a[k]))",
        reference=hill_alpha),
    Exercise(
        name="q3", prompt="Write `tv_complement(real, synthetic)` for two lists of categories: "
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
        name="q4", prompt="The median distance from synthetic rows to their closest training row is no "
                          "smaller than that of held-out real rows. Which statements does this show? "
                          + "; ".join(f"({k}) {v}" for k, v in DCR_STATEMENTS.items())
                          + ". Answer with a set of letters.",
        checker=_check_dcr,
        hints=("The holdout rows are real people the generator never saw: what does 'as far as them' mean?",
               "Which statements are about every single row or every possible attack?"),
        solution_code="answer = {'c'}", reference={"c"}),
]
