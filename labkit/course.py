"""The workbook as a course: run notebooks headless, report, student editions and sweeps.

Everything here is built on papermill's Python API and is what ``python -m labkit`` calls.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import files, profiles
from .params import ParameterError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTION_TAG = "solution"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class CourseError(Exception):
    """A bad request to the course tools (unknown notebook or parameter); one line of text."""


# --- finding and running notebooks ---------------------------------------------------------

def notebooks(selection=None, folder=NOTEBOOK_DIR) -> list[Path]:
    """The course's notebooks in order; ``selection`` filters by prefix ("01", "03_augmentation")."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if selection:
        unknown = [s for s in selection if not any(nb.stem.startswith(s) for nb in found)]
        if unknown:
            raise CourseError(f"unknown notebook {unknown[0]!r}; have: " + ", ".join(nb.stem for nb in found))
        found = [nb for nb in found if any(nb.stem.startswith(s) for s in selection)]
    return found


# Parameters every notebook declares that the command line sets with its own flags.
RESERVED = {"output_dir": "--output", "profile": "--profile", "seed": "--seed"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def check_reserved(parameters: dict, flags: dict | None = None, how: str = "-p") -> None:
    """Refuse ``-p output_dir/profile/seed``: those have flags of their own (named in the message)."""
    flags = {**RESERVED, **(flags or {})}
    for name in parameters:
        if name in flags:
            raise CourseError(f"{how} {name} is not allowed: use {flags[name]} instead")


def check_values(parameters: dict) -> None:
    """Refuse non-finite numbers (``nan``, ``inf``, ``1e400``) given on the command line."""
    for name, value in parameters.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise CourseError(f"parameter {name!r} = {value!r} is not a finite number")


def check_parameters(notebook: Path, parameters: dict) -> None:
    """Raise CourseError if a parameter is not declared in the notebook's ``parameters`` cell."""
    import papermill

    check_values(parameters)
    declared = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise CourseError(f"{notebook.stem} has no parameter {unknown[0]!r}; it takes: "
                          + ", ".join(declared))
    try:
        profiles.check_values(notebook.stem, parameters)
    except ParameterError as err:
        raise CourseError(f"{notebook.stem}: {err}") from None


def thread_env(threads: int | None) -> dict | None:
    """The environment for a child limited to ``threads`` CPU threads (None: inherit everything)."""
    if threads is None:
        return None
    return {**os.environ, **{name: str(max(1, int(threads))) for name in THREAD_VARIABLES}}


def execute(notebook: Path, output_dir: Path, profile: str = "lab", parameters: dict | None = None,
            timeout: int = 3600, threads: int | None = None) -> dict:
    """Execute one notebook in a child process; return status, wall time and peak memory.

    ``threads`` caps the CPU threads of the child (OpenMP, BLAS and TensorFlow's pools), so that
    parallel runs do not oversubscribe the machine.
    """
    output_dir = Path(output_dir).resolve()
    executed = output_dir / "executed" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "output_dir": str(output_dir), **(parameters or {})}
    child = Path(__file__).with_name("_papermill_child.py")   # a plain script: no TensorFlow import here
    cmd = [sys.executable, str(child), str(notebook), str(executed), json.dumps(params)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=notebook.parent,
                              env=thread_env(threads))
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess(cmd, 1, "", f"timed out after {timeout} s")
    wall = time.perf_counter() - t0
    peak = None
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_RSS_MB="):
            peak = float(line.split("=", 1)[1])
    error = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return {"notebook": notebook.stem, "status": "ok" if proc.returncode == 0 else "failed",
            "profile": profile, "parameters": parameters or {}, "wall_s": round(wall, 1),
            "peak_rss_mb": peak, "executed": str(executed), "error": error[:300]}


def summary_table(results: list[dict]) -> str:
    """A plain-text table of run results."""
    lines = [f"{'notebook':28s} {'status':7s} {'wall s':>8s} {'peak MB':>8s}"]
    for r in results:
        lines.append(f"{r['notebook']:28s} {r['status']:7s} {r['wall_s']:8.1f} {r['peak_rss_mb'] or 0:8.0f}"
                     + (f"  {r['error']}" if r["error"] else ""))
    ok = sum(r["status"] == "ok" for r in results)
    lines.append(f"{ok} passed, {len(results) - ok} failed")
    return "\n".join(lines)


# --- report -------------------------------------------------------------------------------

