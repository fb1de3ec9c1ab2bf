"""The teacher's report on students' output folders, which are untrusted input.

``python -m labkit report --output THEIR_OUTPUTS [--targets TEACHER_OUTPUTS]`` writes
``report.html`` (self-contained) and ``report.md`` into ``THEIR_OUTPUTS``. What a student's
folder may hold is treated as hostile:

* every text that reaches HTML or Markdown is escaped (names, values, figure names, profile);
* the notebook name is the folder's name, checked against ``NN_lowercase_name``; the
  ``notebook`` field inside metrics.json is never used;
* symbolic links and hard-linked files are refused, and every path must resolve inside the
  given folder;
* figures are embedded only when they are real PNG files (magic bytes) under a size cap; the
  input read and the report written are capped too;
* one malformed metrics.json (bad JSON, non-UTF-8, wrong shapes or types, NaN/Infinity, unknown
  target operators) gives one row naming the file; the rest of the report is still written;
* targets never come from the student's file: they come from the teacher's own run
  (``--targets``) or, by default, from the ``run.record(..., target="...")`` literals of the
  course's notebooks, read with :mod:`ast` (never executed). A target computed at run time
  (an f-string) is shown as "needs the teacher's run" unless ``--targets`` is given;
* a graded metric the file lacks makes the run "incomplete"; non-finite values, booleans and
  strings never pass.
"""
from __future__ import annotations

import ast
import base64
import html
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import files
from . import run as _run

NAME_RE = re.compile(r"\d\d_[a-z0-9_]+")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_JSON_BYTES = 2 * 1024 * 1024          # one metrics.json
MAX_PNG_BYTES = 5 * 1024 * 1024           # one figure
MAX_FIGURES = 4                           # figures per notebook
MAX_INPUT_BYTES = 50 * 1024 * 1024        # everything read for one report
MAX_OUTPUT_BYTES = 80 * 1024 * 1024       # report.html (figures are base64, 4/3 of their size)
MAX_FOLDERS = 200                         # notebook folders in one report
MAX_METRICS = 300                         # metrics shown per notebook
MAX_TEXT = 120                            # characters of one shown value or name
OPS = (">=", "<=", "==", ">", "<")
DYNAMIC = "needs the teacher's run"


class Refused(Exception):
    """A file or folder the report will not read; the message says why (one line)."""


@dataclass
class Row:
    """One line of a notebook's table: a metric, its value, its target and the verdict."""

    name: str
    value: str
    target: str = ""
    mark: str = ""          # pass, miss, missing, invalid, needs the teacher's run, or ""


@dataclass
class Section:
    """One notebook folder of the report."""

    stem: str
    head: str
    status: str
    css: str
    rows: list = field(default_factory=list)
    figures: list = field(default_factory=list)   # (name, base64 data)
    notes: list = field(default_factory=list)


# --- escaping ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _clip(text, limit=MAX_TEXT) -> str:
    """One line of at most ``limit`` characters, control characters replaced by spaces."""
    text = _CONTROL.sub(" ", str(text))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def esc_html(text) -> str:
    """Text made safe for HTML element content and quoted attributes."""
    return html.escape(_clip(text), quote=True)


