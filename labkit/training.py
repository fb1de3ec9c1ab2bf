"""One training contract for every trainer in the course: a model's ``train_step`` + :func:`fit`.

The model
---------
A model is a :class:`Model` (a ``keras.Model`` subclass) whose ``train_step(self, batch)`` holds
the whole algorithm and returns a dict of scalar losses, e.g. ``{"d_loss": ..., "g_loss": ...}``::

    class MyGAN(training.Model):
        def __init__(self, generator, discriminator):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator
            self.g_opt = keras.optimizers.Adam(2e-4); self.g_opt.build(generator.trainable_variables)
            ...

        def train_step(self, batch):              # batch: what draw_batch returned, as tensors
            noise = tf.random.stateless_normal([64, 16], seed=self.random_seed(1))
            ...
            return {"d_loss": d_loss, "g_loss": g_loss}

Rules that make a run resumable exactly:

* build every variable (layers and optimisers: ``optimizer.build(vars)``) in ``__init__``; a model
  compiled with a single ``optimizer`` gets it built for its trainable variables automatically;
* draw randomness inside ``train_step`` from ``self.random_seed(salt)`` (a stateless seed keyed by
  the run's seed and the step; use it with ``tf.random.stateless_*``), or on the host in
  ``draw_batch(data, rng, batch_size)``, whose NumPy ``rng`` is ``default_rng([seed, step])``.
  Keras layers with their own ``SeedGenerator`` (Dropout, ...) are fine too: their state is a
  variable and is checkpointed.

The default ``draw_batch`` picks ``batch_size`` random rows (with replacement) of ``data``: one
array, a tuple/list of arrays or a dict of arrays with the same first dimension. Override it to add
host-drawn noise or to sample differently (``self.step`` holds the step being drawn, e.g. for an
epoch-wise shuffle keyed by ``(self.run_seed, epoch)``). Settings kept in plain Python attributes
that change training (a loss weight, a warm-up length) belong in ``checkpoint_params()`` (a dict),
so that they join the checkpoint key.

Training
--------
:func:`fit` runs ``train_step`` (compiled once per model with ``tf.function``, ``jit_compile`` for
XLA; a later ``fit`` on the same model reuses it) up to step ``steps`` and returns the history, a
dict: one list per loss (a float per step), ``steps``,
``seconds`` (time spent in training steps, summed over resumed runs) and what the callbacks add
(:class:`Evaluate`: ``evaluations``, a list of dicts with ``step`` and ``seconds``; :class:`Snapshot`:
``snapshots`` and ``snapshot_steps``). It adds, for every model:

* a checkpoint in ``checkpoint_dir`` every ``checkpoint_every`` steps and at the end, holding every
  variable of the model and its optimisers, the step and the history; the next ``fit`` in the same
  folder resumes from it, and a finished run is restored without training (same weights, full
  history, the original ``seconds``). An interrupted and resumed run restores the weights, the optimisers'
  state, the random state and the batch order, so it takes the same steps as an uninterrupted one;
  their weights, losses and evaluations agree to float round-off (about 1e-7 relative per step, which
  a GAN's training can amplify over many steps). On CPU they are usually bitwise equal, and more
  often with TensorFlow's op determinism on and one thread per op (``TF_DETERMINISTIC_OPS=1`` and
  ``TF_NUM_INTRAOP_THREADS=1`` before TensorFlow is imported; the tests run so), but not always: two
  identical runs in one process have differed by 2e-7 after three steps even then;
* a checkpoint *key*: a hash of the code that trains (the source of the model's classes and of its
  layers' classes, and of the modules that define them), the variables' names and shapes, the data,
  ``seed``, ``batch_size`` and the caller's ``params``. A checkpoint with another key (changed code
  or parameters) is set aside with a warning naming the folder and training starts afresh;
* atomic writes: a checkpoint is written into a temporary folder that then replaces ``state/``
  (never written in place); a damaged checkpoint is set aside with a warning naming the folder;
* a time budget (``max_seconds``: stop once ``seconds`` reaches it; resumed runs included), and a
  progress bar (plain text when ``LABKIT_PLAIN_PROGRESS=1``).

Why a thin ``fit`` and not ``keras.Model.fit``: the course's trainers draw a random batch per step
(with replacement) and checkpoint every N *steps*; Keras' ``fit`` iterates epochs over a dataset and
its ``BackupAndRestore`` resumes at epoch starts and writes in place. Driving the compiled
``train_step`` directly keeps every random stream keyed by the step and keeps the checkpoint atomic.

A plain model trained with Keras' own ``model.fit`` (a classifier, say) gets the same checkpoint
from the callback :class:`KerasCheckpoint`, resumable by epochs.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from . import files
from .params import check_float, check_int
from .progress import progress

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

STATE = "state"
_LOSS_WINDOW = 50


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read back; the message names its folder."""


