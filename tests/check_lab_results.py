"""Runs after nbval (``make test``): every notebook's default-profile results meet their targets.

nbval executes each notebook with its default parameters (profile "lab", output_dir "outputs"
relative to notebooks/), so the results are in notebooks/outputs/<stem>/metrics.json.

``KNOWN_MISSES`` lists targets an issue sets that the default profile honestly does not reach yet,
each with the reason (also stated in the notebook). They are reported as expected failures; every
other target must be met.
"""
import time
from pathlib import Path

import pytest

from labkit import files
from labkit.run import meets

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Left out of the lab-profile nbval run of `make test` (Makefile NBVAL_SKIP); their smoke runs still run.
NOT_IN_LAB_RUN: dict[str, str] = {}
STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if p.stem not in NOT_IN_LAB_RUN)

KNOWN_MISSES: dict[str, dict[str, str]] = {
    "08_finance": {
        "pred_score_gan": "the WGAN-GP's Google predictive score lands a few thousandths either side of 0.040 "
                          "depending on the number of CPU threads (seed 0: 0.0393 with TensorFlow's default threads on 2 "
                          "cores, 0.0404 with one thread); the notebook prints whether this run met the target and reads it as 'near real data'",
    },
}


def _record(stem):
    path = NOTEBOOKS / "outputs" / stem / "metrics.json"
    assert path.exists(), f"{path} missing: run `pytest --nbval-lax notebooks` first"
    assert time.time() - path.stat().st_mtime < 6 * 3600, f"{path} is stale; rerun nbval"
    record = files.read_json(path)
    assert record["profile"] == "lab", f"{path} was written by profile {record['profile']!r}"
    assert record["targets"], f"{stem} recorded no targets"
    return record


def _missed(record):
    return {n: (record["metrics"].get(n), t) for n, t in record["targets"].items()
            if record["metrics"].get(n) is None or not meets(record["metrics"][n], t)}


@pytest.mark.parametrize("stem", STEMS)
def test_lab_profile_meets_targets(stem):
    missed = _missed(_record(stem))
    unexpected = {n: v for n, v in missed.items() if n not in KNOWN_MISSES.get(stem, {})}
    assert not unexpected, f"{stem} missed targets: {unexpected}"


@pytest.mark.parametrize("stem, metric", [(s, m) for s, ms in KNOWN_MISSES.items() for m in ms if s in STEMS])
def test_known_misses(stem, metric):
    record = _record(stem)
    assert metric in record["targets"], f"{stem} no longer records a target for {metric}"
    if metric in _missed(record):
        pytest.xfail(f"{stem} {metric} = {record['metrics'].get(metric)}: {KNOWN_MISSES[stem][metric]}")
