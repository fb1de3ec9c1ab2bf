"""The layout shows the roles: every labkit module is named, once, in the package docstring and the README."""
import re

import labkit

from conftest import ROOT

MODULES = sorted(p.stem for p in (ROOT / "labkit").glob("*.py") if p.stem != "__init__") + ["exercises"]
ROLES = ["Course machinery", "Data", "The training contract", "Metrics", "Topic code"]


def _listed(text, pattern):
    return re.findall(pattern, text, flags=re.M)


def test_package_docstring_names_every_module_once_by_role():
    doc = labkit.__doc__
    listed = _listed(doc, r"^- ``(\w+)``")
    missing = [m for m in MODULES if m not in listed and f"``{m}``" not in doc]
    assert not missing, f"modules missing from labkit/__init__.py's docstring: {missing}"
    assert len(listed) == len(set(listed)), "a module is listed twice"
    positions = [doc.index(f"\n{role}") for role in ROLES]
    assert positions == sorted(positions), "roles in order"


def test_readme_module_list_matches_the_docstring():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _listed(readme, r"^- `(\w+)` — ") == _listed(labkit.__doc__, r"^- ``(\w+)``")
