"""Exact resume and re-run of the sequence WGAN-GP and the tabular GAN (notebook 08).

Notebook 09's DP-SGD step is tested from the notebook's own cells in tests/test_nb09_privacy.py.

Each trainer is interrupted after k steps, resumed from its checkpoint, and compared with an
uninterrupted run of the same settings: weights, history and samples must be equal bitwise (CPU).
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
from labkit import timeseries as ts  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a resume must not set anything aside

WALL_CLOCK = ("train_seconds",)


def _same_weights(a, b):
    """Every variable of the checkpoint (weights, optimiser moments, step, dropout seeds) is equal."""
    va, vb = training.state_variables(a), training.state_variables(b)
    assert len(va) == len(vb)
    for x, y in zip(va, vb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=x.path)


# --- the sequence WGAN-GP (notebook 08) ------------------------------------------------------

def _windows():
    return np.random.default_rng(0).normal(size=(200, 23, 5)).astype(np.float32)


def _wgan(folder, iterations):
    model = ts.SequenceWGAN(23, channels=5, width=8, seed=4, n_critic=2)
    return model.fit(_windows(), iterations, batch_size=16, checkpoint_dir=folder, checkpoint_every=3,
                     progress_desc=None)


def test_sequence_wgan_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    whole = _wgan(tmp_path / "whole", 7)
    _wgan(tmp_path / "split", 4)                            # interrupted after 4 steps (saved at 3 and 4)
    resumed = _wgan(tmp_path / "split", 7)
    _same_weights(whole, resumed)
    assert resumed.history == whole.history and len(whole.history["critic_loss"]) == 7
    windows = whole.sample(5)                               # the first draw of the sampling stream
    np.testing.assert_array_equal(resumed.sample(5), windows)
    again = _wgan(tmp_path / "whole", 7)                     # a re-run restores, does not train
    _same_weights(whole, again)
    assert again.history == whole.history and again.train_seconds == whole.train_seconds > 0
    np.testing.assert_array_equal(again.sample(5), windows)


def test_sequence_wgan_changed_settings_do_not_resume(tmp_path):
    _wgan(tmp_path, 3)
    other = ts.SequenceWGAN(23, channels=5, width=8, seed=4, n_critic=3)    # n_critic is in the key
    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        other.fit(_windows(), 3, batch_size=16, checkpoint_dir=tmp_path, progress_desc=None)
    assert len(other.history["critic_loss"]) == 3


# --- the tabular GAN (notebook 08) -----------------------------------------------------------

SPEC = tb.TableSpec(numeric=["amount", "months"], categorical=["grade", "home"], integer=["months"])


def _frame(n=300):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"amount": rng.lognormal(9, 0.5, n),
                         "months": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 60, n)).astype(float),
                         "grade": rng.choice(list("ABC"), n, p=[0.5, 0.3, 0.2]),
                         "home": np.where(rng.random(n) < 0.1, None, rng.choice(["RENT", "OWN"], n))})


def _ctgan(folder, epochs):
    model = tb.ConditionalTabularGAN(SPEC, noise_dim=8, width=16, seed=2, target="grade", target_share=0.3)
    return model.fit(_frame(), epochs=epochs, batch_size=50, checkpoint_dir=folder, checkpoint_every=1,
                     progress_desc=None)


def test_gumbel_uniforms_never_reach_one():
    """A uniform of exactly 1 gives an infinite Gumbel value and NaN weights (a float64 draw cast
    to float32 rounds to 1 about once in 3e7 draws: every lab-profile run)."""
    u = tb.gumbel_uniforms(np.random.default_rng(0), (4_000_000,))
    assert u.dtype == np.float32 and u.min() >= 1e-8 and u.max() < 1.0
    assert np.isfinite(-np.log(-np.log(u))).all()


def test_tabular_gan_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    whole = _ctgan(tmp_path / "whole", 3)
    _ctgan(tmp_path / "split", 1)                           # interrupted after one epoch (6 steps)
    resumed = _ctgan(tmp_path / "split", 3)
    _same_weights(whole.model, resumed.model)                # dropout seed state included
    assert resumed.history == whole.history and len(whole.history["critic_loss"]) == 3
    rows = whole.sample(40)                                 # the first draw of the sampling stream
    pd.testing.assert_frame_equal(resumed.sample(40), rows)
    pd.testing.assert_frame_equal(resumed.sample(10, condition={"grade": "C"}, max_tries=100),
                                  whole.sample(10, condition={"grade": "C"}, max_tries=100))
    again = _ctgan(tmp_path / "whole", 3)
    _same_weights(whole.model, again.model)
    assert again.history == whole.history
    pd.testing.assert_frame_equal(again.sample(40), rows)


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
    # training seconds: the steps' original time is restored; only the GARCH and table-transformer fits
    # (not checkpointed, a few seconds) are measured again
    assert second["metrics"]["train_seconds"] >= 0.5 * first["metrics"]["train_seconds"]
    assert (tmp_path / "08_finance" / "wgan_training.png").read_bytes() == curve    # the same, non-empty curve
