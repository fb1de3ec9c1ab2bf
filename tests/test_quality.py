"""labkit.quality: one report for images and tables, release checks, data cards from measured values."""
import re

import numpy as np
import pandas as pd
import pytest

from labkit import quality, tabular
from labkit.params import ParameterError

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def digits():
    import labkit

    d = labkit.data.load_digits()
    order = np.random.default_rng(0).permutation(len(d.x))[:1200]      # the file is sorted by class
    return d.x[order], d.y[order]


@pytest.fixture(scope="module")
def classifier():
    from labkit import image_metrics as im

    keras.utils.set_random_seed(0)
    return im.build_classifier()          # untrained: its features still define a fixed space


def test_image_report_copies_vs_fresh(digits, classifier):
    x, y = digits
    train, y_train, holdout, y_hold, fresh, y_fresh = x[:500], y[:500], x[500:800], y[500:800], x[800:], y[800:]
    copies = quality.synthetic_data_report(train, holdout, train[:400], classifier=classifier,
                                           train_labels=y_train, holdout_labels=y_hold,
                                           synthetic_labels=y_train[:400], members=300)
    real = quality.synthetic_data_report(train, holdout, fresh, classifier=classifier,
                                         train_labels=y_train, holdout_labels=y_hold,
                                         synthetic_labels=y_fresh, members=300)
    assert set(copies.measures) == set(quality.SECTIONS)
    assert copies.attack.auc > 0.75 and copies.measures["privacy"]["dcr_ratio"] < 0.5
    assert abs(real.attack.auc - 0.5) < 0.08 and real.measures["privacy"]["dcr_ratio"] == pytest.approx(1, abs=0.1)
    assert real.measures["utility"]["tstr"] == pytest.approx(
        quality.tstr_accuracy(fresh, y_fresh, holdout, y_hold))
    assert 0 < real.measures["utility"]["tstr_over_trtr"] < 1.3
    assert real.measures["fidelity"]["fid"] < copies.measures["fidelity"]["fid"] + 50
    assert "membership" in copies.to_markdown() and copies.table().shape[0] == len(copies.flat())
    fig = copies.figure("copies")
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="together"):
        quality.image_report(train, holdout, fresh, classifier, train_labels=y_train)
    with pytest.raises(ValueError, match="classifier"):
        quality.synthetic_data_report(train, holdout, fresh)


def _table(n, seed):
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n)
    student = rng.choice(["Yes", "No"], n, p=[0.3, 0.7])
    default = np.where(rng.random(n) < 0.1 + 0.3 * (income < np.exp(9.7)), "Yes", "No")
    return pd.DataFrame({"income": income, "balance": rng.gamma(2, 400, n), "student": student,
                         "default": default})


def test_table_report_copies_vs_copula():
    spec = tabular.TableSpec(numeric=["income", "balance"], categorical=["student", "default"])
    train, holdout = _table(800, 0), _table(400, 1)
    copied = quality.synthetic_data_report(train, holdout, train.iloc[:400], spec=spec, target="default",
                                           positive=["Yes"])
    copula = tabular.GaussianCopula(spec, seed=0).fit(train).sample(800)
    modelled = quality.synthetic_data_report(train, holdout, copula, spec=spec, target="default",
                                             positive=["Yes"])
    assert copied.modality == "table"
    assert copied.measures["privacy"]["exact_copy_share"] == 1.0
    assert modelled.measures["privacy"]["exact_copy_share"] == 0.0
    assert copied.attack.auc > 0.7 > modelled.attack.auc
    assert modelled.measures["coverage"]["category_coverage"] == 1.0
    assert 0.8 < modelled.measures["coverage"]["range_coverage"] <= 1.0
    assert modelled.measures["fidelity"]["column_shapes"] > 0.85
    decision = quality.release_decision(quality.release_checks(copied, epsilon=1.0))
    assert decision == "do not share"
    with pytest.raises(ValueError, match="both target and positive"):
        quality.table_report(train, holdout, copula, spec, target="default")


def _numbers(text):
    return {float(v) for v in re.findall(r"\d+\.\d+(?:e[-+]\d+)?", text)}


def test_data_card_numbers_come_from_the_report(digits, classifier):
    x, y = digits
    report = quality.image_report(x[:500], x[500:800], x[800:], classifier, members=200)
    card = quality.data_card(report, name="fresh digits", source="MNIST", method="none: real digits",
                             intended_use="a test", epsilon=1.0, delta=1e-5)
    text = card.to_markdown()
    measured = {float(f"{v:.4g}") for v in report.flat().values()}
    checks = {c[0]: c for c in card.checks}
    evidence = " ".join(c[2] for c in card.checks)
    # every decimal number on the card is a measured value, or one from the evidence of a check
    assert _numbers(text) <= measured | _numbers(evidence) | {1.0}
    assert f"{report.attack.auc:.4g}" in text
    assert checks["formal privacy guarantee"][1] and card.decision == "share"
    assert card.as_dict()["decision"] == "share" and card.as_dict()["checks"][0]["check"]
    no_dp = quality.data_card(report, "x", "MNIST", "m", "u")
    assert no_dp.decision == "do not share" and no_dp.fields["privacy guarantee"] == "none"
    with pytest.raises(ParameterError, match="intended_use"):
        quality.data_card(report, "x", "MNIST", "m", " ")


def test_tstr_accuracy_learns_and_rejects_one_class(digits):
    x, y = digits
    assert quality.tstr_accuracy(x[:800], y[:800], x[800:], y[800:]) > 0.7
    with pytest.raises(ValueError, match="single class"):
        quality.tstr_accuracy(x[:10], np.zeros(10, int), x[800:], y[800:])
