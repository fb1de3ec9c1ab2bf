"""The workbook as a course: run notebooks headless, report, student editions and sweeps.

Everything here is built on papermill's Python API and is what ``python -m labkit`` calls.
"""
from __future__ import annotations

import base64
import html
import itertools
import json
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


def check_parameters(notebook: Path, parameters: dict) -> None:
    """Raise CourseError if a parameter is not declared in the notebook's ``parameters`` cell."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise CourseError(f"{notebook.stem} has no parameter {unknown[0]!r}; it takes: "
                          + ", ".join(declared))
    for name, option in (("profile", "--profile"), ("output_dir", "--output")):
        if name in parameters:
            raise CourseError(f"-p {name} would silently replace {option}; use {option} instead")
    try:
        profiles.check_values(notebook.stem, parameters)
    except ParameterError as err:
        raise CourseError(f"{notebook.stem}: {err}") from None


def execute(notebook: Path, output_dir: Path, profile: str = "lab", parameters: dict | None = None,
            timeout: int = 3600) -> dict:
    """Execute one notebook in a child process; return status, wall time and peak memory."""
    output_dir = Path(output_dir).resolve()
    executed = output_dir / "executed" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "output_dir": str(output_dir), **(parameters or {})}
    cmd = [sys.executable, "-m", "labkit", "_execute", str(notebook), str(executed), json.dumps(params)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=notebook.parent)
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


def _execute_here(notebook: str, executed: str, params_json: str) -> int:
    """Child-process side of :func:`execute`: papermill, then report the kernel's peak RSS."""
    import resource

    import papermill

    try:
        papermill.execute_notebook(notebook, executed, parameters=json.loads(params_json),
                                   progress_bar=False, cwd=str(Path(notebook).parent), kernel_name="python3",
                                   execution_timeout=3600)
        status = 0
    except Exception as err:  # noqa: BLE001 - report any notebook failure, keep going
        message = getattr(err, "ename", type(err).__name__) + ": " + str(getattr(err, "evalue", err))
        print(message.replace("\n", " ")[:500], file=sys.stderr)
        status = 1
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"PEAK_RSS_MB={kb / (1024 * 1024 if sys.platform == 'darwin' else 1024):.0f}")
    return status


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

def collect_metrics(output_dir: Path) -> list[dict]:
    """Every ``<output_dir>/<stem>/metrics.json``, in notebook order."""
    return [files.read_json(p) for p in sorted(Path(output_dir).glob("[0-9][0-9]_*/metrics.json"))]


def _rows(record: dict):
    from .run import meets

    for name, value in record["metrics"].items():
        target = record["targets"].get(name)
        if isinstance(value, (dict, list)):
            value = json.dumps(value)[:80] + ("…" if len(json.dumps(value)) > 80 else "")
        elif isinstance(value, float):
            value = f"{value:.4g}"
        mark = "" if target is None else ("pass" if record["metrics"][name] is not None
                                          and meets(record["metrics"][name], target) else "miss")
        yield name, str(value), "" if target is None else f"{target['op']} {target['value']:g}", mark


