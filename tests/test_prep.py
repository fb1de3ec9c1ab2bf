"""Data-preparation helpers against SciPy / pandas / brute force."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from labkit import prep


def test_iqr_outliers_match_tukey_fences():
    values = np.r_[np.arange(1, 11), 100.0, np.nan]
    mask = prep.iqr_outliers(values)
    q1, q3 = np.nanpercentile(values, [25, 75])
    expected = (values < q1 - 1.5 * (q3 - q1)) | (values > q3 + 1.5 * (q3 - q1))
    assert (mask == expected).all() and mask[10] and not mask[11]


def test_quality_report_counts():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 1000.0, 2.0], "b": ["x", None, "y", "x", "x"]})
    report = prep.quality_report(frame)
    assert report.loc["a", "missing"] == pytest.approx(0.2)
    assert report.loc["b", "distinct"] == 2 and report.loc["b", "type"] == "categorical"
    assert report.loc["a", "outliers"] == 1


def test_ks_shift_matches_scipy():
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"u": rng.normal(size=300), "v": rng.normal(size=300)})
    b = pd.DataFrame({"u": rng.normal(size=200), "v": rng.normal(1.0, size=200)})
    table = prep.ks_shift(a, b)
    assert table.index[0] == "v"
    ref = ks_2samp(a["v"], b["v"])
    assert table.loc["v", "ks_statistic"] == pytest.approx(ref.statistic)
    assert table.loc["v", "p_value"] == pytest.approx(ref.pvalue)


def test_stratified_subset_is_balanced_and_unique():
    y = np.repeat(np.arange(10), 50)
    rows = prep.stratified_subset(y, 105, np.random.default_rng(0))
    assert len(set(rows)) == 105
    assert np.bincount(y[rows]).min() >= 10
    with pytest.raises(ValueError, match="'size'"):
        prep.stratified_subset(y, 501, np.random.default_rng(0))


def test_learning_curve_calls_with_requested_sizes():
    y = np.repeat(np.arange(2), 50)
    curve = prep.learning_curve(lambda rows: len(rows) / 100, y, [10, 40])
    assert curve == [[10, 0.1], [40, 0.4]]


def test_class_balance_and_split():
    table = prep.class_balance(train=[0, 0, 1, 1], test=[0, 0, 0, 1])
    assert table.loc[1, "train"] == 0.5 and table.loc[1, "test"] == 0.25
    tr, te = prep.split_indices(100, 0.2, seed=0)
    assert len(te) == 20 and not set(tr) & set(te)
    with pytest.raises(ValueError, match="test_fraction"):
        prep.split_indices(100, 1.2)
