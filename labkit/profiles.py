"""Every notebook's parameters and profiles, declared once.

Each notebook has one entry in :data:`NOTEBOOKS`. An entry lists

- ``parameters``: the names of the notebook's ``parameters`` cell, which a learner edits or papermill
  sets (``None`` there means "the profile's value");
- ``fixed``: sizes that only the profile sets;

and, for each name, its type, the values of the ``smoke``, ``lab`` and ``full`` profiles and the
range that is allowed. :func:`labkit.start` reads the entry, takes the parameter values from the
notebook's namespace and checks them against the declared types and ranges::

    run = labkit.start("04_gan", globals())

The declarations follow four rules: counts are integers of at least 1 (or a larger declared
minimum); every number has an upper bound (declared, or 100 times its largest profile value);
floats must be finite; lists are checked element by element. A bad value raises a
:class:`~labkit.params.ParameterError` that names the parameter, the value and what is allowed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .params import ParameterError, _range_text, check_choice, check_float, check_int

PROFILE_NAMES = ("smoke", "lab", "full")
DEFAULT_HEADROOM = 100        # the default upper bound is this many times the largest profile value


# --- one declared value -------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One configuration entry: its kind, its value in each profile and what is allowed.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"folder"`` (an existing folder, or ``None``),
    ``"ints"`` or ``"floats"`` (non-empty lists); ``minimum``/``maximum`` bound the numbers.
    """

    kind: str
    smoke: object
    lab: object
    full: object
    minimum: float | None = None
    maximum: float | None = None

    def value(self, profile: str):
        """The profile's value (a fresh copy for lists)."""
        value = getattr(self, profile)
        return list(value) if isinstance(value, list) else value

    def allowed(self) -> str:
        """What is allowed, in words (used in error messages and in :func:`table`)."""
        if self.kind == "bool":
            return "True or False"
        if self.kind == "folder":
            return "None or the path of an existing folder"
        unit = {"int": "an integer", "float": "a finite number", "ints": "a non-empty list of integers, each",
                "floats": "a non-empty list of finite numbers, each"}[self.kind]
        return _range_text(unit, self.minimum, self.maximum)

    def check(self, name: str, value):
        """Return ``value`` (as int/float/list) if allowed, else raise ParameterError."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ParameterError(name, value, self.allowed())
            return value
        if self.kind == "folder":
            return _check_folder(name, value)
        if self.kind in ("ints", "floats"):
            return self._check_list(name, value)
        return self._check_number(self.kind, name, value)

    def _check_number(self, kind, name, value):
        """One int or float within the declared bounds."""
        if kind == "int":
            return check_int(name, value, self.minimum, self.maximum)
        return check_float(name, value, self.minimum, self.maximum)

    def _check_list(self, name, value):
        """A non-empty list whose every element is checked; an error names the list and the element."""
        if not isinstance(value, (list, tuple)) or not value:
            raise ParameterError(name, value, self.allowed())
        checked = []
        for i, item in enumerate(value):
            try:
                checked.append(self._check_number(self.kind[:-1], name, item))
            except ParameterError:
                raise ParameterError(name, value, f"{self.allowed()}; element {i} = {item!r} is not") from None
        return checked


def _check_folder(name, value):
    """``None``, or a non-empty string naming an existing folder."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ParameterError(name, value, "None or the path of an existing folder")
    if not os.path.isdir(os.path.expanduser(value)):
        raise ParameterError(name, value, "None or the path of an existing folder (no folder there)")
    return str(value)


def _upper(values, maximum):
    """The declared maximum, or the default headroom over the largest profile value."""
    if maximum is not None:
        return maximum
    largest = max(abs(v) for v in values)
    return DEFAULT_HEADROOM * max(largest, 1)


def count(smoke: int, lab: int, full: int, *, at_least: int = 1, at_most: int | None = None) -> Spec:
    """An integer count (steps, epochs, sizes): at least 1 unless declared otherwise."""
    return Spec("int", smoke, lab, full, at_least, _upper((smoke, lab, full), at_most))


def number(smoke: float, lab: float, full: float, *, at_least: float, at_most: float) -> Spec:
    """A finite float within declared bounds."""
    return Spec("float", smoke, lab, full, at_least, at_most)


def flag(smoke: bool, lab: bool, full: bool) -> Spec:
    """True or False."""
    return Spec("bool", smoke, lab, full)


def folder() -> Spec:
    """An optional folder of the learner's own data (``None`` in every profile)."""
    return Spec("folder", None, None, None)


