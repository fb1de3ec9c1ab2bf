"""The run contract: parameter validation, seeding, recording, atomic files."""
import json

import numpy as np
import pytest

import labkit
from labkit import files
from labkit.params import ParameterError, check_fraction, check_int, validate
from labkit.run import parse_target, resolve_config

PROFILES = {"smoke": dict(epochs=1, test_fraction=0.5, name="a"),
            "lab": dict(epochs=3, test_fraction=0.2, name="b"),
            "full": dict(epochs=9, test_fraction=0.2, name="c")}


def test_profile_sets_sizes_and_explicit_parameters_override(tmp_path):
    run = labkit.start("00_demo", profile="smoke", seed=3, output_dir=tmp_path, profiles=PROFILES,
                       overrides=dict(epochs=None, test_fraction=0.3))
    assert run.config.epochs == 1 and run.config.test_fraction == 0.3
    assert run.dir == (tmp_path / "00_demo").resolve() and run.dir.is_dir()


@pytest.mark.parametrize("kwargs, name", [
    (dict(profile="turbo"), "profile"),
    (dict(seed=-1), "seed"),
    (dict(seed="1"), "seed"),
    (dict(overrides=dict(epochs=-2)), "epochs"),
    (dict(overrides=dict(epochs=2.5)), "epochs"),
    (dict(overrides=dict(test_fraction=1.5)), "test_fraction"),
    (dict(overrides=dict(name=3)), "name"),
    (dict(overrides=dict(unknown=1)), "unknown"),
])
def test_bad_parameters_name_the_parameter_and_value(tmp_path, kwargs, name):
    args = dict(profile="lab", seed=0, output_dir=tmp_path, profiles=PROFILES) | kwargs
    with pytest.raises(ParameterError) as err:
        labkit.start("00_demo", **args)
    assert err.value.name == name
    assert repr(err.value.value) in str(err.value) and "expected" in str(err.value)


def test_schema_overrides_inferred_checks():
    config = resolve_config("lab", PROFILES, dict(epochs=50),
                            schema=dict(epochs=lambda n, v: check_int(n, v, 1, 100)))
    assert config["epochs"] == 50
    with pytest.raises(ParameterError, match="from 1 to 100"):
        resolve_config("lab", PROFILES, dict(epochs=0), schema=dict(epochs=lambda n, v: check_int(n, v, 1, 100)))


def test_validate_rejects_unknown_names():
    assert validate({"p": 0.5}, {"p": check_fraction}) == {"p": 0.5}
    with pytest.raises(ParameterError, match="known parameter"):
        validate({"q": 1}, {"p": check_fraction})


def test_same_seed_same_numbers(tmp_path):
    import tensorflow as tf

    draws = []
    for _ in range(2):
        labkit.start("00_demo", seed=7, output_dir=tmp_path)
        draws.append((np.random.rand(), float(tf.random.uniform(())), __import__("random").random()))
    assert draws[0] == draws[1]


def test_record_writes_metrics_and_targets(tmp_path):
    run = labkit.start("00_demo", seed=1, output_dir=tmp_path, profiles=PROFILES)
    run.record("accuracy", np.float32(0.97), target=">= 0.95")
    run.record("loss", 0.2, target="<= 0.1")
    run.record("curve", [[1, np.float64(0.5)]])
    saved = json.loads((run.dir / "metrics.json").read_text())
    assert saved["metrics"]["accuracy"] == pytest.approx(0.97)
    assert saved["targets"]["accuracy"] == {"op": ">=", "value": 0.95}
    assert saved["profile"] == "lab" and saved["seed"] == 1 and saved["config"]["epochs"] == 3
    assert run.missed_targets() == ["loss"]
    table = run.results()
    assert table.loc["accuracy", "met"] == "yes" and table.loc["loss", "met"] == "NO"
    assert "curve" not in table.index
    assert table.loc["accuracy", "value"] == "0.97" and table.loc["accuracy", "target"] == ">= 0.95"


def test_parse_target():
    assert parse_target(">= 0.95") == (">=", 0.95)
    assert parse_target("<0.1") == ("<", 0.1)
    with pytest.raises(ValueError, match="must look like"):
        parse_target("about 0.9")


def test_atomic_json_keeps_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "m.json"
    files.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        files.write_json(path, {"a": object()})
    assert files.read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left behind


def test_npz_round_trip_refuses_object_arrays(tmp_path):
    files.write_npz(tmp_path / "s.npz", images=np.zeros((2, 3)), labels=np.arange(2))
    loaded = files.read_npz(tmp_path / "s.npz")
    assert loaded["images"].shape == (2, 3) and list(loaded["labels"]) == [0, 1]
    with pytest.raises(TypeError, match="dtype object"):
        files.write_npz(tmp_path / "bad.npz", x=np.array([{}, []], dtype=object))


def test_checkpoint_dir_depends_on_configuration(tmp_path):
    a = labkit.start("00_demo", seed=1, output_dir=tmp_path, profiles=PROFILES)
    b = labkit.start("00_demo", seed=2, output_dir=tmp_path, profiles=PROFILES)
    assert a.checkpoint_dir("m") != b.checkpoint_dir("m")
    assert a.checkpoint_dir("m") == labkit.start("00_demo", seed=1, output_dir=tmp_path,
                                                 profiles=PROFILES).checkpoint_dir("m")
