"""Exact resume and re-run of the sequence WGAN-GP and the tabular GAN (built in notebook 08's cells,
executed here from the .ipynb).

Notebook 09's DP-SGD step is tested from the notebook's own cells in tests/test_nb09_privacy.py.

Each trainer is interrupted after k steps, resumed from its checkpoint, and compared with an
uninterrupted run of the same settings: weights, history and samples must agree to float round-off
(see conftest.assert_same_training); a re-run that restores a finished model must match exactly.
Notebook 08 run twice in one output folder (the second run restores every model) must record the
same metrics, apart from wall-clock seconds.
"""
import math

import numpy as np
import pandas as pd
import pytest

from conftest import execute_notebook

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from labkit import training  # noqa: E402
from labkit import tabular as tb  # noqa: E402
from labkit.exercises.nb08 import gradient_penalty as reference_penalty  # noqa: E402
from test_nb08_finance import notebook_namespace  # noqa: E402
from conftest import assert_same_training  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a resume must not set anything aside

WALL_CLOCK = ()


def _same_weights(a, b, exact=True):
    """Every variable of the checkpoint (weights, optimiser moments, step, dropout seeds) is equal:
    exactly for a restored model, to round-off for a retrained one (see conftest)."""
    va, vb = training.state_variables(a), training.state_variables(b)
    assert len(va) == len(vb)
    for x, y in zip(va, vb):
        assert_same_training(x, y, x.path, exact=exact)


# --- the sequence WGAN-GP (notebook 08's cells) ------------------------------------------------

def _windows():
    return np.random.default_rng(0).normal(size=(200, 23, 5)).astype(np.float32)


def _wgan(folder, iterations, n_critic=2):
    ns = notebook_namespace("sequence-gan")
    keras.utils.set_random_seed(4)
    model = ns["SequenceWGAN"](ns["build_sequence_generator"](23, width=8), ns["build_sequence_critic"](23, width=8),
                               reference_penalty, n_critic=n_critic)
    history = training.fit(model, _windows(), iterations, batch_size=16, seed=4, checkpoint_dir=folder,
                           checkpoint_every=3, show_progress=False)
    return model, history


def _sample(model):
    return model.generator.predict(model.noise(5, np.random.default_rng([4, 2 ** 31])), verbose=0)


def test_sequence_wgan_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    whole, h_whole = _wgan(tmp_path / "whole", 7)
    _wgan(tmp_path / "split", 4)                            # interrupted after 4 steps (saved at 3 and 4)
    resumed, h_resumed = _wgan(tmp_path / "split", 7)
    _same_weights(whole, resumed, exact=False)
    assert_same_training(h_resumed["critic_loss"], h_whole["critic_loss"], "critic loss")
    assert len(h_whole["critic_loss"]) == 7
    windows = _sample(whole)
    assert_same_training(_sample(resumed), windows, "samples")
    again, h_again = _wgan(tmp_path / "whole", 7)            # a re-run restores, does not train
    _same_weights(whole, again)
    assert h_again["generator_loss"] == h_whole["generator_loss"] and h_again["seconds"] == h_whole["seconds"] > 0
    np.testing.assert_array_equal(_sample(again), windows)


def test_sequence_wgan_changed_settings_do_not_resume(tmp_path):
    _wgan(tmp_path, 3)
    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        _, history = _wgan(tmp_path, 3, n_critic=3)                   # n_critic is in the key
    assert len(history["critic_loss"]) == 3


# --- the tabular GAN (notebook 08's cells) ---------------------------------------------------

SPEC = tb.TableSpec(numeric=["amount", "months"], categorical=["grade", "home"], integer=["months"])


def _frame(n=300):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"amount": rng.lognormal(9, 0.5, n),
                         "months": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 60, n)).astype(float),
                         "grade": rng.choice(list("ABC"), n, p=[0.5, 0.3, 0.2]),
                         "home": np.where(rng.random(n) < 0.1, None, rng.choice(["RENT", "OWN"], n))})


