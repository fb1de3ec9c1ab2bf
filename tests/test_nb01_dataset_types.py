"""Notebook 01 in the smoke profile, and the parameter contract in its first cell."""
import papermill
import pytest

from conftest import NOTEBOOKS

pytestmark = pytest.mark.notebook


def test_smoke_run_records_the_contract(smoke_run):
    metrics, outdir = smoke_run("01_dataset_types")
    m = metrics["metrics"]
    for key in ["supervised_test_accuracy", "clustering_ari", "rl_random_return",
                "rl_heuristic_return", "rl_bc_return", "rl_transitions"]:
        assert key in m, key
    assert m["rl_heuristic_return"] > 5 * m["rl_random_return"]
    assert 0 < m["clustering_ari"] < 1 and m["rl_transitions"] > 0
    assert (outdir / "cartpole_heuristic.npz").exists() and (outdir / "bc_policy.keras").exists()
    assert metrics["profile"] == "smoke"


@pytest.mark.parametrize("params, name", [({"profile": "turbo"}, "profile"), ({"epochs": -1}, "epochs")])
def test_bad_parameter_fails_in_first_cell(tmp_path, params, name):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(NOTEBOOKS / "01_dataset_types.ipynb"), str(tmp_path / "o.ipynb"),
                                   parameters={"output_dir": str(tmp_path), **params},
                                   cwd=str(NOTEBOOKS), progress_bar=False)
    assert err.value.ename == "ParameterError" and f"'{name}'" in err.value.evalue
    assert err.value.exec_count <= 3       # the setup cell right after the parameters
