"""Data preparation (11.1.2): quality reports, shift checks and learning curves."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .params import check_fraction, check_int


def iqr_outliers(values, k: float = 1.5) -> np.ndarray:
    """Boolean mask of values outside [Q1 - k*IQR, Q3 + k*IQR] (Tukey's fences); NaN is not an outlier."""
    values = np.asarray(values, dtype="float64")
    q1, q3 = np.nanpercentile(values, [25, 75])
    spread = k * (q3 - q1)
    with np.errstate(invalid="ignore"):
        return (values < q1 - spread) | (values > q3 + spread)


def quality_report(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column: type, missing share, distinct values, Tukey outliers, example value."""
    rows = []
    for name, column in frame.items():
        numeric = pd.api.types.is_numeric_dtype(column)
        rows.append({
            "column": name,
            "type": "numeric" if numeric else "categorical",
            "missing": float(column.isna().mean()),
            "distinct": int(column.nunique(dropna=True)),
            "outliers": int(iqr_outliers(column).sum()) if numeric else 0,
            "min": column.min() if numeric else None,
            "max": column.max() if numeric else None,
            "example": column.dropna().iloc[0] if column.notna().any() else None,
        })
    return pd.DataFrame(rows).set_index("column")


def ks_shift(train: pd.DataFrame, test: pd.DataFrame, columns=None) -> pd.DataFrame:
    """Two-sample Kolmogorov-Smirnov test of each numeric column, train vs test, largest first."""
    from scipy.stats import ks_2samp

    columns = columns or [c for c in train if pd.api.types.is_numeric_dtype(train[c])]
    rows = []
    for name in columns:
        a, b = train[name].dropna().to_numpy(), test[name].dropna().to_numpy()
        result = ks_2samp(a, b)
        rows.append({"column": name, "ks_statistic": result.statistic, "p_value": result.pvalue})
    return pd.DataFrame(rows).set_index("column").sort_values("ks_statistic", ascending=False)


def class_balance(**labels) -> pd.DataFrame:
    """Share of each class in each named label array, e.g. ``class_balance(train=y_tr, test=y_te)``."""
    return pd.DataFrame({name: pd.Series(np.asarray(y)).value_counts(normalize=True)
                         for name, y in labels.items()}).fillna(0.0).sort_index()


def stratified_subset(y, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced random subset of ``size`` examples (as even as the data allows)."""
    y = np.asarray(y)
    size = check_int("size", size, minimum=1, maximum=len(y))
    classes = np.unique(y)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    take, chosen = size // len(classes), []
    for idx in per_class:
        chosen.extend(idx[:take])
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    chosen.extend(rng.choice(rest, size - len(chosen), replace=False))
    return rng.permutation(np.asarray(chosen))


def learning_curve(fit_score: Callable, y_train, sizes, seed: int = 0) -> list[list[float]]:
    """Held-out score against training-set size: ``[[size, fit_score(indices)], ...]``.

    ``fit_score(indices)`` trains a fresh model on those training rows and returns its held-out
    score; each size uses a class-balanced subset drawn with the same seed.
    """
    rng = np.random.default_rng(seed)
    return [[int(n), float(fit_score(stratified_subset(y_train, n, rng)))] for n in sizes]


def split_indices(n: int, test_fraction: float, seed: int = 0, stratify=None):
    """Shuffled train/test index arrays (stratified by ``stratify`` when given)."""
    from sklearn.model_selection import train_test_split

    test_fraction = check_fraction("test_fraction", test_fraction)
    return train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=stratify)
