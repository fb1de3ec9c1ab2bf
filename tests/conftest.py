"""Shared fixtures: execute a notebook with papermill and read back what it recorded."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LABKIT_PLAIN_PROGRESS", "1")
# TensorFlow's multi-threaded CPU kernels may add up partial sums in another order when the machine
# is busy, so two identical runs can differ in the last bits (seen: 2 runs in 5 on a loaded machine).
# The tests compare runs bitwise (exact resume), so they run with op determinism on and, in this
# process, with one thread per op: op determinism alone still let a DCGAN step differ by 1e-7 under
# load (1 run in 4), one thread per op did not (16 runs in 16). TensorFlow reads both variables at import.
# Notebook kernels that papermill starts keep their threads (see execute_notebook).
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")


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
    return files.read_json(output_dir / stem / "metrics.json")


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
