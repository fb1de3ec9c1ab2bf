"""Profiles declared once (labkit/profiles.py): pinned configurations, bounds and clear errors.

``tests/assets/profile_configs.json`` holds every notebook's resolved smoke / lab / full configuration
as the notebooks' own ``PROFILES`` tables and schemas gave it before the tables moved to
``labkit/profiles.py`` (computed by executing each old set-up cell once per profile).
"""
import json
import math

import nbformat
import pytest

import labkit
from labkit import profiles
from labkit.params import ParameterError, check_float
from labkit.run import RUN_PARAMETERS, resolve_config

from conftest import NOTEBOOKS, ROOT

PINNED = json.loads((ROOT / "tests" / "assets" / "profile_configs.json").read_text())
ALL_STEMS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
STEMS = sorted(profiles.NOTEBOOKS)


def _cells(stem):
    """The notebook's parameters cell and its set-up cell (the code cell after it)."""
    nb = nbformat.read(str(NOTEBOOKS / f"{stem}.ipynb"), as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    return nb.cells[i].source, nb.cells[i + 1].source


def _namespace(stem, **values):
    """What the notebook's globals hold after its parameters cell (and papermill's injected one)."""
    namespace = {}
    exec(_cells(stem)[0], namespace)
    namespace.update(values)
    return namespace


def _same(a, b):
    """Equal values of equal types (1 and 1.0 differ: they give different checkpoint keys)."""
    return a == b and [type(a[k]) for k in sorted(a)] == [type(b[k]) for k in sorted(b)]


# --- every notebook is declared, once, and resolves as it did ----------------------------------

def test_every_notebook_is_declared_or_passes_its_own_tables():
    assert set(PINNED) <= set(STEMS) <= set(ALL_STEMS)
    for stem in set(ALL_STEMS) - set(STEMS):      # the keyword form, until it gets an entry
        assert "profiles=" in _cells(stem)[1], f"{stem}: declare it in labkit/profiles.py"


@pytest.mark.parametrize("stem", sorted(PINNED))
@pytest.mark.parametrize("profile", profiles.PROFILE_NAMES)
def test_resolved_config_equals_the_old_tables(tmp_path, stem, profile):
    assert _same(profiles.NOTEBOOKS[stem].resolve(profile), PINNED[stem][profile])
    run = labkit.start(stem, _namespace(stem, profile=profile, output_dir=str(tmp_path)))
    assert _same(vars(run.config), PINNED[stem][profile]) and run.profile == profile


@pytest.mark.parametrize("stem", STEMS)
def test_parameters_cell_declares_exactly_the_declared_parameters(stem):
    namespace = _namespace(stem)
    names = [n for n in namespace if not n.startswith("__")]
    assert names[:3] == list(RUN_PARAMETERS), "profile, seed, output_dir come first"
    assert names[3:] == list(profiles.NOTEBOOKS[stem].parameters), "same names, same order"
    assert all(namespace[n] is None for n in names[3:]), "None means the profile's value"


@pytest.mark.parametrize("stem", STEMS)
def test_setup_cell_is_one_call(stem):
    setup = _cells(stem)[1]
    assert f'run = labkit.start("{stem}", globals())' in setup
    code = [line for line in setup.splitlines()
            if line.strip() and not line.startswith(("import ", "from ", "#"))]
    assert len(code) <= 8, code
    for plumbing in ("PROFILES", "SCHEMA", "overrides", "check_int", "ParameterError"):
        assert plumbing not in setup


def test_injected_values_win_and_none_keeps_the_profile(tmp_path):
    namespace = _namespace("04_gan", profile="smoke", seed=3, output_dir=str(tmp_path), dcgan_steps=7)
    run = labkit.start("04_gan", namespace)
    assert run.config.dcgan_steps == 7 and run.config.dense_steps == 40 and run.seed == 3
    assert run.dir == (tmp_path / "04_gan").resolve()


def test_declared_notebook_without_namespace_uses_its_declaration(tmp_path):
    run = labkit.start("08_finance", profile="smoke", output_dir=tmp_path, overrides=dict(repeats=4))
    assert run.config.repeats == 4 and run.config.table_rows == 2000
    with pytest.raises(ParameterError, match="a parameter of this notebook"):
        labkit.start("08_finance", output_dir=tmp_path, overrides=dict(block=3))   # set by the profile only


# --- declarations are sane -------------------------------------------------------------------

@pytest.mark.parametrize("stem", STEMS)
def test_declarations_bound_every_number_and_accept_their_own_values(stem):
    entry = profiles.NOTEBOOKS[stem]
    for name, spec in entry.specs.items():
        if spec.kind in ("int", "float", "ints", "floats"):
            assert spec.maximum is not None and math.isfinite(spec.maximum), name
            assert spec.minimum is not None, name
        if spec.kind in ("int", "ints"):
            assert spec.minimum >= 1, f"{name}: counts must be at least 1"
        for profile in profiles.PROFILE_NAMES:
            spec.check(name, spec.value(profile))
    table = profiles.table(stem)
    assert list(table.index) == list(entry.specs) and "allowed" in table.columns


# --- bounds and errors -------------------------------------------------------------------------

def _numeric_parameters():
    return [(stem, name) for stem in STEMS
            for name, spec in profiles.NOTEBOOKS[stem].parameters.items() if spec.kind in ("int", "float")]


@pytest.mark.parametrize("stem, name", _numeric_parameters())
def test_huge_zero_and_non_finite_values_are_refused_at_once(tmp_path, stem, name):
    spec = profiles.NOTEBOOKS[stem].parameters[name]
    bad = [10**9, -1, float("inf"), float("nan"), True, "10"]
    bad += [0, 2.5] if spec.kind == "int" else [1e400]
    for value in bad:
        with pytest.raises(ParameterError) as err:
            labkit.start(stem, _namespace(stem, output_dir=str(tmp_path), **{name: value}))
        assert err.value.name == name and repr(value) in str(err.value)
        assert spec.allowed() in str(err.value)       # says what is allowed


def test_epochs_of_a_billion_message():
    with pytest.raises(ParameterError) as err:
        labkit.start("01_dataset_types", _namespace("01_dataset_types", epochs=10**9))
    assert str(err.value) == ("parameter 'epochs' = 1000000000 is not allowed: "
                              "expected an integer from 1 to 1500")


def test_check_float_refuses_non_finite_values():
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ParameterError, match="a finite number"):
            check_float("rate", value)
    assert check_float("rate", 1e300) == 1e300