class Model(keras.Model):
    """A ``keras.Model`` trained by :func:`fit`: override ``train_step(batch)`` (and maybe ``draw_batch``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step = keras.Variable(0, dtype="int64", trainable=False, name="step")
        self.run_seed = 0

    def random_seed(self, salt: int = 0):
        """A stateless seed ``[seed * 1_000_003 + salt, step]`` for ``tf.random.stateless_*`` ops."""
        base = tf.constant(int(self.run_seed) * 1_000_003 + int(salt), tf.int64)
        return tf.stack([base, tf.cast(self.step, tf.int64)])

    def draw_batch(self, data, rng: np.random.Generator, batch_size: int):
        """The batch for one step: ``batch_size`` random rows of ``data`` (see :func:`draw_rows`).

        ``self.step`` already holds the step this batch is for (e.g. for epoch-wise shuffling).
        """
        return draw_rows(data, rng, batch_size)

    def checkpoint_params(self) -> dict:
        """Settings held in plain Python attributes that change training; they join the checkpoint key."""
        return {}


def draw_rows(data, rng: np.random.Generator, batch_size: int):
    """``batch_size`` rows drawn with replacement from an array, a tuple/list or a dict of arrays."""
    arrays = data if isinstance(data, (tuple, list, dict)) else (data,)
    values = list(arrays.values()) if isinstance(data, dict) else list(arrays)
    n = len(values[0])
    if any(len(v) != n for v in values):
        raise ValueError("every array of the training data needs the same number of rows")
    index = rng.integers(0, n, batch_size)
    if isinstance(data, dict):
        return {k: np.asarray(v)[index] for k, v in data.items()}
    if isinstance(data, (tuple, list)):
        return tuple(np.asarray(v)[index] for v in data)
    return np.asarray(data)[index]


# --- callbacks -------------------------------------------------------------------------------------

class Callback:
    """A hook into :func:`fit`; ``step`` is the number of steps done. Write results into ``history``."""

    def on_train_begin(self, model, history, step):
        """Called once before the first step (also when a finished run is restored)."""

    def on_step_end(self, model, history, step):
        """Called after each training step."""

    def on_train_end(self, model, history, step):
        """Called once at the end (also on a time-budget stop)."""


class Evaluate(Callback):
    """``evaluate(model)`` (a dict of numbers) every ``every`` steps (0: never) and at the end.

    The end evaluation of a run that is later continued is dropped when training goes on, so a
    resumed run records the same evaluations as an uninterrupted one.

    Each result goes to ``history[key]`` as ``{"step": ..., "seconds": ..., **numbers}``. The
    function should be deterministic (seeded), so that a resumed run records the same numbers.
    """

    def __init__(self, evaluate, every: int = 0, key: str = "evaluations"):
        self.evaluate, self.every, self.key = evaluate, check_int("every", every, minimum=0), key

    def _record(self, model, history, step):
        entries = history.setdefault(self.key, [])
        if step not in [e["step"] for e in entries]:
            result = {k: float(v) for k, v in self.evaluate(model).items()}
            entries.append({"step": int(step), "seconds": float(history["seconds"]), **result})

    def on_train_begin(self, model, history, step):
        history.setdefault(self.key, [])

    def on_step_end(self, model, history, step):
        entries = history[self.key]
        if entries and entries[-1]["step"] < step and not self._on_grid(entries[-1]["step"]):
            entries.pop()  # the end evaluation of an earlier, shorter or stopped run: training went on
        if self._on_grid(step):
            self._record(model, history, step)

    def _on_grid(self, step):
        return bool(self.every) and step > 0 and step % self.every == 0

    def on_train_end(self, model, history, step):
        self._record(model, history, step)


class Snapshot(Callback):
    """``make(model)`` (an array, e.g. sample images) at step 0 and every ``every`` steps.

    Stored in ``history[key]`` with the steps in ``history[key[:-1] + "_steps"]`` (``snapshot_steps``).
    """

    def __init__(self, make, every: int, key: str = "snapshots"):
        self.make, self.every, self.key = make, check_int("every", every, minimum=1), key
        self.steps_key = key.rstrip("s") + "_steps"

    def _record(self, model, history, step):
        if step % self.every == 0 and step not in history[self.steps_key]:
            history[self.key].append(np.asarray(self.make(model)))
            history[self.steps_key].append(int(step))

    def on_train_begin(self, model, history, step):
        history.setdefault(self.key, [])
        history.setdefault(self.steps_key, [])
        self._record(model, history, step)

    def on_step_end(self, model, history, step):
        self._record(model, history, step)


# --- the checkpoint ------------------------------------------------------------------------------

def _optimizers(model) -> list:
    """The model's optimisers: ``model.optimizer`` and every optimiser attribute, by name."""
    found = {}
    for name, value in sorted(vars(model).items()):
        if isinstance(value, keras.optimizers.Optimizer):
            found.setdefault(id(value), (name, value))
    compiled = getattr(model, "optimizer", None)
    if isinstance(compiled, keras.optimizers.Optimizer):
        found.setdefault(id(compiled), ("optimizer", compiled))
        if not compiled.built:  # the compiled optimiser trains the model's trainable variables
            compiled.build(model.trainable_variables)
    for name, opt in found.values():
        if not opt.built:
            raise ValueError(f"optimiser {name!r} of {type(model).__name__} is not built: call "
                             f"{name}.build(<the variables it trains>) in __init__")
    return [opt for _, opt in found.values()]