def counts(smoke: list, lab: list, full: list, *, at_least: int = 1, at_most: int | None = None) -> Spec:
    """A non-empty list of integer counts."""
    return Spec("ints", smoke, lab, full, at_least, _upper([*smoke, *lab, *full], at_most))


def numbers(smoke: list, lab: list, full: list, *, at_least: float, at_most: float) -> Spec:
    """A non-empty list of finite floats within declared bounds."""
    return Spec("floats", smoke, lab, full, at_least, at_most)


# --- one notebook -------------------------------------------------------------------------

@dataclass(frozen=True)
class Notebook:
    """A notebook's declared configuration: learner-set ``parameters``, profile-only ``fixed``
    sizes, and ``rules`` across entries (functions of the config that raise ParameterError)."""

    parameters: dict
    fixed: dict = field(default_factory=dict)
    rules: tuple = ()

    @property
    def specs(self) -> dict:
        """Every entry, parameters first."""
        return {**self.parameters, **self.fixed}

    def profile(self, name: str) -> dict:
        """The profile's configuration before any parameter is applied."""
        return {key: spec.value(name) for key, spec in self.specs.items()}

    def resolve(self, profile: str, overrides: dict | None = None) -> dict:
        """The profile's values with the set parameters applied (``None`` keeps the profile's), checked."""
        check_choice("profile", profile, PROFILE_NAMES)
        config = self.profile(profile)
        for name, value in (overrides or {}).items():
            if name not in self.parameters:
                raise ParameterError(name, value, "a parameter of this notebook: " + ", ".join(self.parameters))
            if value is not None:
                config[name] = value
        config = {name: self.specs[name].check(name, value) for name, value in config.items()}
        for rule in self.rules:
            rule(config)
        return config


def _train_and_test_digits_fit(config):
    """03: the training and test digits come from the same 5,000."""
    free = 5000 - config["n_test_images"]
    if config["n_train_images"] > free:
        raise ParameterError("n_train_images", config["n_train_images"],
                             f"at most {free} (5,000 digits, {config['n_test_images']} held out)")


def _overfit_set_within_pool(config):
    """09: the overfitted generator's training set is drawn from the pool."""
    if config["overfit_size"] > config["pool_size"]:
        raise ParameterError("overfit_size", config["overfit_size"], f"at most pool_size = {config['pool_size']}")


# --- the course ---------------------------------------------------------------------------
# Columns: smoke, lab, full. Bounds not written are: at least 1, at most 100 x the largest value.