def report(output_dir: Path, targets: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` in ``output_dir``; see :mod:`labkit.report`
    (students' folders are treated as untrusted input; targets come from the teacher's side)."""
    from .report import write_report

    return write_report(output_dir, targets=targets)


# --- student editions -----------------------------------------------------------------------

def strip_solutions(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block with a placeholder.

    Inside a function (indented) the placeholder raises ``NotImplementedError``, which
    ``check()`` reports as "not attempted"; at top level it is a bare ``____`` line.
    """
    pattern = re.compile(rf"^([ \t]*){re.escape(BEGIN)}.*?^[ \t]*{re.escape(END)}[^\n]*\n?", re.S | re.M)

    def placeholder(match):
        indent = match.group(1)
        code = 'raise NotImplementedError("your code here")' if indent else "____  # your code here"
        return f"{indent}{code}\n"

    return pattern.sub(placeholder, source)


def student_edition(notebook: Path, dest: Path) -> Path:
    """Write a student copy: solution cells/blocks removed, outputs cleared, solutions hidden."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cells = []
    for cell in nb.cells:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs, cell.execution_count = [], None
            if "labkit.start(" in cell.source:
                cell.source += ("\nfrom labkit import ____\n"
                                "labkit.exercises.hide_solutions()  # student edition")
        cells.append(cell)
    nb.cells = cells
    dest = Path(dest) / notebook.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
    return dest


# --- sweeps ---------------------------------------------------------------------------------

def grid_settings(grid: dict) -> list[dict]:
    """All combinations of a ``{name: [values]}`` grid, as dicts."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))] or [{}]


def _sweep_one(notebook: str, output_dir: str, profile: str, parameters: dict, threads: int | None = None) -> dict:
    """One sweep run (a top-level function so process pools and Dask can ship it); never raises.

    A failure of any kind (the notebook, a missing folder on a Dask worker, a missing metrics.json)
    comes back as a ``failed`` result with the reason, so the other runs still finish.
    """
    try:
        result = execute(Path(notebook), Path(output_dir), profile, parameters, threads=threads)
        metrics = {}
        if result["status"] == "ok":
            metrics = files.read_json(Path(output_dir) / Path(notebook).stem / "metrics.json").get("metrics", {})
        result["metrics"] = metrics
        return result
    except Exception as err:  # noqa: BLE001 - a sweep reports failed runs, it does not stop
        return _failed_run(notebook, output_dir, profile, parameters, err)


def _failed_run(notebook, output_dir, profile, parameters, err) -> dict:
    """The result record of a run that could not be executed or read back."""
    return {"notebook": Path(notebook).stem, "status": "failed", "profile": profile, "parameters": parameters,
            "wall_s": 0.0, "peak_rss_mb": None, "executed": "", "output_dir": str(output_dir),
            "error": f"{type(err).__name__}: {err}"[:300], "metrics": {}}


def check_sweep(seeds, workers: int) -> list[int]:
    """The seeds as ints; CourseError for an empty list, duplicates or fewer than one worker."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise CourseError("--seeds needs at least one seed")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise CourseError(f"--seeds lists {', '.join(map(str, repeated))} more than once; two runs of one "
                          "seed would write the same folder")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CourseError(f"--workers must be at least 1, got {workers!r}")
    return seeds


def _slots_per_host(client) -> int:
    """The largest number of Dask worker threads on one host (jobs that may run side by side)."""
    per_host = {}
    for info in client.scheduler_info().get("workers", {}).values():
        per_host[info.get("host")] = per_host.get(info.get("host"), 0) + int(info.get("nthreads", 1))
    return max(per_host.values(), default=1)


def _gather(futures, jobs) -> list[dict]:
    """Each job's result; a job whose future itself fails (a worker that died) becomes ``failed``."""
    results = []
    for future, job in zip(futures, jobs):
        try:
            results.append(future.result())
        except Exception as err:  # noqa: BLE001 - one lost job must not lose the others
            results.append(_failed_run(*job[:4], err))
    return results


def sweep(notebook: Path, grid: dict, seeds, output_dir: Path, profile: str = "smoke",
          workers: int = 2, scheduler: str | None = None, cluster=None) -> dict:
    """Run ``notebook`` for every grid setting × seed in parallel; summarise metrics as mean ± sd.

    Runs go to worker processes, or to a Dask cluster (``scheduler`` address or a ``cluster``
    object such as ``dask.distributed.LocalCluster``; see the README on securing a scheduler).
    Each run's CPU threads are capped at cores / parallel runs. A failed run is listed in
    ``sweep.json`` (``failures``) with its error; the other runs finish.
    """
    seeds = check_sweep(seeds, workers)
    for setting in grid_settings(grid):
        check_reserved(setting, {"seed": "--seeds"}, how="--grid")
        check_parameters(notebook, {**setting, "seed": 0})
    jobs = []
    for i, setting in enumerate(grid_settings(grid)):
        for seed in seeds:
            out = Path(output_dir).resolve() / f"setting{i}-seed{seed}"
            jobs.append((str(notebook), str(out), profile, {**setting, "seed": seed}))
    t0 = time.perf_counter()
    if scheduler or cluster is not None:
        from dask.distributed import Client

        with Client(scheduler or cluster) as client:
            threads = max(1, (os.cpu_count() or 1) // _slots_per_host(client))
            results = _gather([client.submit(_sweep_one, *job, threads, pure=False) for job in jobs], jobs)
    else:
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = _gather([pool.submit(_sweep_one, *job, threads) for job in jobs], jobs)
    wall = time.perf_counter() - t0
    summary = []
    for i, setting in enumerate(grid_settings(grid)):
        runs = [r for r, job in zip(results, jobs) if Path(job[1]).name.startswith(f"setting{i}-")]
        stats = {}
        for name in sorted({k for r in runs for k, v in r["metrics"].items() if isinstance(v, (int, float))}):
            values = [r["metrics"][name] for r in runs if isinstance(r["metrics"].get(name), (int, float))]
            stats[name] = {"mean": statistics.fmean(values),
                           "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
        summary.append({"setting": setting, "runs": len(runs),
                        "failed": sum(r["status"] != "ok" for r in runs), "metrics": stats})
    record = {"notebook": notebook.stem, "profile": profile, "seeds": list(map(int, seeds)),
              "wall_s": round(wall, 1), "sum_of_run_s": round(sum(r["wall_s"] for r in results), 1),
              "threads_per_run": threads, "settings": summary, "runs": results,
              "failures": [{"parameters": r["parameters"], "error": r["error"]} for r in results
                           if r["status"] != "ok"]}
    files.write_json(Path(output_dir) / "sweep.json", record)
    return record
