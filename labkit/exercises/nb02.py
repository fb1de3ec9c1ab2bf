"""Exercises of notebook 02 — choosing and preparing data (11.1.2)."""
import numpy as np
import pandas as pd

from . import Exercise, Incorrect, call


def missing_fraction(frame):
    """Reference: the share of cells of a DataFrame that are missing."""
    return float(frame.isna().to_numpy().mean())


def _check_missing(function):
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": ["x", None, None, "y"],
                          "c": [np.nan] * 4})
    got = call(function, frame)
    if not np.isclose(float(got), 7 / 12):
        raise Incorrect("count missing cells over all columns, divide by the number of cells; "
                        "text columns use None for missing, numbers use NaN")


def standardise(train, test):
    """Reference: standardise both sets with the mean and sd of the training set only."""
    mean, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd == 0, 1.0, sd)
    return (train - mean) / sd, (test - mean) / sd


def _standardise_ddof(train, test, ddof):
    mean, sd = train.mean(axis=0), train.std(axis=0, ddof=ddof)
    return (train - mean) / sd, (test - mean) / sd


def _check_standardise(function):
    """Either standard deviation is accepted: the population one (ddof=0, NumPy's and scikit-learn's
    default) or the sample one (ddof=1, pandas' default); the leak is what is checked."""
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, size=(200, 3))
    test = rng.normal(8, 2, size=(50, 3))
    got_train, got_test = (np.asarray(a, dtype=float) for a in call(function, train, test))
    if got_train.shape != train.shape or got_test.shape != test.shape:
        raise Incorrect(f"return both arrays in their shapes {train.shape} and {test.shape}, "
                        f"got {got_train.shape} and {got_test.shape}")
    ddof = next((d for d in (0, 1) if np.allclose(got_train, _standardise_ddof(train, test, d)[0], atol=1e-6)),
                None)
    if ddof is None:
        raise Incorrect("the training set should end with mean 0 and sd 1 in every column")
    if np.allclose(got_test.mean(axis=0), 0, atol=0.05):
        raise Incorrect("the test set came out centred on 0: it was scaled with its own "
                        "statistics. That leaks test information; reuse the training ones")
    if not np.allclose(got_test, _standardise_ddof(train, test, ddof)[1], atol=1e-6):
        raise Incorrect("scale the test set with the training set's mean and sd")


def ks_statistic(a, b):
    """Reference: the two-sample Kolmogorov-Smirnov statistic, max |F_a(t) - F_b(t)|."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def _check_ks(function):
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for shift in (0.0, 0.5):
        a, b = rng.normal(size=300), rng.normal(shift, 1.0, size=200)
        got = float(call(function, a, b))
        if not np.isclose(got, ks_2samp(a, b).statistic):
            raise Incorrect("compare the two empirical CDFs at every observed value "
                            "and take the largest absolute gap")


EXERCISES = [
    Exercise(
        name="q1", prompt="Write `missing_fraction(frame)`: the share of all cells of a DataFrame "
                          "that are missing.",
        checker=_check_missing, hints=("`frame.isna()` marks every missing cell.",),
        solution_code="def missing_fraction(frame):\n    return float(frame.isna().to_numpy().mean())",
        reference=missing_fraction),
    Exercise(
        name="q2", prompt="Write `standardise(train, test)` that returns both arrays standardised "
                          "column by column (subtract a mean, divide by a standard deviation) without "
                          "leaking anything from the test set. Either standard deviation is accepted: "
                          "`std(ddof=0)` (NumPy's and scikit-learn's) or `std(ddof=1)` (pandas').",
        checker=_check_standardise,
        hints=("Compute mean and standard deviation column by column, on one of the two sets only.",
               "Which set are you allowed to look at when you fit a preprocessing step?"),
        solution_code="def standardise(train, test):\n    mean, sd = train.mean(0), train.std(0)\n"
                      "    return (train - mean) / sd, (test - mean) / sd",
        reference=standardise),
    Exercise(
        name="q3", prompt="Write `ks_statistic(a, b)`, the two-sample Kolmogorov-Smirnov statistic, "
                          "with NumPy only (it is checked against SciPy).",
        checker=_check_ks,
        hints=("The empirical CDF of a sorted sample at t is (number of values <= t) / n.",
               "`np.searchsorted(sorted_sample, t, side='right')` counts values <= t."),
        solution_code="def ks_statistic(a, b):\n    a, b = np.sort(a), np.sort(b)\n"
                      "    grid = np.concatenate([a, b])\n"
                      "    fa = np.searchsorted(a, grid, side='right') / len(a)\n"
                      "    fb = np.searchsorted(b, grid, side='right') / len(b)\n"
                      "    return np.abs(fa - fb).max()",
        reference=ks_statistic),
]