def _ctgan(folder, steps):
    ns = notebook_namespace("table-gan", "sequence-gan")
    sampler = tb.ConditionSampler(SPEC, seed=2, target="grade", target_share=0.3).fit(_frame())
    keras.utils.set_random_seed(2)
    model = ns["TableGAN"](ns["build_table_generator"](8, sampler.cond_width, sampler.width, width=16),
                           ns["build_table_critic"](sampler.width + sampler.cond_width, width=16),
                           sampler, reference_penalty)
    history = training.fit(model, sampler.data, steps, batch_size=50, seed=2, checkpoint_dir=folder,
                           checkpoint_every=6, show_progress=False)
    return sampler, model, history


def test_gumbel_uniforms_never_reach_one():
    """A uniform of exactly 1 gives an infinite Gumbel value and NaN weights (a float64 draw cast
    to float32 rounds to 1 about once in 3e7 draws: every lab-profile run)."""
    u = tb.gumbel_uniforms(np.random.default_rng(0), (4_000_000,))
    assert u.dtype == np.float32 and u.min() >= 1e-8 and u.max() < 1.0
    assert np.isfinite(-np.log(-np.log(u))).all()


def test_tabular_gan_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    sampler, whole, h_whole = _ctgan(tmp_path / "whole", 18)
    _ctgan(tmp_path / "split", 6)                           # interrupted after one epoch (6 steps)
    _, resumed, h_resumed = _ctgan(tmp_path / "split", 18)
    _same_weights(whole, resumed, exact=False)               # dropout seed state included
    assert_same_training(h_resumed["critic_loss"], h_whole["critic_loss"], "critic loss")
    assert len(h_whole["critic_loss"]) == 18
    rows = sampler.sample(whole.generator, 40)
    pd.testing.assert_frame_equal(sampler.sample(resumed.generator, 40), rows)
    pd.testing.assert_frame_equal(sampler.sample(resumed.generator, 10, condition={"grade": "C"}, max_tries=100),
                                  sampler.sample(whole.generator, 10, condition={"grade": "C"}, max_tries=100))
    _, again, h_again = _ctgan(tmp_path / "whole", 18)
    _same_weights(whole, again)
    assert h_again["generator_loss"] == h_whole["generator_loss"]
    pd.testing.assert_frame_equal(sampler.sample(again.generator, 40), rows)


def _same_metrics(first, second, path="metrics"):
    """Assert two metrics.json "metrics" dicts are equal (floats bitwise, NaN equal to NaN)."""
    if isinstance(first, dict):
        assert set(first) == set(second), f"{path}: keys differ: {set(first) ^ set(second)}"
        for key in first:
            _same_metrics(first[key], second[key], f"{path}.{key}")
    elif isinstance(first, list):
        assert len(first) == len(second), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(first, second)):
            _same_metrics(a, b, f"{path}[{i}]")
    elif isinstance(first, float) and isinstance(second, float) and math.isnan(first):
        assert math.isnan(second), f"{path}: {first} vs {second}"
    else:
        assert first == second, f"{path}: {first!r} vs {second!r}"


@pytest.mark.notebook
def test_notebook_08_rerun_in_the_same_folder_gives_the_same_metrics(tmp_path):
    first = execute_notebook("08_finance", tmp_path, profile="smoke")
    curve = (tmp_path / "08_finance" / "wgan_training.png").read_bytes()
    second = execute_notebook("08_finance", tmp_path, profile="smoke")
    m1 = {k: v for k, v in first["metrics"].items() if k not in WALL_CLOCK}
    m2 = {k: v for k, v in second["metrics"].items() if k not in WALL_CLOCK}
    _same_metrics(m1, m2)
    assert (tmp_path / "08_finance" / "wgan_training.png").read_bytes() == curve    # the same, non-empty curve
