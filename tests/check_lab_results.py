"""Runs after nbval (``make test``): every notebook's default-profile results meet their targets.

nbval executes each notebook with its default parameters (profile "lab", output_dir "outputs"
relative to notebooks/), so the results are in notebooks/outputs/<stem>/metrics.json.
"""
import time
from pathlib import Path

import pytest

from labkit import files
from labkit.run import meets

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("stem", STEMS)
def test_lab_profile_meets_targets(stem):
    path = NOTEBOOKS / "outputs" / stem / "metrics.json"
    assert path.exists(), f"{path} missing: run `pytest --nbval-lax notebooks` first"
    assert time.time() - path.stat().st_mtime < 6 * 3600, f"{path} is stale; rerun nbval"
    record = files.read_json(path)
    assert record["profile"] == "lab"
    assert record["targets"], f"{stem} recorded no targets"
    missed = {n: (record["metrics"].get(n), t) for n, t in record["targets"].items()
              if record["metrics"].get(n) is None or not meets(record["metrics"][n], t)}
    assert not missed, f"{stem} missed targets: {missed}"
