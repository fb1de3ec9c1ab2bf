"""Notebook 02: its exercises (wrong answers rejected; the learner's missing_fraction is what the
audit uses) and the smoke profile."""
import numpy as np
import pandas as pd
import pytest

from conftest import NOTEBOOKS

from labkit.exercises import load
from labkit.exercises import nb02


def _cell(text):
    from conftest import code_cell

    return code_cell("02_data_preparation", text)


def test_q1_rejects_a_count_and_a_share_of_rows():
    ex = load("02")
    assert ex.q1.check(lambda frame: frame.isna().sum().sum()).status == "incorrect"
    assert ex.q1.check(lambda frame: frame.isna().any(axis=1).mean()).status == "incorrect"


def test_q2_accepts_either_sd_and_rejects_the_leak_and_a_missing_scale():
    ex = load("02")
    sample_sd = lambda tr, te: ((tr - tr.mean(0)) / tr.std(0, ddof=1), (te - tr.mean(0)) / tr.std(0, ddof=1))
    assert ex.q2.check(sample_sd).status == "correct"
    assert ex.q2.check(lambda tr, te: nb02.standardise(tr, te)).status == "correct"
    leaky = lambda tr, te: ((tr - tr.mean(0)) / tr.std(0), (te - te.mean(0)) / te.std(0))
    result = ex.q2.check(leaky)
    assert result.status == "incorrect" and "leaks" in result.message
    centred_only = lambda tr, te: (tr - tr.mean(0), te - tr.mean(0))
    assert ex.q2.check(centred_only).status == "incorrect"
    mixed = lambda tr, te: ((tr - tr.mean(0)) / tr.std(0, ddof=1), (te - tr.mean(0)) / tr.std(0, ddof=0))
    assert ex.q2.check(mixed).status == "incorrect"
    q2_cell = _cell("ex.q2.check(standardise)")
    assert "ddof" in q2_cell and "ddof" in ex.q2.prompt


def test_q3_rejects_a_mean_difference_and_a_quantile_gap():
    ex = load("02")
    assert ex.q3.check(lambda a, b: abs(a.mean() - b.mean())).status == "incorrect"
    n = 200
    assert ex.q3.check(lambda a, b: np.abs(np.sort(a)[:n] - np.sort(b)[:n]).max()).status == "incorrect"


def test_the_learners_missing_fraction_is_what_the_audit_records(capsys):
    class Run:
        metrics = {}

        def record(self, name, value, target=None):
            self.metrics[name] = value

    import labkit
    from labkit import prep

    # the learner's function answers 7/12 on the checker's frame and on every other frame
    namespace = dict(____=7 / 12, ex=load("02"), labkit=labkit, prep=prep, run=Run(), np=np, pd=pd,
                     display=lambda *a: None)
    exec(_cell('ex.q1.use(missing_fraction, "missing_fraction")').replace("from labkit.exercises import ____\n", ""),
         namespace)
    assert "your missing_fraction" in capsys.readouterr().out
    exec(_cell("loans = labkit.data.load_loans()"), namespace)
    assert namespace["run"].metrics["missing_fraction_before"] == 7 / 12


@pytest.mark.notebook
def test_smoke_run_records_the_contract(smoke_run):
    metrics, outdir = smoke_run("02_data_preparation")
    m = metrics["metrics"]
    assert 0.05 < m["missing_fraction_before"] < 0.1
    assert m["missing_fraction_after"] == 0
    assert metrics["targets"]["preprocess_rows_seen"] == {"op": "==", "value": m["preprocess_rows_seen"]}
    assert 0.6 < m["pipeline_test_auc"] < 0.95
    assert m["leak_target_feature_auc"] > 0.97
    assert m["default_auc_plain"] != m["default_auc_balanced"]
    sizes = [s for s, _ in m["learning_curve"]]
    assert sizes == sorted(sizes) and len(sizes) >= 3
    assert m["learning_curve"][-1][1] > m["learning_curve"][0][1]
    assert (outdir / "learning_curve.png").exists()


def test_the_set_up_cell_is_at_most_six_lines():
    import nbformat

    from conftest import NOTEBOOKS

    cells = nbformat.read(NOTEBOOKS / "02_data_preparation.ipynb", as_version=4).cells
    setup = cells[[i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])][0] + 1]
    assert 'labkit.start("02_data_preparation", globals())' in setup.source and len(setup.source.splitlines()) <= 6
