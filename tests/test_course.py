"""Course tools: run, report, student editions, sweeps, CLI errors, notebook hygiene."""
import json
import re
import shutil

import nbformat
import pytest

from labkit import course, files
from labkit.__main__ import main

from conftest import NOTEBOOKS, ROOT

TINY = ROOT / "tests" / "assets" / "00_tiny.ipynb"


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
def test_notebook_hygiene(stem):
    """Stored without outputs, a machine-independent kernel, a tagged parameters cell with the contract."""
    import papermill

    nb = nbformat.read(str(NOTEBOOKS / f"{stem}.ipynb"), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{stem}: outputs stored"
    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{stem}.ipynb"))
    assert {"profile", "seed", "output_dir"} <= set(declared)
    assert declared["profile"]["default"] == '"lab"' and declared["output_dir"]["default"] == '"outputs"'
    assert f'labkit.start("{stem}"' in "".join(c.source for c in nb.cells), "stem passed to labkit.start"
    # labkit first: it imports TensorFlow with the C++ start-up messages (CUDA probing) silenced,
    # which a kernel would otherwise show in the first cell as a block of errors
    lines = [line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()]
    first = lambda pattern: next((i for i, line in enumerate(lines) if re.search(pattern, line)), len(lines))
    assert first(r"^(import|from) labkit\b") < first(r"^(import|from) .*\b(keras|tensorflow)\b"), \
        f"{stem} imports Keras or TensorFlow before labkit"


def test_cli_rejects_bad_input(capsys):
    assert main(["run", "99_nothing"]) == 2
    assert "unknown notebook '99_nothing'" in capsys.readouterr().err
    assert main(["run", "01", "-p", "bogus", "1"]) == 2
    assert "no parameter 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["run", "01", "--profile", "turbo"])
    assert err.value.code == 2
    assert main(["sweep", "01", "--grid", "epochs"]) == 2


def test_strip_solutions_keeps_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\nf(1)\n"
    assert course.strip_solutions(source) == 'def f(x):\n    raise NotImplementedError("your code here")\nf(1)\n'
    assert course.strip_solutions("### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION\n") == "____  # your code here\n"


def test_student_edition_has_no_solution_code(tmp_path):
    edition = course.student_edition(TINY, tmp_path)
    text = edition.read_text()
    assert "np.bincount" not in text and "answer_q3 = 0.0" not in text
    assert "hide_solutions()" in text
    nb = nbformat.read(str(edition), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.notebook
def test_student_edition_runs_with_exercises_unattempted(tmp_path):
    edition = course.student_edition(TINY, tmp_path)
    result = course.execute(edition, tmp_path / "out", "smoke")
    assert result["status"] == "ok", result["error"]
    executed = nbformat.read(result["executed"], as_version=4)
    assert "not attempted" in json.dumps([c.get("outputs") for c in executed.cells])


@pytest.mark.parametrize("stem", sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")))
def test_student_editions_of_the_course_carry_no_solution(tmp_path, stem):
    import importlib

    edition = nbformat.read(str(course.student_edition(NOTEBOOKS / f"{stem}.ipynb", tmp_path)), as_version=4)
    code = "\n".join(line.strip() for c in edition.cells if c.cell_type == "code"
                     for line in c.source.splitlines() if line.strip())
    module = importlib.import_module(f"labkit.exercises.nb{stem[:2]}")
    for exercise in module.EXERCISES:
        body = "\n".join(line.strip() for line in exercise.solution_code.splitlines()
                         if line.strip() and not line.strip().startswith(("def ", "#", "import ", "from ")))
        assert body not in code, f"{stem} {exercise.name}: the solution is in the student edition"


def test_report_lists_metrics_with_targets(tmp_path):
    record = {"notebook": "01_demo", "profile": "lab", "seed": 0, "elapsed_s": 3.0,
              "metrics": {"accuracy": 0.97, "loss": 0.5, "curve": [[1, 2]]},
              "targets": {"accuracy": {"op": ">=", "value": 0.95}, "loss": {"op": "<=", "value": 0.1}}}
    files.write_json(tmp_path / "01_demo" / "metrics.json", record)
    files.write_json(tmp_path / "teacher" / "01_demo" / "metrics.json", record)   # targets: the teacher's run
    html_path, md_path = course.report(tmp_path, targets=tmp_path / "teacher")
    page = html_path.read_text()
    assert "accuracy" in page and "&gt;= 0.95" in page and "pass" in page and "miss" in page
    assert "| loss | 0.5 | &lt;= 0.1 | miss |" in md_path.read_text()
    with pytest.raises(course.CourseError, match="no metrics.json"):
        course.report(tmp_path / "empty")


def test_grid_settings():
    assert course.grid_settings({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert course.grid_settings({}) == [{}]


@pytest.fixture()
def tiny_course(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    shutil.copy(TINY, folder / "00_tiny.ipynb")
    return folder / "00_tiny.ipynb"


@pytest.mark.notebook
def test_sweep_runs_in_parallel_and_on_dask(tiny_course, tmp_path):
    record = course.sweep(tiny_course, {"scale": [1.0, 3.0]}, [0, 1, 2], tmp_path / "sweep", "smoke", workers=2)
    assert [s["runs"] for s in record["settings"]] == [3, 3]
    assert all(s["failed"] == 0 for s in record["settings"])
    sds = [s["metrics"]["sample_sd"]["mean"] for s in record["settings"]]
    assert sds[1] == pytest.approx(3 * sds[0], rel=0.2)
    assert record["settings"][0]["metrics"]["sample_sd"]["sd"] > 0          # seeds differ
    assert record["wall_s"] < record["sum_of_run_s"]                       # ran in parallel
    assert (tmp_path / "sweep" / "sweep.json").exists()

    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = course.sweep(tiny_course, {"scale": [2.0]}, [0, 1], tmp_path / "dask", "smoke", cluster=cluster)
    assert on_dask["settings"][0]["runs"] == 2 and on_dask["settings"][0]["failed"] == 0


@pytest.mark.notebook
def test_run_and_bench_summary(tiny_course, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(course, "NOTEBOOK_DIR", tiny_course.parent)
    monkeypatch.setattr(course.notebooks, "__defaults__", (None, tiny_course.parent))
    bench = tmp_path / "bench.json"
    assert main(["run", "--all", "--profile", "smoke", "--output", str(tmp_path / "o"), "--bench", str(bench)]) == 0
    out = capsys.readouterr().out
    assert "00_tiny" in out and "1 passed, 0 failed" in out
    entry = files.read_json(bench)["notebooks"][0]
    assert entry["status"] == "ok" and entry["peak_rss_mb"] > 50 and entry["wall_s"] > 0
    assert main(["report", "--output", str(tmp_path / "o")]) == 0


@pytest.mark.notebook
def test_student_edition_of_a_course_notebook_runs(tmp_path):
    edition = course.student_edition(NOTEBOOKS / "01_dataset_types.ipynb", tmp_path)
    result = course.execute(edition, tmp_path / "out", "smoke")
    assert result["status"] == "ok", result["error"]
    outputs = json.dumps([c.get("outputs") for c in nbformat.read(result["executed"], as_version=4).cells])
    assert all(f"q{i}: not attempted" in outputs for i in (1, 2, 3)), "every exercise left unattempted"