def esc_md(text) -> str:
    """Text made safe for a Markdown table cell: no raw HTML, no links, no table breaks."""
    text = _clip(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


# --- confined, capped reading ----------------------------------------------------------------

class Budget:
    """Bytes still allowed to be read for this report."""

    def __init__(self, limit=None):
        self.limit = MAX_INPUT_BYTES if limit is None else limit
        self.left = self.limit

    def take(self, size: int) -> None:
        if size > self.left:
            raise Refused(f"the report's input limit ({self.limit:,} bytes) is used up")
        self.left -= size


def confined(path: Path, root: Path) -> Path:
    """``path`` itself if it is no symbolic link and resolves inside ``root``; else :class:`Refused`."""
    if path.is_symlink():
        raise Refused("a symbolic link")
    if not path.resolve().is_relative_to(root.resolve()):
        raise Refused("outside the report folder")
    return path


def read_capped(path: Path, root: Path, cap: int, budget: Budget) -> bytes:
    """The bytes of a regular, singly linked file inside ``root``, of at most ``cap`` bytes."""
    confined(path, root)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not a regular file")
        if info.st_nlink > 1:
            raise Refused("a hard link to another file")
        if info.st_size > cap:
            raise Refused(f"{info.st_size:,} bytes, over the {cap:,}-byte limit")
        budget.take(info.st_size)
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise Refused(f"over the {cap:,}-byte limit")
    return data


def notebook_folders(root: Path) -> list[tuple[str, Path | None, str]]:
    """``(stem, folder, refusal)`` for every entry of ``root`` named like a notebook folder.

    Entries with other names (``executed``, ``sweeps``, reports) are ignored. A symbolic link or
    a non-folder with a notebook's name is returned with ``folder=None`` and the reason.
    """
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not NAME_RE.fullmatch(entry.name):
            continue
        try:
            confined(entry, root)
            if not entry.is_dir():
                raise Refused("not a folder")
            found.append((entry.name, entry, ""))
        except Refused as why:
            found.append((entry.name, None, str(why)))
        if len(found) >= MAX_FOLDERS:
            break
    return found


# --- validating a metrics.json ------------------------------------------------------------------

def number(value) -> float | None:
    """``value`` as a float if it is a finite int or float (booleans are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def check_target(target) -> dict:
    """A ``{"op": ">=", "value": 0.95}`` target with a known operator and a finite number."""
    if not isinstance(target, dict) or target.get("op") not in OPS or number(target.get("value")) is None:
        raise ValueError(f"target {_clip(json.dumps(target, default=str), 60)} is not "
                         f"{{'op': one of {', '.join(OPS)}, 'value': a finite number}}")
    return {"op": target["op"], "value": number(target["value"])}


def parse_target_text(text: str) -> dict:
    """``">= 0.95"`` as a checked target dict (``ValueError`` otherwise)."""
    text = str(text).strip()
    for op in OPS:
        if text.startswith(op):
            try:
                return check_target({"op": op, "value": float(text[len(op):])})
            except ValueError:
                break
    raise ValueError(f"target {text!r} must look like '>= 0.95'")


def meets(value, target: dict) -> bool:
    """Whether a finite number ``value`` satisfies a checked target (anything else never passes)."""
    value = number(value)
    if value is None:
        return False
    return _run.meets(value, target)


def load_record(path: Path, root: Path, budget: Budget) -> dict:
    """A student's metrics.json, checked: a dict with ``metrics`` (a dict of name → JSON value).

    Raises :class:`Refused` or ``ValueError`` with a one-line reason.
    """
    raw = read_capped(path, root, MAX_JSON_BYTES, budget)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text (byte {err.start})") from None
    try:
        record = files.loads_strict(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg}, line {err.lineno} column {err.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"the top level is a {type(record).__name__}, not an object")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise ValueError("'metrics' is missing or not an object")
    if len(metrics) > MAX_METRICS:
        raise ValueError(f"{len(metrics):,} metrics, over the limit of {MAX_METRICS}")
    return record


def show_value(value) -> str:
    """A short display text for a recorded value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _describe(record: dict) -> str:
    """``profile P, seed S, T s`` from a record's fields, each checked and clipped."""
    profile = record.get("profile")
    profile = _clip(profile, 20) if isinstance(profile, str) else "?"
    seed = record.get("seed")
    seed = str(seed) if isinstance(seed, int) and not isinstance(seed, bool) else "?"
    elapsed = number(record.get("elapsed_s"))
    return f"profile {profile}, seed {seed}, " + (f"{elapsed:.0f} s" if elapsed is not None else "time ?")


# --- targets: from the course's notebooks or the teacher's run ----------------------------------

@dataclass
class Expectation:
    """What one notebook is graded on: literal targets, name patterns, and the metrics it must record."""

    targets: dict = field(default_factory=dict)     # name -> checked target dict, or DYNAMIC
    patterns: list = field(default_factory=list)    # (compiled regex, target dict or DYNAMIC)
    expected: set = field(default_factory=set)      # names whose absence makes a run incomplete
    source: str = ""

    def target_for(self, name):
        if name in self.targets:
            return self.targets[name]
        for pattern, target in self.patterns:
            if pattern.fullmatch(name):
                return target
        return None


def _cell_tree(source: str):
    """The AST of a code cell, IPython magics and shell lines blanked; None if it does not parse."""
    lines = [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


class _RecordCalls(ast.NodeVisitor):
    """Collects ``<anything>.record(name, value, target=...)`` calls and whether they are conditional."""

    def __init__(self):
        self.calls, self._conditional = [], 0

    def _nested(self, node):
        self._conditional += 1
        self.generic_visit(node)
        self._conditional -= 1

    visit_If = visit_While = visit_Try = visit_FunctionDef = visit_Lambda = _nested

    def visit_Call(self, node):
        if isinstance(node.func, ast.Attribute) and node.func.attr == "record" and node.args:
            target = next((k.value for k in node.keywords if k.arg == "target"), None)
            if target is None and len(node.args) >= 3:
                target = node.args[2]
            self.calls.append((node.args[0], target, self._conditional > 0))
        self.generic_visit(node)


def _name_pattern(node):
    """A literal metric name, or a regex for an f-string name; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = [re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in node.values]
        return re.compile("".join(parts))
    return None


def _static_target(node):
    """A checked target from a string literal, DYNAMIC for a computed one, None for no target."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return parse_target_text(node.value)
    return DYNAMIC


def notebook_expectations(folder=None) -> dict[str, Expectation]:
    """Per course notebook: the targets of its ``run.record(...)`` calls, read statically (AST)."""
    from .course import NOTEBOOK_DIR

    result = {}
    for nb in sorted(Path(folder or NOTEBOOK_DIR).glob("[0-9][0-9]_*.ipynb")):
        exp = Expectation(source=f"the course notebook {nb.name}")
        for cell in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
            source = cell.get("source", "")
            tree = _cell_tree("".join(source) if isinstance(source, list) else source)
            if cell.get("cell_type") != "code" or tree is None:
                continue
            visitor = _RecordCalls()
            visitor.visit(tree)
            for name_node, target_node, conditional in visitor.calls:
                name, target = _name_pattern(name_node), _static_target(target_node)
                if name is None or target is None:
                    continue
                if isinstance(name, str):
                    exp.targets[name] = target
                    if not conditional:
                        exp.expected.add(name)
                else:
                    exp.patterns.append((name, target))
        result[nb.stem] = exp
    return result


def teacher_expectations(teacher_dir: Path) -> dict[str, Expectation]:
    """Per notebook folder of the teacher's own run: its recorded targets, all of them expected."""
    root = Path(teacher_dir)
    if not root.is_dir():
        from .course import CourseError

        raise CourseError(f"--targets {root}: no such folder (give the teacher's own outputs folder)")
    result, budget = {}, Budget()
    for stem, folder, _ in notebook_folders(root):
        if folder is None:
            continue
        try:
            record = load_record(folder / "metrics.json", root, budget)
        except (OSError, Refused, ValueError):
            continue
        exp = Expectation(source=f"the teacher's run in {root / stem}")
        for name, target in (record.get("targets") or {}).items():
            try:
                exp.targets[str(name)] = check_target(target)
                exp.expected.add(str(name))
            except ValueError:
                continue
        result[stem] = exp
    return result


# --- building the report --------------------------------------------------------------------------

def grade(record: dict, exp: Expectation | None) -> list[Row]:
    """The rows of one notebook: expected metrics first (missing ones too), then the rest."""
    metrics = record["metrics"]
    exp = exp or Expectation()
    names = [n for n in sorted(exp.expected) if n not in metrics] + list(metrics)
    rows = []
    for name in names:
        target = exp.target_for(str(name))
        if name not in metrics:
            rows.append(Row(str(name), "", _target_text(target), "missing"))
            continue
        value = metrics[name]
        if target is None:
            mark = ""
        elif target == DYNAMIC:
            mark = DYNAMIC
        elif number(value) is None:
            mark = "invalid"
        else:
            mark = "pass" if meets(value, target) else "miss"
        rows.append(Row(str(name), show_value(value), _target_text(target), mark))
    return rows


def _target_text(target) -> str:
    if target is None:
        return ""
    if target == DYNAMIC:
        return "computed in the run"
    return f"{target['op']} {target['value']:g}"


def _verdict(rows: list[Row], has_expectation: bool) -> tuple[str, str]:
    """The heading's status text and its CSS class."""
    count = {m: sum(r.mark == m for r in rows) for m in ("missing", "invalid", "miss", DYNAMIC)}
    parts = []
    if count["missing"]:
        parts.append(f"incomplete: {count['missing']} missing")
    failed = count["miss"] + count["invalid"]
    parts.append(f"{failed} missed" + (f" ({count['invalid']} not a number)" if count["invalid"] else ""))
    if count[DYNAMIC]:
        parts.append(f"{count[DYNAMIC]} {DYNAMIC}")
    if not has_expectation:
        parts.append("no targets known for this notebook")
    bad = count["missing"] or failed
    return ", ".join(parts), "miss" if bad else "pass"


def figures(folder: Path, root: Path, budget: Budget, limit=MAX_FIGURES):
    """Up to ``limit`` embeddable PNGs of a folder as ``(name, base64)``, plus notes on refused ones."""
    embedded, notes = [], []
    candidates = sorted((p for p in folder.iterdir() if p.name.lower().endswith(".png")), key=lambda p: p.name)
    for path in candidates:
        if len(embedded) >= limit:
            notes.append(f"{len(candidates) - limit} more figure(s) not shown (at most {limit})")
            break
        try:
            data = read_capped(path, root, MAX_PNG_BYTES, budget)
            if not data.startswith(PNG_MAGIC):
                raise Refused("not a PNG image")
        except (Refused, OSError) as why:
            notes.append(f"figure {path.name} not shown: {_reason(why)}")
            continue
        embedded.append((path.stem, base64.b64encode(data).decode("ascii")))
    return embedded, notes


def _reason(err) -> str:
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return str(err)


def build_sections(root: Path, expectations: dict) -> list[Section]:
    """One :class:`Section` per notebook folder of ``root``; nothing in it raises for bad input."""
    budget, sections = Budget(), []
    for stem, folder, refusal in notebook_folders(root):
        if folder is None:
            sections.append(Section(stem, stem, f"refused: {refusal}", "miss"))
            continue
        try:
            sections.append(_section(stem, folder, root, expectations.get(stem), budget))
        except (Refused, ValueError, OSError) as why:
            sections.append(_unreadable(stem, _reason(why)))
        except Exception as err:  # noqa: BLE001 - e.g. RecursionError from absurdly nested JSON
            sections.append(_unreadable(stem, f"{type(err).__name__}: {err}"))
    return sections


def _unreadable(stem: str, reason: str) -> Section:
    """A section with one row naming the file that could not be used, and why."""
    return Section(stem, stem, "unreadable", "miss",
                   rows=[Row(f"{stem}/metrics.json", f"unreadable: {reason}", "", "invalid")])


def _section(stem: str, folder: Path, root: Path, exp, budget: Budget) -> Section:
    """The graded table, notes and figures of one notebook folder."""
    path = folder / "metrics.json"
    if not path.exists() and not path.is_symlink():
        raise ValueError("no metrics.json: the run did not start or was not copied")
    record = load_record(path, root, budget)
    rows = grade(record, exp)
    status, css = _verdict(rows, exp is not None)
    section = Section(stem, f"{stem} ({_describe(record)})", status, css, rows=rows)
    try:
        section.figures, section.notes = figures(folder, root, budget)
    except OSError as err:
        section.notes.append(f"figures not read: {_reason(err)}")
    if exp is not None:
        section.notes.append(f"targets from {exp.source}")
    return section


STYLE = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:3px 10px;"
         "text-align:left}.pass{color:#1b7f3b}.miss,.missing,.invalid{color:#b3261e;font-weight:bold}"
         "figure{display:inline-block;margin:6px}img{max-width:520px}h2 span{font-size:60%}"
         ".note{color:#666;font-size:90%}")
TITLE = "Synthetic Data Lab — results"


def render_html(sections: list[Section]) -> str:
    """The self-contained page; figures stop being embedded once the output cap is near."""
    body, room = [f"<h1>{esc_html(TITLE)}</h1>"], MAX_OUTPUT_BYTES - 1_000_000
    for s in sections:
        body.append(f"<h2 id='{esc_html(s.stem)}'>{esc_html(s.head)}"
                    f"<span class='{s.css}'> {esc_html(s.status)}</span></h2>")
        if s.rows:
            body.append("<table><tr><th>metric</th><th>value</th><th>target</th><th></th></tr>")
            body += [f"<tr><td>{esc_html(r.name)}</td><td>{esc_html(r.value)}</td><td>{esc_html(r.target)}</td>"
                     f"<td class='{esc_html(r.mark.split()[0] if r.mark else '')}'>{esc_html(r.mark)}</td></tr>"
                     for r in s.rows]
            body.append("</table>")
        body += [f"<p class='note'>{esc_html(n)}</p>" for n in s.notes]
        body.append("<div class='figs'>")
        for name, data in s.figures:
            if len(data) > room:
                body.append("<p class='note'>figure not shown: the report's size limit is reached</p>")
                break
            room -= len(data)
            body.append(f"<figure><img alt='{esc_html(name)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{esc_html(name)}</figcaption></figure>")
        body.append("</div>")
    return (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
            f"style-src 'unsafe-inline'\"><title>{esc_html(TITLE)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>")


def render_markdown(sections: list[Section]) -> str:
    """The same tables in Markdown, every cell escaped (figures are in the HTML only)."""
    md = [f"# {TITLE}", ""]
    for s in sections:
        md += [f"## {esc_md(s.head)}: {esc_md(s.status)}", ""]
        if s.rows:
            md += ["| metric | value | target | |", "|---|---|---|---|"]
            md += [f"| {esc_md(r.name)} | {esc_md(r.value)} | {esc_md(r.target)} | {esc_md(r.mark)} |"
                   for r in s.rows]
            md.append("")
        md += [f"*{esc_md(n)}*" for n in s.notes] + [""] if s.notes else []
    return "\n".join(md) + "\n"


def write_report(output_dir, targets=None, notebooks_dir=None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``output_dir`` (see the module's docstring).

    ``targets``: the teacher's own outputs folder; its recorded targets grade the notebooks it
    holds. Otherwise (and for notebooks it lacks) the targets are read from the course's notebooks.
    """
    from .course import CourseError

    root = Path(output_dir)
    if not root.is_dir() or not notebook_folders(root):
        raise CourseError(f"no metrics.json under {root}; run `python -m labkit run` first")
    expectations = notebook_expectations(notebooks_dir)
    if targets is not None:
        expectations.update(teacher_expectations(Path(targets)))
    sections = build_sections(root, expectations)
    page = render_html(sections)
    if len(page.encode("utf-8")) > MAX_OUTPUT_BYTES:
        raise CourseError(f"the report would exceed {MAX_OUTPUT_BYTES:,} bytes")
    html_path = files._atomic(root / "report.html", lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    text = render_markdown(sections)
    md_path = files._atomic(root / "report.md", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return html_path, md_path
