"""Atomic file writing: a reader never sees half a file, an interrupted write leaves the old one.

Files get the mode a plain ``open()`` would give them (``0o666`` minus the umask), not the
``0o600`` of a temporary file. JSON written here is strict: NaN and ±Infinity (Python or NumPy
floats) are written as ``null``, and :func:`read_json` refuses them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np


def _umask() -> int:
    """The process's umask: from /proc on Linux (no change to the process), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path, write, suffix=""):
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix or path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_jsonable(value):
    """Convert NumPy scalars/arrays, tuples and paths into plain JSON types.

    Non-finite floats (NaN, ±Infinity, Python or NumPy) become ``None``, with one
    ``RuntimeWarning`` saying how many: standard JSON has no such numbers, and a reader should
    see "no value", never a number that could pass a target.
    """
    count = [0]
    converted = _jsonable(value, count)
    if count[0]:
        warnings.warn(f"{count[0]} non-finite number(s) (NaN or Infinity) stored as null", RuntimeWarning,
                      stacklevel=2)
    return converted


def _jsonable(value, count):
    if isinstance(value, dict):
        return {str(k): _jsonable(v, count) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, count) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), count)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), count)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        count[0] += 1
        return None
    return value


def write_json(path, data) -> Path:
    """Write ``data`` as indented, strict JSON (non-finite floats as ``null``), atomically."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False, allow_nan=False)
    return _atomic(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON (non-finite numbers are not allowed)")


def loads_strict(text: str):
    """Parse JSON text, refusing ``NaN``, ``Infinity`` and ``-Infinity``."""
    return json.loads(text, parse_constant=_refuse_constant)


def read_json(path):
    """Read a strict JSON file (``NaN``/``Infinity`` raise ``ValueError``)."""
    return loads_strict(Path(path).read_text(encoding="utf-8"))


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


def save_keras(model, path, checksum: bool = False) -> Path:
    """Save a Keras model to ``path`` (``.keras``) atomically; with ``checksum``, also write
    its SHA-256 to ``<path>.sha256`` for :func:`load_keras_verified`."""
    path = _atomic(path, lambda tmp: model.save(tmp), suffix=".keras")
    if checksum:
        _atomic(_checksum_path(path), lambda tmp: Path(tmp).write_text(sha256_file(path) + "\n"))
    return path


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def load_keras_verified(path):
    """Load a ``.keras`` file saved with ``save_keras(..., checksum=True)``, with ``safe_mode=True``.

    Returns ``None`` (with a warning) when the file or its ``.sha256`` is missing, or the
    checksum does not match, so the caller retrains instead of loading a file it did not write.
    """
    import keras

    path, sidecar = Path(path), _checksum_path(path)
    if not path.is_file():
        return None
    reason = None
    if path.is_symlink() or not sidecar.is_file():
        reason = "it has no checksum file" if not path.is_symlink() else "it is a symbolic link"
    elif sidecar.read_text(errors="replace").strip() != sha256_file(path):
        reason = "its SHA-256 does not match " + sidecar.name
    if reason:
        warnings.warn(f"not loading {path}: {reason}; training it again", stacklevel=2)
        return None
    return keras.models.load_model(path, safe_mode=True)


def save_figure(fig, path, dpi=110) -> Path:
    """Save a Matplotlib figure atomically (format from the suffix, PNG by default)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    return _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
