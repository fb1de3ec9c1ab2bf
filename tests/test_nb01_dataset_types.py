"""Notebook 01: its exercises (wrong answers rejected; the learner's policy network is what trains),
the smoke profile, and the parameter contract in its first cell."""
from types import SimpleNamespace

import numpy as np
import papermill
import pytest

from conftest import NOTEBOOKS

from labkit.exercises import ____, load
from labkit.exercises import nb01


def _cell(stem, text):
    from conftest import code_cell

    return code_cell(stem, text)


def test_q1_rejects_a_wrong_kind_and_the_cell_does_not_hold_the_answers():
    ex = load("01")
    wrong = dict(ex.q1.reference)
    wrong["a robot's sensor readings, motor commands and rewards, step by step"] = "supervised"
    result = ex.q1.check(wrong)
    assert result.status == "incorrect" and "1 of 5" in result.message
    assert ex.q1.check(dict.fromkeys(nb01.DESCRIPTIONS, "supervised")).status == "incorrect"
    cell = _cell("01_dataset_types", "ex.q1.check(answer_q1)")
    assert '"supervised"' not in cell and "KINDS" not in cell
    assert all(d in cell for d in nb01.DESCRIPTIONS)


def test_q2_rejects_a_total_over_all_episodes_and_a_count():
    ex = load("01")
    assert ex.q2.check(lambda rewards, episode: np.array([rewards.sum()])).status == "incorrect"
    assert ex.q2.check(lambda rewards, episode: np.bincount(episode)).status == "incorrect"


def test_q3_rejects_softmax_outputs_one_output_and_no_hidden_layer():
    import keras

    def net(*layers):
        return lambda: keras.Sequential([keras.Input(shape=(4,)), *layers])

    ex = load("01")
    softmax = ex.q3.check(net(keras.layers.Dense(32, activation="relu"), keras.layers.Dense(2, activation="softmax")))
    assert softmax.status == "incorrect" and "logits" in softmax.message
    assert ex.q3.check(net(keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1))).status == "incorrect"
    assert ex.q3.check(net(keras.layers.Dense(2))).status == "incorrect"
    assert ex.q3.check(lambda: "a model").status == "incorrect"


def _train_with(answer_model):
    """Run the notebook's q3 cell (the learner's `return ____` answering ``answer_model``) and the
    training cell after it, on a few heuristic transitions; return the model that was trained."""
    import keras

    import labkit
    from labkit import rl

    states = np.random.default_rng(0).normal(0, 0.1, size=(64, 4)).astype("float32")
    namespace = dict(____=answer_model, ex=load("01"), keras=keras, labkit=labkit,
                     cfg=SimpleNamespace(bc_epochs=1),
                     expert_data={"states": states, "actions": np.array([rl.cartpole_heuristic(s) for s in states])})
    exec(_cell("01_dataset_types", 'ex.q3.use(policy_network, "policy network")'), namespace)
    exec(_cell("01_dataset_types", "policy = make_policy()"), namespace)
    assert int(namespace["policy"].optimizer.iterations.numpy()) > 0
    return namespace["policy"]


def test_the_learners_policy_network_is_what_behaviour_cloning_trains(capsys):
    import keras

    mine = nb01.policy_network()
    assert _train_with(mine) is mine
    assert "your policy network" in capsys.readouterr().out
    wrong = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2, activation="softmax")])
    assert _train_with(wrong) is not wrong
    assert "reference policy network" in capsys.readouterr().out


def test_the_blank_notebook_trains_the_reference(capsys):
    trained = _train_with(____)
    assert [type(layer).__name__ for layer in trained.layers] == ["Dense", "Dense"]
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.notebook
def test_smoke_run_records_the_contract(smoke_run):
    metrics, outdir = smoke_run("01_dataset_types")
    m = metrics["metrics"]
    for key in ["supervised_test_accuracy", "clustering_ari", "rl_random_return",
                "rl_heuristic_return", "rl_bc_return", "rl_transitions"]:
        assert key in m, key
    assert m["rl_heuristic_return"] > 5 * m["rl_random_return"]
    assert 0 < m["clustering_ari"] < 1 and m["rl_transitions"] > 0
    assert metrics["targets"]["rl_heuristic_return"] == {"op": ">=", "value": 475}
    assert "rl_heuristic_over_random" not in metrics["targets"]
    assert (outdir / "cartpole_heuristic.npz").exists() and (outdir / "bc_policy.keras").exists()
    assert metrics["profile"] == "smoke"


@pytest.mark.notebook
@pytest.mark.parametrize("params, name", [({"profile": "turbo"}, "profile"), ({"epochs": -1}, "epochs")])
def test_bad_parameter_fails_in_first_cell(tmp_path, params, name):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(NOTEBOOKS / "01_dataset_types.ipynb"), str(tmp_path / "o.ipynb"),
                                   parameters={"output_dir": str(tmp_path), **params},
                                   cwd=str(NOTEBOOKS), progress_bar=False)
    assert err.value.ename == "ParameterError" and f"'{name}'" in err.value.evalue
    assert err.value.exec_count <= 3       # the setup cell right after the parameters


def test_the_set_up_cell_is_at_most_six_lines():
    import nbformat

    from conftest import NOTEBOOKS

    cells = nbformat.read(NOTEBOOKS / "01_dataset_types.ipynb", as_version=4).cells
    setup = cells[[i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])][0] + 1]
    assert 'labkit.start("01_dataset_types", globals())' in setup.source and len(setup.source.splitlines()) <= 6
