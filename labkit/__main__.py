"""Command line: ``python -m labkit run [NOTEBOOK ...] [--profile lab] [--output outputs] [--bench FILE]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import course, files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description="Synthetic Data Lab course tools")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks headless with papermill")
    run.add_argument("notebooks", nargs="*", help="prefixes such as 01 or 03_augmentation (default: all)")
    run.add_argument("--profile", default="lab", choices=["smoke", "lab", "full"])
    run.add_argument("--output", default="outputs", help="output folder (default: outputs)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="extra papermill parameter (value parsed as YAML-ish: int/float/str)")
    run.add_argument("--bench", help="also write the timings as JSON to this file")
    hidden = sub.add_parser("_execute")
    hidden.add_argument("args", nargs=3)
    args = parser.parse_args(argv)

    if args.command == "_execute":
        return course._execute_here(*args.args)
    params = {name: _parse(value) for name, value in args.param}
    results = []
    for nb in course.notebooks(args.notebooks):
        print(f"running {nb.stem} ({args.profile}) ...", flush=True)
        result = course.execute(nb, Path(args.output), args.profile, params)
        results.append(result)
        print(f"  {result['status']:6s} {result['wall_s']:7.1f} s  peak {result['peak_rss_mb']} MB"
              + (f"  {result['error']}" if result["error"] else ""), flush=True)
    if args.bench:
        files.write_json(args.bench, {"profile": args.profile, "notebooks": results})
        print(f"wrote {args.bench}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


def _parse(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(value.lower(), value)


if __name__ == "__main__":
    sys.exit(main())
