"""Atomic file writing: a reader never sees half a file, an interrupted write leaves the old one."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic(path, write, suffix=""):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix or path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value):
    """Convert NumPy scalars/arrays, tuples and paths into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return None  # NaN is not JSON
    return value


def write_json(path, data) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False)
    return _atomic(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def read_json(path):
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_npz(path, **arrays) -> Path:
    """Save arrays to a compressed ``.npz`` file atomically (load with ``allow_pickle=False``)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object; only numeric/string arrays are saved")
    return _atomic(path, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")


def read_npz(path) -> dict:
    """Load every array of an ``.npz`` file (never unpickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_keras(model, path) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically."""
    return _atomic(path, lambda tmp: model.save(tmp), suffix=".keras")


def save_figure(fig, path, dpi=110) -> Path:
    """Save a Matplotlib figure atomically (format from the suffix, PNG by default)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    return _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