def report(output_dir: Path, max_figures: int = 4) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained, figures embedded) and ``report.md`` in ``output_dir``."""
    output_dir = Path(output_dir)
    records = collect_metrics(output_dir)
    if not records:
        raise CourseError(f"no metrics.json under {output_dir}; run `python -m labkit run` first")
    md = ["# Synthetic Data Lab — results", ""]
    body = ["<h1>Synthetic Data Lab — results</h1>"]
    for rec in records:
        stem = rec["notebook"]
        rows = list(_rows(rec))
        missed = sum(r[3] == "miss" for r in rows)
        head = f"{stem} (profile {rec['profile']}, seed {rec['seed']}, {rec.get('elapsed_s', 0):.0f} s)"
        md += [f"## {head}", "", "| metric | value | target | |", "|---|---|---|---|"]
        md += [f"| {n} | {v} | {t} | {m} |" for n, v, t, m in rows] + [""]
        body.append(f"<h2 id='{stem}'>{html.escape(head)}"
                    f"<span class='{'miss' if missed else 'pass'}'> {missed} missed</span></h2>")
        body.append("<table><tr><th>metric</th><th>value</th><th>target</th><th></th></tr>")
        body += [f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td><td>{html.escape(t)}</td>"
                 f"<td class='{m}'>{m}</td></tr>" for n, v, t, m in rows]
        body.append("</table><div class='figs'>")
        for fig in sorted((output_dir / stem).glob("*.png"))[:max_figures]:
            data = base64.b64encode(fig.read_bytes()).decode()
            body.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{fig.stem}</figcaption></figure>")
        body.append("</div>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:3px 10px;"
             "text-align:left}.pass{color:#1b7f3b}.miss{color:#b3261e;font-weight:bold}"
             "figure{display:inline-block;margin:6px}img{max-width:520px}h2 span{font-size:60%}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Synthetic Data Lab results</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    html_path = output_dir / "report.html"
    files._atomic(html_path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    md_path = output_dir / "report.md"
    files._atomic(md_path, lambda tmp: Path(tmp).write_text("\n".join(md), encoding="utf-8"))
    return html_path, md_path


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


def _sweep_one(notebook: str, output_dir: str, profile: str, parameters: dict) -> dict:
    """One sweep run (a top-level function so process pools and Dask can ship it)."""
    result = execute(Path(notebook), Path(output_dir), profile, parameters)
    metrics_path = Path(output_dir) / Path(notebook).stem / "metrics.json"
    result["metrics"] = files.read_json(metrics_path)["metrics"] if result["status"] == "ok" else {}
    return result


def sweep(notebook: Path, grid: dict, seeds, output_dir: Path, profile: str = "smoke",
          workers: int = 2, scheduler: str | None = None, cluster=None) -> dict:
    """Run ``notebook`` for every grid setting × seed in parallel; summarise metrics as mean ± sd.

    Runs go to worker processes, or to a Dask cluster (``scheduler`` address or a ``cluster``
    object such as ``dask.distributed.LocalCluster``).
    """
    for setting in grid_settings(grid):
        check_parameters(notebook, {**setting, "seed": 0})
    jobs = []
    for i, setting in enumerate(grid_settings(grid)):
        for seed in seeds:
            out = Path(output_dir).resolve() / f"setting{i}-seed{seed}"
            jobs.append((str(notebook), str(out), profile, {**setting, "seed": int(seed)}))
    t0 = time.perf_counter()
    if scheduler or cluster is not None:
        from dask.distributed import Client

        with Client(scheduler or cluster) as client:
            results = client.gather([client.submit(_sweep_one, *job, pure=False) for job in jobs])
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_sweep_one, *zip(*jobs)))
    wall = time.perf_counter() - t0
    summary = []
    for i, setting in enumerate(grid_settings(grid)):
        runs = [r for r, job in zip(results, jobs) if job[1].split("/")[-1].startswith(f"setting{i}-")]
        stats = {}
        for name in sorted({k for r in runs for k, v in r["metrics"].items() if isinstance(v, (int, float))}):
            values = [r["metrics"][name] for r in runs if isinstance(r["metrics"].get(name), (int, float))]
            stats[name] = {"mean": statistics.fmean(values),
                           "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}
        summary.append({"setting": setting, "runs": len(runs),
                        "failed": sum(r["status"] != "ok" for r in runs), "metrics": stats})
    record = {"notebook": notebook.stem, "profile": profile, "seeds": list(map(int, seeds)),
              "wall_s": round(wall, 1), "sum_of_run_s": round(sum(r["wall_s"] for r in results), 1),
              "settings": summary, "runs": results}
    files.write_json(Path(output_dir) / "sweep.json", record)
    return record