def _name(variable) -> str:
    """A variable's path without Keras' instance counters (``dense_3/kernel`` → ``dense/kernel``)."""
    return re.sub(r"_\d+(?=[/_]|$)", "", getattr(variable, "path", None) or variable.name)


def state_variables(model) -> list:
    """Every variable a checkpoint holds: the model's (weights, statistics, seeds) and its optimisers'."""
    out, seen = [], set()
    for v in list(model.variables) + [v for opt in _optimizers(model) for v in opt.variables]:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    if not out:
        raise ValueError(f"{type(model).__name__} has no variables yet: build it before training")
    return out


def _source(cls) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):  # no source file (e.g. exec'd code): hash the code objects
        return "".join(_code_text(f) for f in vars(cls).values())


def _code_text(obj) -> str:
    code = getattr(getattr(obj, "__func__", obj), "__code__", None)
    if code is None:
        return ""
    parts = [code.co_code.hex(), repr(code.co_names)]
    parts += [_code_text(type("_", (), {"__code__": c})()) if inspect.iscode(c) else repr(c)
              for c in code.co_consts]
    return "".join(parts)


def _config_text(layer) -> str:
    """A layer's config without its instance names (``dense_3`` and ``dense`` are the same layer)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "name"}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        if isinstance(value, str):
            return re.sub(r"_\d+(?=[/_]|$)", "", value)
        return value
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - a subclassed layer or model may not define a config
        return type(layer).__name__
    return json.dumps(strip(config), sort_keys=True, default=str)


def _from_keras(function) -> bool:
    """Whether a function comes from Keras or TensorFlow (e.g. the ``train_function`` Keras' fit stores)."""
    return (getattr(function, "__module__", None) or "").split(".")[0] in ("keras", "tensorflow")


def code_fingerprint(model) -> str:
    """A hash of the code that trains ``model``: its classes, its layers' classes and their modules,
    its layers' configs (units, activations, ...), and the code of functions stored as attributes
    of the model or its layers (e.g. a loss)."""
    layers = model._flatten_layers(include_self=True, recursive=True) \
        if hasattr(model, "_flatten_layers") else [model]
    classes = {c for layer in layers for c in type(layer).__mro__}
    h = hashlib.sha256()
    modules = set()
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        if cls.__module__.split(".")[0] in ("keras", "tensorflow", "builtins", "typing", "abc"):
            continue
        h.update(f"{cls.__module__}.{cls.__qualname__}\n{_source(cls)}".encode())
        modules.add(cls.__module__)
    for name in sorted(modules):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and name != "__main__" and Path(path).is_file():
            h.update(Path(path).read_bytes())
    for layer in layers:  # a layer's settings (units, activation, ...) are code a learner edits too
        h.update(_config_text(layer).encode())
    for layer in layers:  # functions handed to a model (a learner's loss, a penalty) train too
        for attr, value in sorted(vars(layer).items()):
            if (inspect.isfunction(value) or inspect.ismethod(value)) and not _from_keras(value):
                h.update(f"{attr}\n{_code_text(value)}".encode())
    return h.hexdigest()


def _data_fingerprint(data) -> str:
    h = hashlib.blake2b(digest_size=16)
    if callable(data):
        h.update(_code_text(data).encode())
        return h.hexdigest()
    values = data.values() if isinstance(data, dict) else data if isinstance(data, (tuple, list)) else [data]
    for v in values:
        a = np.ascontiguousarray(v)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def checkpoint_key(model, data, seed: int, batch_size: int, params=None) -> str:
    """The key a checkpoint must match to be resumed: code, variables, data, seed, batch size, params."""
    variables = [(_name(v), list(v.shape), str(v.dtype)) for v in state_variables(model)]
    own = model.checkpoint_params() if hasattr(model, "checkpoint_params") else {}
    text = json.dumps({"code": code_fingerprint(model), "variables": variables,
                       "data": _data_fingerprint(data), "seed": seed, "batch_size": batch_size,
                       "params": files.to_jsonable(params or {}),
                       "model_params": files.to_jsonable(own)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _split_history(history):
    arrays, plain = {}, {}
    for k, v in history.items():
        if isinstance(v, list) and v and isinstance(v[0], np.ndarray):
            arrays[k] = np.stack(v)
        else:
            plain[k] = v
    return plain, arrays


def save_state(folder, model, history, step: int, key: str) -> Path:
    """Write the checkpoint ``folder/state`` atomically (a temporary folder, then a rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".state-tmp-"))
    try:
        variables = state_variables(model)
        np.savez(tmp / "variables.npz", **{f"v{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)})
        plain, arrays = _split_history(history)
        np.savez(tmp / "arrays.npz", **arrays)
        names = [_name(v) for v in variables]
        meta = {"key": key, "step": int(step), "variables": names, "array_keys": sorted(arrays)}
        (tmp / "history.json").write_text(json.dumps(files.to_jsonable(plain)), encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # written last: the seal
        target, old = folder / STATE, None
        if target.exists():
            old = folder / f".state-old-{os.getpid()}-{time.time_ns()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in folder.glob(".state-tmp-*"):  # left by a killed write
        shutil.rmtree(stale, ignore_errors=True)
    return folder / STATE


def _read_state(state: Path):
    meta = json.loads((state / "meta.json").read_text(encoding="utf-8"))
    history = json.loads((state / "history.json").read_text(encoding="utf-8"))
    with np.load(state / "arrays.npz", allow_pickle=False) as arrays:
        for k in meta["array_keys"]:
            history[k] = list(arrays[k])
    with np.load(state / "variables.npz", allow_pickle=False) as data:
        values = [data[f"v{i:05d}"] for i in range(len(meta["variables"]))]
    return meta, history, values


def _set_aside(state: Path, why: str, tag: str) -> None:
    target = state.with_name(f"{STATE}.{tag}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**6}")
    os.replace(state, target)
    warnings.warn(f"checkpoint {state} {why}; moved it to {target} and training starts afresh",
                  RuntimeWarning, stacklevel=3)


def load_state(folder, model, key: str):
    """Restore ``folder/state`` into ``model`` if its key matches; returns ``(step, history)`` or ``None``.

    A checkpoint with another key, or one that cannot be read (truncated, corrupt, missing
    variables), is set aside with a warning naming it; the caller then starts afresh.
    """
    folder = Path(folder)
    state = folder / STATE
    if not state.exists():
        olds = sorted(folder.glob(".state-old-*"))  # a write killed between its two renames
        if not olds:
            return None
        os.replace(olds[-1], state)
    try:
        meta, history, values = _read_state(state)
    except Exception as error:  # noqa: BLE001 - any damage: set aside, never a raw OSError
        _set_aside(state, f"cannot be read ({type(error).__name__}: {error})", "damaged")
        return None
    if meta.get("key") != key:
        _set_aside(state, "was written by other code or parameters", "stale")
        return None
    variables = state_variables(model)
    names = [_name(v) for v in variables]
    shapes_ok = len(values) == len(variables) and all(
        tuple(a.shape) == tuple(v.shape) for a, v in zip(values, variables))
    if names != meta["variables"] or not shapes_ok:
        _set_aside(state, "does not hold this model's variables", "stale")
        return None
    for v, a in zip(variables, values):
        v.assign(a)
    return int(meta["step"]), history


# --- the loop ------------------------------------------------------------------------------------

def _compiled_step(model, jit: bool):
    """``train_step`` then ``model.step += 1``, compiled once per model and kept on it, so later
    ``fit`` calls on the same model neither retrace nor recompile (XLA). Like Keras' cached
    ``train_function``, it is rebuilt when what it was traced with changes: ``train_step``'s code,
    ``jit``, ``checkpoint_params()`` or a function stored on the model (e.g. a loss)."""
    train_step = model.train_step
    functions = tuple((k, id(v)) for k, v in sorted(vars(model).items())
                      if inspect.isfunction(v) or inspect.ismethod(v))
    own = model.checkpoint_params() if hasattr(model, "checkpoint_params") else {}
    key = (_code_text(train_step), jit, functions,
           json.dumps(files.to_jsonable(own), sort_keys=True, default=str))
    cached = getattr(model, "_labkit_compiled_step", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    step_var = getattr(model, "step", None)

    def step_and_count(batch):
        losses = train_step(batch)
        if step_var is not None:
            step_var.assign_add(1)  # after train_step's reads of the step (same resource: in order)
        return losses

    compiled = tf.function(step_and_count, jit_compile=jit, reduce_retracing=True)
    object.__setattr__(model, "_labkit_compiled_step", (key, compiled))  # not a tracked attribute
    return compiled


def fit(model, data, steps: int, *, batch_size: int = 64, seed: int = 0, checkpoint_dir=None,
        checkpoint_every: int = 200, callbacks=(), max_seconds: float | None = None, params=None,
        jit_compile: bool | None = None, desc: str = "training", show_progress: bool = True) -> dict:
    """Train ``model`` up to step ``steps``: per step, ``draw_batch`` then the compiled ``train_step``.

    Resumes from (and writes) the checkpoint in ``checkpoint_dir``; ``params`` (a dict of anything
    that changes the run but is not in the model's code or variables, e.g. a loss weight held in a
    Python attribute) joins the checkpoint key. ``jit_compile=None`` uses the model's
    ``train_jit_compile`` attribute (default off). Returns the history (see the module docstring).
    """
    steps = check_int("steps", steps, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=0)
    if max_seconds is not None:
        max_seconds = check_float("max_seconds", max_seconds, minimum=0.0)
    model.run_seed = seed
    _optimizers(model)  # builds a compiled model's optimiser; refuses unbuilt others
    draw = getattr(model, "draw_batch", None) or (lambda d, rng, n: draw_rows(d, rng, n))
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    key = checkpoint_key(model, data, seed, batch_size, params) if folder is not None else None
    history, start = {"steps": 0, "seconds": 0.0}, 0
    restored = load_state(folder, model, key) if folder is not None else None
    if restored is not None:
        start, history = restored
    step_var = getattr(model, "step", None)
    if step_var is not None:
        step_var.assign(start)
    for cb in callbacks:
        cb.on_train_begin(model, history, start)
    jit = getattr(model, "train_jit_compile", False) if jit_compile is None else bool(jit_compile)
    compiled = _compiled_step(model, jit)

    def out_of_time():
        return max_seconds is not None and history["seconds"] >= max_seconds

    def save(step):
        history["steps"] = step
        if folder is not None:
            save_state(folder, model, history, step, key)

    bar = progress(range(start, steps), total=steps, desc=desc, initial=start,
                   disable=not show_progress or out_of_time() or start >= steps)
    done = start
    for step in bar:
        if out_of_time():
            break
        began = time.perf_counter()
        batch = draw(data, np.random.default_rng([seed, step]), batch_size)  # model.step == step
        losses = compiled(batch)  # runs train_step, then model.step += 1
        for name, value in losses.items():
            history.setdefault(name, []).append(float(value))
        done = step + 1
        history["seconds"] += time.perf_counter() - began
        for cb in callbacks:
            cb.on_step_end(model, history, done)
        if done % _LOSS_WINDOW == 0:
            bar.set_postfix({k: f"{np.mean(history[k][-_LOSS_WINDOW:]):.3f}" for k in losses},
                            refresh=False)
        if checkpoint_every and done % checkpoint_every == 0 and done < steps:
            save(done)
    bar.close()
    for cb in callbacks:
        cb.on_train_end(model, history, done)
    if not (restored is not None and done == start >= steps):
        save(done)  # a finished run restored as it was is not written again
    history["steps"] = done
    return history


# --- the same checkpoint for a model trained with Keras' own fit ---------------------------------

class KerasCheckpoint(keras.callbacks.Callback):
    """:func:`fit`'s checkpoint for a model trained with Keras' own ``model.fit`` (by epochs).

    ``model.fit(x, y, epochs=..., callbacks=[KerasCheckpoint(folder, data=(x, y))])`` writes the
    model's and its optimiser's variables and the per-epoch logs to ``folder`` after every epoch,
    atomically, under the same key as :func:`fit` (the model's layers and their settings, ``data``,
    ``params`` and the settings of ``layers`` used outside the model, such as an input pipeline's
    augmentation). The next ``fit`` with it resumes after the last finished epoch; a finished run
    is restored without training; a damaged checkpoint or one written by other code is set aside
    with a warning naming it. ``callback.history`` holds every epoch's logs, the ones before a
    resume included (Keras' own ``History`` only has the epochs of this call).

    Unlike Keras' ``BackupAndRestore``, the folder is never written in place and the checkpoint is
    kept after training. A resumed run continues from the same weights but not with the same
    batches (Keras shuffles with its own random state), so it is resumable, not bit-exact: a run
    that must be exact belongs in a :class:`Model` trained with :func:`fit`.
    """

    def __init__(self, folder, data=None, params=None, layers=()):
        super().__init__()
        self.folder, self.data = Path(folder), data
        # (Keras owns self.params.) Layers outside the model that change its training, e.g. the
        # augmentation of an input pipeline, join the key with their settings.
        self.extra = {"params": params, "layers": [_config_text(layer) for layer in layers]}
        self.history, self._key = {}, None

    def on_train_begin(self, logs=None):
        _optimizers(self.model)  # builds the compiled optimiser, so its slots are checkpointed too
        self._key = checkpoint_key(self.model, () if self.data is None else self.data, 0, 0, self.extra)
        restored = load_state(self.folder, self.model, self._key)
        self.history = {} if restored is None else restored[1]
        self.model._initial_epoch = None if restored is None else restored[0]  # Keras skips these epochs

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        save_state(self.folder, self.model, self.history, epoch + 1, self._key)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # a later fit of the same model starts where it asks