def test_lists_are_checked_element_by_element():
    betas = profiles.NOTEBOOKS["05_vae"].fixed["betas"]
    assert betas.check("betas", [0, 1, 2.5]) == [0.0, 1.0, 2.5]
    for bad, element in [([0.1, float("inf")], "element 1 = inf"), ([1.0, -2.0], "element 1 = -2.0"),
                         ([True], "element 0 = True"), ([1.0, "2"], "element 1 = '2'")]:
        with pytest.raises(ParameterError, match=element) as err:
            betas.check("betas", bad)
        assert err.value.name == "betas" and "list of finite numbers" in str(err.value)
    for bad in ("abc", [], None, 0.5):
        with pytest.raises(ParameterError, match="non-empty list"):
            betas.check("betas", bad)
    sizes = profiles.NOTEBOOKS["02_data_preparation"].fixed["curve_sizes"]
    with pytest.raises(ParameterError, match="element 2 = 2.5"):
        sizes.check("curve_sizes", [100, 200, 2.5])


def test_rules_across_entries():
    with pytest.raises(ParameterError, match="at most 1000 .5,000 digits, 4000 held out") as err:
        profiles.NOTEBOOKS["03_augmentation"].resolve("full", dict(n_train_images=1001))
    assert err.value.name == "n_train_images"
    assert profiles.NOTEBOOKS["03_augmentation"].resolve("full", dict(n_train_images=1000))["n_train_images"] == 1000
    with pytest.raises(ParameterError, match="pool_size = 500"):
        profiles._overfit_set_within_pool(dict(overfit_size=600, pool_size=500))


