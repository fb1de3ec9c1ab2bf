"""Run notebooks headless with papermill, timing each one and measuring its peak memory."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def notebooks(selection=None, folder=NOTEBOOK_DIR) -> list[Path]:
    """The course's notebooks in order; ``selection`` filters by prefix ("01", "03_augmentation")."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if selection:
        found = [nb for nb in found if any(nb.stem.startswith(s) for s in selection)]
        if not found:
            raise SystemExit(f"no notebook matches {selection}; have "
                             + ", ".join(p.stem for p in sorted(Path(folder).glob('[0-9][0-9]_*.ipynb'))))
    return found


def execute(notebook: Path, output_dir: Path, profile: str = "lab", parameters: dict | None = None,
            timeout: int = 3600) -> dict:
    """Execute one notebook in a child process; return status, wall time and peak memory."""
    output_dir = Path(output_dir).resolve()
    executed = output_dir / "executed" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "output_dir": str(output_dir), **(parameters or {})}
    cmd = [sys.executable, "-m", "labkit", "_execute", str(notebook), str(executed), json.dumps(params)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=notebook.parent)
    wall = time.perf_counter() - t0
    peak = None
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_RSS_MB="):
            peak = float(line.split("=", 1)[1])
    error = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return {"notebook": notebook.stem, "status": "ok" if proc.returncode == 0 else "failed",
            "profile": profile, "wall_s": round(wall, 1), "peak_rss_mb": peak,
            "executed": str(executed), "error": error}


def _execute_here(notebook: str, executed: str, params_json: str) -> int:
    """Child-process side of :func:`execute`: papermill, then report the kernel's peak RSS."""
    import resource

    import papermill

    try:
        papermill.execute_notebook(notebook, executed, parameters=json.loads(params_json),
                                   progress_bar=False, cwd=str(Path(notebook).parent))
        status = 0
    except Exception as err:  # noqa: BLE001 - report any notebook failure, keep going
        print(f"{type(err).__name__}: {str(err)[-2000:]}", file=sys.stderr)
        status = 1
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"PEAK_RSS_MB={kb / (1024 * 1024 if sys.platform == 'darwin' else 1024):.0f}")
    return status
