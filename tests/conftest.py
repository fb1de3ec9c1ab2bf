"""Shared fixtures: execute a notebook with papermill and read back what it recorded."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LABKIT_PLAIN_PROGRESS", "1")
# An interrupted and resumed run takes the same steps (weights, optimiser state, random state and
# batches restored) as an uninterrupted one, so the two agree to float round-off. They are not always
# bitwise equal: two identical DCGAN runs in one process differed by 2e-7 at step 3 on a CI machine,
# with op determinism on and one thread per op. Op determinism and one thread per op make such
# differences rare (a busy machine otherwise changes the order in which threads add up partial sums);
# assert_same_training allows them. Notebook kernels that papermill starts keep their threads (see
# execute_notebook). TensorFlow reads both variables at import.
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


RESUME_RTOL = 1e-5   # float round-off over a few steps is ~1e-6; a resume that loses state is off by 1e-3


def assert_same_training(first, second, what: str = "", exact: bool = False) -> None:
    """Assert two trained results (losses, weights, samples) agree to float round-off.

    For a resumed run against an uninterrupted one; tests/test_nb04_gan.py shows that a resume
    which forgets the optimiser's state fails it. ``exact=True`` is for restored (not retrained)
    results, which must be equal.
    """
    if exact:
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second), err_msg=what)
    else:
        np.testing.assert_allclose(np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64),
                                   rtol=RESUME_RTOL, atol=1e-6, err_msg=what)


def code_cell(stem: str, text: str) -> str:
    """The source of the one code cell of ``notebooks/<stem>.ipynb`` that contains ``text``."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    hits = [c.source for c in nb.cells if c.cell_type == "code" and text in c.source]
    assert len(hits) == 1, f"{len(hits)} code cells of {stem} contain {text!r}"
    return hits[0]


def architecture(model) -> list:
    """(layer class name, sorted weight shapes) of every layer: compares two builds of one design."""
    rows = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        own = sorted(tuple(int(d) for d in v.shape) for v in layer._trainable_variables + layer._non_trainable_variables)
        rows.append((type(layer).__name__, tuple(own)))
    top = sorted(tuple(int(d) for d in v.shape) for v in model._trainable_variables + model._non_trainable_variables)
    return sorted(rows) + [("own", tuple(top)), ("count", model.count_params())]


def execute_notebook(stem: str, output_dir: Path, **parameters) -> dict:
    """Run ``notebooks/<stem>.ipynb`` with papermill; return its metrics.json as a dict."""
    import papermill

    from labkit import files

    notebook = NOTEBOOKS / f"{stem}.ipynb"
    threads = os.environ.pop("TF_NUM_INTRAOP_THREADS", None)   # the kernel inherits the environment
    try:
        papermill.execute_notebook(str(notebook), str(output_dir / f"{stem}.ipynb"),
                                   parameters={"output_dir": str(output_dir), **parameters},
                                   cwd=str(NOTEBOOKS), progress_bar=False, execution_timeout=1200)
    finally:
        if threads is not None:
            os.environ["TF_NUM_INTRAOP_THREADS"] = threads
    # what a learner would see: no printed line wraps mid-word, no warning shows as a red box
    executed = output_dir / f"{stem}.ipynb"
    long = [line for line in stream_lines(executed, "stdout")
            if len(line) > MAX_PRINTED and not PROGRESS_LINE.search(line)]
    assert not long, f"{stem} printed {len(long)} line(s) over {MAX_PRINTED} characters: {long[:3]}"
    warned = [line for line in stream_lines(executed, "stderr") if WARNING_LINE.search(line)]
    assert not warned, f"{stem} shows warnings in its cells: {warned[:3]}"
    return files.read_json(output_dir / stem / "metrics.json")


MAX_PRINTED = 112   # JupyterLab wraps longer output lines mid-word in a laptop-wide window
PROGRESS_LINE = re.compile(r"\d+/\d+ \[")   # a plain progress bar: "... 3200/3200 [00:42<00:00, ...]"
WARNING_LINE = re.compile(r"Warning\b|^[EWI]\d{4} ")   # Python warnings; TensorFlow's C++ log lines


def stream_lines(executed: Path, name: str) -> list:
    """The lines an executed notebook wrote to the stream ``name`` ("stdout" or "stderr")."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    return [line for cell in nb.cells for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and out.get("name") == name
            for line in out["text"].splitlines()]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Run a notebook once per test module in the smoke profile: ``smoke_run("01_dataset_types")``."""
    cache = {}

    def run(stem: str, **parameters):
        if stem not in cache:
            out = tmp_path_factory.mktemp(stem)
            cache[stem] = (execute_notebook(stem, out, profile="smoke", **parameters), out / stem)
        return cache[stem]

    return run
