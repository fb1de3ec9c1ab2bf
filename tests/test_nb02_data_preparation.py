"""Notebook 02 in the smoke profile."""
import pytest

pytestmark = pytest.mark.notebook


def test_smoke_run_records_the_contract(smoke_run):
    metrics, outdir = smoke_run("02_data_preparation")
    m = metrics["metrics"]
    assert 0.05 < m["missing_fraction_before"] < 0.1
    assert m["missing_fraction_after"] == 0
    assert 0.6 < m["pipeline_test_auc"] < 0.95
    assert m["leak_target_feature_auc"] > 0.97
    sizes = [s for s, _ in m["learning_curve"]]
    assert sizes == sorted(sizes) and len(sizes) >= 3
    assert m["learning_curve"][-1][1] > m["learning_curve"][0][1]
    assert (outdir / "learning_curve.png").exists()
