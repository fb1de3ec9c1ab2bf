"""labkit.plots: the latent-space explorer shared by notebooks 05 and 09."""
import numpy as np
import pytest

from labkit import plots
from labkit.params import ParameterError

pytest.importorskip("ipywidgets")


def _controls(explorer):
    return list(explorer.children[0].children)


def test_latent_explorer_decodes_each_slider_position():
    calls = []

    def decode(z):
        calls.append(z.copy())
        return np.full((28, 28), 0.5)

    explorer = plots.latent_explorer(decode, dims=2, limit=3, step=0.1)
    z1, z2 = _controls(explorer)
    assert (z1.min, z1.max, z1.continuous_update) == (-3, 3, False)
    assert calls[0].shape == (1, 2) and calls[0].dtype == np.float32 and not calls[0].any()
    z2.value = 1.5
    np.testing.assert_allclose(calls[-1], [[0.0, 1.5]])
    z1.value = -2.0
    np.testing.assert_allclose(calls[-1], [[-2.0, 1.5]])
    assert len(calls) == 3


def test_latent_explorer_passes_the_chosen_label():
    calls = []

    def decode(z, digit):
        calls.append((z.copy(), digit))
        return np.zeros((28, 28, 1))

    explorer = plots.latent_explorer(decode, labels=range(10), label=3, step=0.25)
    box, z1, _ = _controls(explorer)
    assert box.value == 3 and calls[0][1] == 3
    box.value = 7
    z1.value = 0.25
    assert calls[-1][1] == 7 and calls[-1][0][0, 0] == pytest.approx(0.25)
    with pytest.raises(ParameterError, match="dims"):
        plots.latent_explorer(decode, dims=0)
