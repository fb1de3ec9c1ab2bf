"""Every study in experiments/ runs (smoke mode), writes its result file, and has a committed result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "experiments").glob("[0-9][0-9]_*.py"))


def test_each_study_is_listed_in_the_readme_with_its_result():
    readme = (ROOT / "experiments" / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert f"`{script.name}`" in readme, f"{script.name} is not described in experiments/README.md"
        result = ROOT / "experiments" / "results" / f"{script.stem}.json"
        assert result.is_file(), f"{script.name} has no committed result file {result.name}"
        json.loads(result.read_text(encoding="utf-8"))


@pytest.mark.notebook
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_study_runs_in_smoke_mode(script, tmp_path):
    out = tmp_path / f"{script.stem}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "LABKIT_PLAIN_PROGRESS": "1"}
    done = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.is_file(), f"{script.name} --smoke wrote no {out.name}"
    json.loads(out.read_text(encoding="utf-8"))