def test_audio_folder_must_be_an_existing_folder(tmp_path):
    entry = profiles.NOTEBOOKS["03_augmentation"]
    assert entry.resolve("smoke", dict(audio_folder=str(tmp_path)))["audio_folder"] == str(tmp_path)
    for bad in (str(tmp_path / "missing"), "", 3):
        with pytest.raises(ParameterError) as err:
            entry.resolve("smoke", dict(audio_folder=bad))
        assert err.value.name == "audio_folder"


@pytest.mark.parametrize("where", ["output_dir", "parent", "notebook"])
def test_output_dir_that_is_a_file_is_a_parameter_error(tmp_path, where):
    afile = tmp_path / "afile"
    afile.write_text("x")
    output_dir = {"output_dir": afile, "parent": afile / "sub", "notebook": tmp_path}[where]
    if where == "notebook":
        (tmp_path / "04_gan").write_text("x")
    with pytest.raises(ParameterError) as err:
        labkit.start("04_gan", _namespace("04_gan", output_dir=str(output_dir)))
    assert err.value.name == "output_dir" and "is an existing file" in str(err.value)


def test_namespace_form_refuses_mixed_use(tmp_path):
    with pytest.raises(TypeError, match="globals"):
        labkit.start("04_gan", ["not", "a", "namespace"])
    with pytest.raises(TypeError, match="overrides"):
        labkit.start("04_gan", _namespace("04_gan"), overrides=dict(epochs=1))
    with pytest.raises(ParameterError, match="declared in labkit.profiles"):
        labkit.start("00_undeclared", {"profile": "lab"})


# --- the keyword form with a notebook's own tables still works ------------------------------------

TABLE = {"smoke": dict(epochs=1, n_rows=10, lr=0.01, sizes=[1, 2], test_fraction=0.5, name="a", folder=None),
         "lab": dict(epochs=3, n_rows=100, lr=0.001, sizes=[1, 2, 3], test_fraction=0.2, name="b", folder=None),
         "full": dict(epochs=9, n_rows=1000, lr=0.001, sizes=[5], test_fraction=0.2, name="c", folder=None)}


def test_keyword_form_infers_bounds_from_the_table(tmp_path):
    run = labkit.start("00_demo", profile="smoke", seed=1, output_dir=tmp_path, profiles=TABLE,
                       overrides=dict(epochs=None, lr=0.5, sizes=[4, 5]))
    assert vars(run.config) == dict(epochs=1, n_rows=10, lr=0.5, sizes=[4, 5], test_fraction=0.5,
                                    name="a", folder=None)
    for name, value, allowed in [("epochs", 0, "from 1 to 900"), ("epochs", 10**9, "from 1 to 900"),
                                 ("n_rows", 0, "from 1 to 100000"), ("lr", float("inf"), "a finite number"),
                                 ("lr", 101.0, "from 0.0 to 100"), ("sizes", "abc", "non-empty list"),
                                 ("sizes", [1, -1], "element 1 = -1"), ("test_fraction", 1.5, "from 0.0 to 1.0")]:
        with pytest.raises(ParameterError, match=allowed) as err:
            resolve_config("lab", TABLE, {name: value})
        assert err.value.name == name


def test_command_line_refuses_a_bad_value_before_starting_a_kernel(capsys):
    from labkit.__main__ import main

    assert main(["run", "04", "-p", "dense_steps", "1000000000"]) == 2
    err = capsys.readouterr().err
    assert "04_gan: parameter 'dense_steps' = 1000000000 is not allowed" in err and "from 1 to" in err
    assert main(["run", "02", "-p", "test_fraction", "1e400"]) == 2
    assert "'test_fraction' = inf" in capsys.readouterr().err


def test_command_line_refuses_profile_and_output_dir_as_parameters(capsys):
    from labkit.__main__ import main

    assert main(["run", "01", "-p", "output_dir", "/tmp/x"]) == 2
    assert "use --output instead" in capsys.readouterr().err
    assert main(["run", "01", "-p", "profile", "full"]) == 2
    assert "use --profile instead" in capsys.readouterr().err
