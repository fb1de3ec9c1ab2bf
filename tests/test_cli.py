"""The command line: the README's examples are valid, reserved names and bad sweeps give clear messages,
and a failing sweep job does not stop the others."""
import re
import shlex
import shutil

import pytest

from labkit import course, files
from labkit.__main__ import _parser, check_command, main

from conftest import ROOT

TINY = ROOT / "tests" / "assets" / "00_tiny.ipynb"


def readme_commands():
    """Every ``python -m labkit ...`` command written in the README (code blocks and inline code)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"python -m labkit ([^`\n]*)", text)
    return [shlex.split(c, comments=True) for c in commands]


def test_the_readme_has_labkit_examples():
    kinds = {argv[0] for argv in readme_commands()}
    assert {"run", "report", "sweep", "student"} <= kinds


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_readme_example_passes_the_cli_checks(argv):
    """Parsed and validated exactly as the CLI would before running (no notebook is executed)."""
    check_command(argv)


@pytest.mark.parametrize("name,flag", [("output_dir", "--output"), ("profile", "--profile"), ("seed", "--seed")])
def test_reserved_parameters_name_their_flag(capsys, name, flag):
    assert main(["run", "01", "-p", name, "1"]) == 2
    assert f"-p {name} is not allowed: use {flag} instead" in capsys.readouterr().err


def test_seed_flag_and_non_finite_values():
    selected, params = check_command(["run", "01", "--seed", "3", "-p", "epochs", "2"])
    assert [nb.stem for nb in selected] == ["01_dataset_types"] and params == {"epochs": 2, "seed": 3}
    for bad in ("nan", "inf", "1e400"):
        with pytest.raises(course.CourseError, match="not a finite number"):
            check_command(["run", "01", "-p", "epochs", bad])


@pytest.mark.parametrize("extra,message", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--seeds", "0", "1", "0"], "--seeds lists 0 more than once"),
    (["--grid", "seed=1,2"], "--grid seed is not allowed: use --seeds instead"),
    (["--grid", "output_dir=x"], "--grid output_dir is not allowed: use --output instead"),
])
def test_bad_sweeps_are_one_line(capsys, extra, message):
    assert main(["sweep", "01", "--grid", "epochs=1", *extra]) == 2
    assert message in capsys.readouterr().err


def test_sweep_help_warns_about_open_schedulers():
    sweep = _parser()._subparsers._group_actions[0].choices["sweep"]
    assert "never expose a Dask scheduler unauthenticated" in sweep.format_help().replace("\n", " ").replace("  ", " ")


@pytest.fixture()
def fake_execute(monkeypatch, tmp_path):
    """``course.execute`` replaced: seed 1 raises, seed 2 'succeeds' without metrics, others record a metric.

    Local sweeps fork their workers, so the replacement is in effect there too.
    """
    calls = []

    def execute(notebook, output_dir, profile="lab", parameters=None, timeout=3600, threads=None):
        seed = parameters["seed"]
        calls.append(threads)
        if seed == 1:
            raise RuntimeError("kernel died")
        if seed != 2:
            files.write_json(output_dir / notebook.stem / "metrics.json", {"metrics": {"x": float(seed)}})
        return {"notebook": notebook.stem, "status": "ok", "profile": profile, "parameters": parameters,
                "wall_s": 0.1, "peak_rss_mb": 1.0, "executed": "", "error": "", "threads": threads}

    monkeypatch.setattr(course, "execute", execute)
    folder = tmp_path / "nbs"
    folder.mkdir()
    return shutil.copy(TINY, folder / "00_tiny.ipynb")


def _check_failures(record):
    assert record["settings"][0]["runs"] == 4 and record["settings"][0]["failed"] == 2
    assert record["settings"][0]["metrics"]["x"]["n"] == 2
    errors = sorted(f["error"] for f in record["failures"])
    assert errors[0].startswith("FileNotFoundError") and "metrics.json" in errors[0]
    assert errors[1] == "RuntimeError: kernel died"
    ok = [r for r in record["runs"] if r["status"] == "ok"]
    assert all(r["threads"] == record["threads_per_run"] >= 1 for r in ok)


def test_a_failing_job_does_not_stop_the_sweep(fake_execute, tmp_path):
    from pathlib import Path

    record = course.sweep(Path(fake_execute), {"scale": [1.0]}, [0, 1, 2, 3], tmp_path / "out", workers=2)
    _check_failures(record)
    assert files.read_json(tmp_path / "out" / "sweep.json")["failures"] == record["failures"]


def test_a_failing_job_does_not_stop_a_dask_sweep(fake_execute, tmp_path):
    from pathlib import Path

    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        record = course.sweep(Path(fake_execute), {"scale": [1.0]}, [0, 1, 2, 3], tmp_path / "dask", cluster=cluster)
    _check_failures(record)


def test_thread_env_caps_every_pool():
    env = course.thread_env(3)
    assert all(env[name] == "3" for name in course.THREAD_VARIABLES)
    assert course.thread_env(None) is None
