"""Command line of the course tools (also installed as ``labkit``).

    python -m labkit run [NOTEBOOK ...] [--all] [--profile lab] [--seed N] [--output outputs] [-p NAME VALUE]
                         [--bench FILE]
    python -m labkit report [--output outputs] [--targets TEACHER_OUTPUTS]
    python -m labkit student [--dest student] [--check]
    python -m labkit sweep NOTEBOOK --grid NAME=V1,V2 [--seeds 0 1 2] [--workers 2] [--scheduler ADDRESS]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import course, files

PROFILES = ["smoke", "lab", "full"]


def _parser():
    parser = argparse.ArgumentParser(prog="labkit", description="Synthetic Data Lab course tools")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks headless with papermill")
    run.add_argument("notebooks", nargs="*", help="prefixes such as 01 or 03_augmentation")
    run.add_argument("--all", action="store_true", help="every notebook (the default when none is named)")
    run.add_argument("--profile", default="lab", choices=PROFILES)
    run.add_argument("--seed", type=int, help="the notebooks' seed (default: each notebook's own)")
    run.add_argument("--output", default="outputs", help="output folder (default: outputs)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a notebook parameter; values are parsed as int, float, bool or text "
                          "(profile, seed and output_dir have their own flags)")
    run.add_argument("--bench", help="also write the timings as JSON to this file")
    rep = sub.add_parser("report", help="HTML and Markdown report of every notebook's metrics",
                         description="Report on an outputs folder (students' folders are treated as "
                                     "untrusted: escaped, confined, size-capped). Targets come from the "
                                     "course's notebooks, or from your own run with --targets.")
    rep.add_argument("--output", default="outputs", help="the outputs folder to report on")
    rep.add_argument("--targets", metavar="TEACHER_OUTPUTS",
                     help="your own (trusted) outputs folder: its recorded targets grade the students' runs")
    stu = sub.add_parser("student", help="write student editions (solutions removed, outputs cleared)")
    stu.add_argument("notebooks", nargs="*")
    stu.add_argument("--dest", default="student")
    stu.add_argument("--check", action="store_true", help="then run each edition in the smoke profile")
    swp = sub.add_parser("sweep", help="run one notebook over a parameter grid and seeds in parallel",
                         epilog="Warning: never expose a Dask scheduler unauthenticated (plain tcp:// lets anyone "
                                "who reaches it run code on every worker); use tls:// or an SSH tunnel to a "
                                "scheduler bound to localhost (README, 'For teachers').")
    swp.add_argument("notebook")
    swp.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2")
    swp.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    swp.add_argument("--profile", default="smoke", choices=PROFILES)
    swp.add_argument("--workers", type=int, default=2, help="parallel local runs (at least 1)")
    swp.add_argument("--scheduler", help="address of a running Dask scheduler (tls://host:8786, or "
                                         "tcp://localhost:8786 through an SSH tunnel); workers need the "
                                         "same paths and environment")
    swp.add_argument("--output", default="outputs/sweeps")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except course.CourseError as err:
        print(f"labkit: error: {err}", file=sys.stderr)
        return 2


def check_command(argv):
    """Parse and validate a command line without running anything (argparse errors exit 2).

    Returns what the command would use (for ``run``: the notebooks and parameters; for
    ``sweep``: the notebook, grid and seeds); raises :class:`~labkit.course.CourseError`.
    """
    return _validate(_parser().parse_args(argv))


def _validate(args):
    """The checks every command makes before it starts any work."""
    if args.command == "run":
        params = {name: _parse(value) for name, value in args.param}
        course.check_reserved(params)
        if args.seed is not None:
            params["seed"] = args.seed
        selected = course.notebooks(None if args.all else args.notebooks)
        for nb in selected:
            course.check_parameters(nb, params)
        return selected, params
    if args.command == "sweep":
        (nb,) = course.notebooks([args.notebook])[:1] or [None]
        grid = {}
        for item in args.grid:
            if "=" not in item:
                raise course.CourseError(f"--grid {item!r} must look like NAME=V1,V2")
            name, values = item.split("=", 1)
            grid[name] = [_parse(v) for v in values.split(",")]
        course.check_reserved(grid, {"seed": "--seeds"}, how="--grid")
        seeds = course.check_sweep(args.seeds, args.workers)
        for setting in course.grid_settings(grid):
            course.check_parameters(nb, {**setting, "seed": 0})
        return nb, grid, seeds
    if args.command == "student":
        return course.notebooks(args.notebooks)
    return None


def _dispatch(args) -> int:
    if args.command == "run":
        selected, params = _validate(args)
        results = []
        for nb in selected:
            print(f"running {nb.stem} ({args.profile}) ...", flush=True)
            results.append(course.execute(nb, Path(args.output), args.profile, params))
        print(course.summary_table(results))
        if args.bench:
            files.write_json(args.bench, {"profile": args.profile, "notebooks": results})
            print(f"wrote {args.bench}")
        return 0 if all(r["status"] == "ok" for r in results) else 1
    if args.command == "report":
        html_path, md_path = course.report(Path(args.output), Path(args.targets) if args.targets else None)
        print(f"wrote {html_path} and {md_path}")
        return 0
    if args.command == "student":
        failed = 0
        for nb in course.notebooks(args.notebooks):
            edition = course.student_edition(nb, Path(args.dest))
            line = f"wrote {edition}"
            if args.check:
                result = course.execute(edition, Path(args.dest) / "outputs", "smoke")
                failed += result["status"] != "ok"
                line += f"  smoke run: {result['status']} ({result['wall_s']} s) {result['error']}"
            print(line, flush=True)
        return 1 if failed else 0
    if args.command == "sweep":
        nb, grid, seeds = _validate(args)
        record = course.sweep(nb, grid, seeds, Path(args.output), args.profile, args.workers, args.scheduler)
        for s in record["settings"]:
            print(f"{s['setting']}  runs {s['runs']}  failed {s['failed']}")
            for name, st in s["metrics"].items():
                print(f"    {name:32s} {st['mean']:.4g} ± {st['sd']:.2g}")
        for failure in record["failures"]:
            print(f"failed: {failure['parameters']}: {failure['error']}")
        print(f"wall {record['wall_s']} s for {record['sum_of_run_s']} s of runs; wrote {Path(args.output) / 'sweep.json'}")
        return 0 if all(s["failed"] == 0 for s in record["settings"]) else 1
    return 2


def _parse(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


if __name__ == "__main__":
    sys.exit(main())
