"""Notebook 09 — quality, privacy and responsible use: exercises and the smoke run."""
import json

import numpy as np
import pytest

from labkit.exercises import nb09


# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook

def test_exercise_wrong_answers_are_incorrect():
    assert nb09.EXERCISES[0].check(lambda m, n: float(np.mean(m) - np.mean(n))).status == "incorrect"
    assert nb09.EXERCISES[0].check(lambda m, n: 1 - nb09.attack_auc(m, n)).status == "incorrect"
    assert nb09.EXERCISES[1].check(lambda s, h: np.median(h) / np.median(s)).status == "incorrect"
    assert nb09.EXERCISES[1].check(lambda s, h: np.mean(s) / np.mean(h)).status == "incorrect"
    assert nb09.EXERCISES[2].check(lambda g, c: np.clip(g, -c, c)).status == "incorrect"
    assert nb09.EXERCISES[2].check(lambda g, c: g * min(1.0, c / np.linalg.norm(g))).status == "incorrect"
    use_everything = lambda card: all(c["passed"] for c in card["checks"])  # noqa: E731
    assert nb09.EXERCISES[3].check(use_everything).status == "incorrect"
    attack_only = lambda card: card["checks"][0]["passed"]                  # noqa: E731
    assert nb09.EXERCISES[3].check(attack_only).status == "incorrect"


@pytest.mark.notebook
def test_smoke_run_records_contract_metrics(smoke_run):
    metrics, outdir = smoke_run("09_privacy")
    m = metrics["metrics"]
    for key in ["mia_auc_overfit", "mia_auc_regularised", "mia_auc_dp", "dcr_ratio_overfit",
                "dcr_ratio_regularised", "dp_utility", "dp_epsilons", "dp_delta", "mia_auc_overfit_ci_low",
                "mia_auc_dp_gap", "dp_utility_drop", "card_overfit_decision", "card_dp_decision"]:
        assert key in m, key
    assert m["dp_epsilons"] == [8.0, 2.0, 0.5] and m["dp_delta"] == 1e-5
    assert set(m["mia_auc_dp"]) == set(m["dp_utility"]) == {"inf", "8", "2", "0.5"}
    for value in [m["mia_auc_overfit"], m["mia_auc_regularised"], *m["mia_auc_dp"].values(),
                  *m["dp_utility"].values()]:
        assert 0.0 <= value <= 1.0
    assert m["mia_auc_overfit_ci_low"] <= m["mia_auc_overfit"]
    assert m["dcr_ratio_overfit"] > 0 and m["dcr_ratio_regularised"] > 0
    assert m["card_overfit_decision"] in ("share", "do not share")
    assert set(m["table_report"]) >= {"column_shapes", "tstr", "mia_auc", "exact_copy_share"}
    # the data card's numbers are the report's
    card = json.loads((outdir / "data_card_digits-cvae-dp-eps2.json").read_text())
    assert card["measured"]["privacy"]["mia_auc"] == pytest.approx(m["mia_auc_dp"]["2"])
    assert card["measured"]["utility"]["tstr"] == pytest.approx(m["dp_utility"]["2"])
    for name in ["metrics.json", "mia_roc.png", "privacy_utility.png", "dp_samples.png", "traversals.png",
                 "ink_direction.png", "report_overfit.png", "samples.npz"]:
        assert (outdir / name).exists(), name