NOTEBOOKS: dict[str, Notebook] = {
    "00_start_here": Notebook(parameters={}),        # nothing to size: no training here
    "01_dataset_types": Notebook(
        parameters=dict(
            epochs=count(1, 10, 15),
            n_episodes=count(3, 20, 100),
        ),
        fixed=dict(
            n_train=count(1000, 4000, 4000, at_most=4000),       # 5,000 digits, 1,000 held out
            n_cluster=count(500, 2000, 5000, at_least=10, at_most=5000),
            bc_epochs=count(20, 40, 60),
            eval_episodes=count(2, 10, 50),
        )),
    "02_data_preparation": Notebook(
        parameters=dict(
            test_fraction=number(0.25, 0.25, 0.25, at_least=0.05, at_most=0.95),
        ),
        fixed=dict(
            curve_sizes=counts([100, 300, 1000], [50, 100, 250, 500, 1000, 2000, 4000],
                               [50, 100, 250, 500, 1000, 2000, 4000], at_least=10, at_most=10000),
            n_noise_rows=count(100, 200, 500, at_most=5000),
        )),
    "03_augmentation": Notebook(
        parameters=dict(
            n_train_images=count(300, 1000, 1000, at_least=100, at_most=4000),
            image_epochs=count(2, 20, 60, at_most=500),
            text_seeds=count(2, 5, 20, at_most=100),
            audio_epochs=count(3, 24, 40, at_most=500),
            audio_folder=folder(),
        ),
        fixed=dict(
            n_test_images=count(500, 2000, 4000, at_least=100, at_most=4900),
            throughput_images=count(600, 3000, 4000, at_most=5000),
            text_train_per_class=count(16, 16, 16),
            text_n_aug=count(4, 4, 4),
            audio_per_class=count(16, 80, 200),
            audio_test_per_class=count(10, 40, 100),
        ),
        rules=(_train_and_test_digits_fit,)),
    "04_gan": Notebook(
        parameters=dict(
            dense_steps=count(40, 1500, 20000),
            dcgan_steps=count(30, 2500, 15000),
            cgan_steps=count(30, 1500, 10000),
            batch_size=count(64, 64, 64, at_most=1024),
            classifier_epochs=count(1, 6, 10),
        ),
        fixed=dict(
            synthetic_size=count(500, 10000, 10000),
            synthetic_epochs=count(1, 3, 8),
            eval_samples=count(300, 1000, 1000, at_most=10000),
            latent_dim=count(64, 64, 64, at_most=1024),
            width=count(32, 32, 64, at_most=512),
            jit_compile=flag(False, True, True),
        )),
    "05_vae": Notebook(
        parameters=dict(
            epochs=count(1, 40, 400),
            latent_dim=count(16, 32, 32, at_most=1024),
            iwae_k=count(50, 500, 5000, at_most=50000),
            iwae_digits=count(100, 1000, 1000, at_most=1000),  # the 1,000 held-out digits
            beta_epochs=count(1, 10, 60),
            refine_steps=count(5, 100, 300),
            vamp_epochs=count(1, 100, 400),
            pseudo_inputs=count(20, 200, 500, at_most=4000),   # drawn from the 4,000 training digits
            kl_warmup=count(1, 30, 100),
        ),
        fixed=dict(
            batch_size=count(100, 50, 50, at_most=4000),
            explore_batch_size=count(100, 100, 100, at_most=4000),
            epochs_2d=count(1, 20, 100),
            betas=numbers([0.1, 8.0], [0.1, 0.5, 1.0, 2.0, 8.0], [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
                          at_least=0.0, at_most=100.0),
            classifier_epochs=count(1, 6, 6),
            eval_samples=count(200, 1000, 1000, at_most=1000),
            gap_digits=count(50, 500, 1000, at_most=1000),     # digits of each set in the encoder/decoder split
        )),
    "06_adversarial": Notebook(
        parameters=dict(
            clean_epochs=count(3, 15, 30),
            at_epochs=count(2, 14, 60),
            eval_size=count(100, 500, 500, at_least=20, at_most=500),
        ),
        fixed=dict(
            train_size=count(1000, 4500, 4500, at_least=100, at_most=4500),
            at_steps=count(2, 5, 10),
            ramp_epochs=count(1, 4, 10),
            fgsm_at_epochs=count(1, 8, 20),
            reg_epochs=count(1, 6, 20),
            attack_steps=count(10, 40, 100),
            attack_restarts=count(1, 3, 5),
            jsma_sources=count(2, 12, 50, at_most=500),
        )),
    "07_faces": Notebook(
        parameters=dict(
            steps=count(30, 400, 4000),
            batch_size=count(32, 32, 32, at_most=512),
            case_seeds=count(1, 2, 10),
            n_samples=count(1000, 1000, 5000, at_least=1000, at_most=50000),
        ),
        fixed=dict(
            evaluate_every=count(15, 80, 500),
            eval_samples=count(200, 300, 1000),
            extra_faces=count(70, 140, 280),
            classifier_epochs=count(5, 25, 40),
            case_faces=count(3, 3, 3),
            case_gan_steps=count(20, 300, 3000),
            classifier_steps=count(10, 150, 300),
        )),
    "08_finance": Notebook(
        parameters=dict(
            gan_iterations=count(20, 1500, 4000),
            google_iterations=count(20, 500, 4000),
            table_epochs=count(1, 150, 300),
            disc_iterations=count(30, 1500, 2000),
            repeats=count(2, 3, 5, at_least=2, at_most=20),   # a standard deviation needs two
        ),
        fixed=dict(
            pred_iterations=count(30, 2000, 5000),
            strong_repeats=count(1, 1, 3),
            strong_epochs=count(1, 25, 100),
            n_critic=count(1, 3, 5),
            block=count(5, 5, 5),
            table_rows=count(2000, 10000, 10000, at_least=100, at_most=10000),  # the 10,000 loans
        )),
    "09_privacy": Notebook(
        parameters=dict(
            overfit_steps=count(150, 1000, 2000),
            members=count(100, 500, 500, at_least=20, at_most=1000),
        ),
        fixed=dict(
            pool_size=count(1000, 4000, 4000, at_least=500, at_most=4000),
            overfit_size=count(100, 200, 200, at_least=50, at_most=1000),
            reg_steps=count(100, 1000, 3000),
            classifier_epochs=count(1, 3, 6),
            synthetic_size=count(500, 3000, 10000, at_least=100),
        ),
        rules=(_overfit_set_within_pool,)),
    "10_beyond_gans": Notebook(
        parameters=dict(
            vae_steps=count(30, 1200, 4000),
            diffusion_steps=count(40, 1600, 6000),
            sampling_steps=count(10, 20, 50),
            guidance=number(0.5, 0.5, 0.5, at_least=0.0, at_most=20.0),
            vaegan_steps=count(30, 1000, 4000),
            text_steps=count(20, 400, 2000),
        ),
        fixed=dict(
            pixel_max_steps=count(10, 100000, 100000),
            latent_dim=count(16, 16, 16),
            unet_width=count(16, 16, 32),
            batch_size=count(100, 100, 100),
            latent_batch_size=count(256, 256, 256),
            classifier_epochs=count(1, 6, 10),
            eval_samples=count(200, 1000, 1000),
            saved_samples=count(200, 5000, 5000),
            pixel_sampling_steps=count(5, 10, 50),
            steps_grid=counts([5, 10], [5, 10, 20, 50], [5, 10, 20, 50, 100]),
            guidance_grid=numbers([0.0, 1.0], [0.0, 0.5, 1.0, 2.0, 4.0], [0.0, 0.5, 1.0, 2.0, 4.0], at_least=0.0, at_most=20.0),
            tstr_steps=count(20, 625, 1250),
            text_per_class=count(5, 50, 100),
            collapse_generations=count(3, 10, 20),
            collapse_samples=count(200, 1000, 1000),
        )),
}


# --- inferred declarations (notebooks that pass their own profile tables) --------------------

_COUNT_WORDS = ("epochs", "steps", "iterations", "episodes", "repeats", "seeds", "size", "samples")


def is_count(name: str) -> bool:
    """Whether a name reads as a count (``n_*``, ``*_epochs``, ``*_steps`` …), which must be >= 1."""
    return name.startswith("n_") or any(name == w or name.endswith("_" + w) for w in _COUNT_WORDS)


def infer(name: str, profiles: dict) -> Spec | None:
    """A Spec for one entry of a plain ``{"smoke": {...}, "lab": {...}, "full": {...}}`` table.

    Integers must be >= 1 if the name reads as a count (>= 0 otherwise), floats >= 0 and names
    ending in ``fraction`` in [0, 1]; every number is at most 100 times the largest profile value;
    lists are checked element by element. Returns None for entries of other types (strings,
    ``None``), which are left to a schema.
    """
    values = [profiles[p][name] for p in PROFILE_NAMES]
    example = values[1]
    if isinstance(example, bool):
        return flag(*values)
    if name.endswith("fraction") and isinstance(example, (int, float)):
        return number(*values, at_least=0.0, at_most=1.0)
    if isinstance(example, int):
        return count(*values, at_least=1 if is_count(name) else 0)
    if isinstance(example, float):
        return Spec("float", *values, 0.0, _upper(values, None))
    if isinstance(example, (list, tuple)) and example and all(isinstance(v, (list, tuple)) for v in values):
        items = [x for v in values for x in v]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            return Spec("ints", *values, 1 if is_count(name) else 0, _upper(items, None))
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
            return Spec("floats", *values, 0.0, _upper(items, None))
    return None


def declared(notebook: str) -> Notebook | None:
    """The notebook's declaration, or None if it has none."""
    return NOTEBOOKS.get(notebook)


def check_values(notebook: str, values: dict) -> None:
    """Check each value of a declared parameter against its declaration (for the command line, before
    a kernel starts); names the notebook does not declare, and undeclared notebooks, are left alone."""
    entry = NOTEBOOKS.get(notebook)
    for name, value in values.items():
        if entry is not None and name in entry.parameters and value is not None:
            entry.parameters[name].check(name, value)


def table(notebook: str):
    """The declaration as a table: one row per entry, its profile values and what is allowed."""
    import pandas as pd

    entry = NOTEBOOKS[notebook]
    rows = [{"name": name, "set in": "parameters cell" if name in entry.parameters else "profile",
             **{p: spec.value(p) for p in PROFILE_NAMES}, "allowed": spec.allowed()}
            for name, spec in entry.specs.items()]
    columns = ["name", "set in", *PROFILE_NAMES, "allowed"]
    return pd.DataFrame(rows, columns=columns).set_index("name")

