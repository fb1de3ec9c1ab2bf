"""Notebook 10 (diffusion, VAE-GAN, a small transformer, model collapse): the notebook's own code
cells (executed here from the .ipynb, so the tests check the code the notebook runs), the
exercises, and the smoke run's recorded metrics and saved samples."""
from pathlib import Path

import nbformat
import numpy as np
import pytest

import labkit
from labkit.exercises import nb10

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "10_beyond_gans.ipynb"
CONTRACT = ["fid_diffusion", "fid_pixel_diffusion", "train_seconds_diffusion", "train_seconds_pixel_diffusion",
            "fid_real_floor", "classes_covered_diffusion", "coverage_diffusion", "near_copy_share_diffusion",
            "tstr_accuracy_diffusion", "fid_by_sampling_steps", "samples_per_s_by_sampling_steps",
            "fid_by_guidance", "fid_vaegan", "fid_vae", "text_perplexity_transformer", "text_perplexity_ngram",
            "text_tstr_transformer", "text_longest_copy_transformer", "collapse_coverage_by_generation"]


def cell_source(tag: str) -> str:
    """The source of the notebook's code cell tagged ``tag`` (exactly one)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    found = [c.source for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    assert len(found) == 1, f"expected one cell tagged {tag!r}, found {len(found)}"
    return found[0]


def run_cell(tag: str, **names) -> dict:
    """Execute the tagged cell in a namespace holding the notebook's imports and ``names``."""
    import keras
    import tensorflow as tf
    from keras import layers

    from labkit import training

    namespace = {"np": np, "tf": tf, "keras": keras, "layers": layers, "training": training, **names}
    exec(compile(cell_source(tag), f"<{NOTEBOOK.name}:{tag}>", "exec"), namespace)
    return namespace


def schedule():
    return run_cell("diffusion-schedule")["alpha_bar"]


# --- the forward process -----------------------------------------------------------------

def test_forward_process_has_the_stated_marginal():
    alpha_bar = schedule()
    assert alpha_bar.shape == (1000,) and np.all(np.diff(alpha_bar) <= 0) and alpha_bar[0] > alpha_bar[500] > alpha_bar[-1]
    assert 0.99 < alpha_bar[0] <= 1 and 0 < alpha_bar[-1] < 0.01
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(1, 6)).astype(np.float32)
    for t in (0, 200, 500, 800, 999):
        noise = rng.standard_normal((200_000, 6)).astype(np.float32)
        x_t = nb10.q_sample(np.repeat(x0, len(noise), axis=0), alpha_bar[t], noise)
        np.testing.assert_allclose(x_t.mean(axis=0), np.sqrt(alpha_bar[t]) * x0[0], atol=0.01)
        np.testing.assert_allclose(x_t.var(axis=0), 1 - alpha_bar[t], atol=0.01)


def test_notebook_uses_the_reference_until_the_learner_passes():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert 'q_sample = ex.q1.use(q_sample, "q_sample")' in text
    assert 'ddim_step = ex.q2.use(ddim_step, "ddim_step")' in text
    assert "x_t = self.q_sample(x0, ab, noise)" in text     # the training step calls it


def test_a_passing_q_sample_is_what_the_diffusion_model_trains_with(tmp_path, capsys):
    """ex.q1.use(my_q_sample) -> Diffusion(...) -> fit: the learner's forward process is called."""
    import keras

    from labkit import training

    ex, calls = labkit.exercises.load("10"), []

    def my_q_sample(x0, alpha_bar_t, noise):
        calls.append(1)
        return alpha_bar_t ** 0.5 * x0 + (1 - alpha_bar_t) ** 0.5 * noise

    q_sample = ex.q1.use(my_q_sample, "q_sample")
    assert q_sample is my_q_sample and "use your q_sample" in capsys.readouterr().out
    assert ex.q1.use(lambda x0, a, n: x0, "q_sample") is ex.q1.reference

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4)

        def call(self, x, t, y):
            return self.dense(x)

    alpha_bar = schedule()
    ns = run_cell("diffusion-model", q_sample=q_sample, alpha_bar=alpha_bar, NULL_CLASS=10)
    net = Net()
    net(np.zeros((1, 4), np.float32), np.zeros(1, np.int32), np.zeros(1, np.int32))
    model = ns["Diffusion"](net, alpha_bar)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = (np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32), np.arange(32) % 10)
    training.fit(model, data, 2, batch_size=8, show_progress=False)
    assert calls, "the learner's q_sample was never called by the training step"
    other = ns["Diffusion"](net, alpha_bar)
    other.q_sample = ex.q1.reference
    assert training.code_fingerprint(model) != training.code_fingerprint(other)


# --- DDIM ----------------------------------------------------------------------------------

@pytest.mark.parametrize("steps, w, clip", [(1, 0.0, None), (10, 0.0, None), (50, 2.0, None), (20, 0.5, 5.0)])
def test_ddim_with_a_perfect_noise_predictor_returns_the_only_data_point(steps, w, clip):
    alpha_bar = schedule()
    point = np.array([[0.7, -1.2, 0.3, 2.0]], np.float32)

    def perfect(x, t, y):   # the exact noise that separates x from the one data point at level t
        ab = alpha_bar[t[0]]
        return (x - np.sqrt(ab) * point) / np.sqrt(1 - ab)

    ns = run_cell("diffusion-sampler", NULL_CLASS=10, ddim_step=nb10.ddim_step)
    x_T = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float64)
    out = ns["ddim_sample"](perfect, x_T, np.arange(8) % 10, steps, w, alpha_bar, clip=clip)
    np.testing.assert_allclose(out, np.repeat(point, 8, axis=0), atol=1e-4)


# --- the transformer's causal mask -----------------------------------------------------------

def test_causal_mask_lets_no_position_see_a_later_one():
    labkit.seed_everything(0)
    ns = run_cell("text-transformer", PAD=0)
    mask = ns["causal_mask"](5).numpy()
    assert np.array_equal(mask, np.tril(np.ones((5, 5), bool)))
    model = ns["TextTransformer"](vocab_size=30, max_len=12, dim=16, heads=2, blocks=2, dropout=0.0)
    ids = np.random.default_rng(0).integers(1, 30, size=(3, 12)).astype("int32")
    base = model(ids).numpy()
    for j in (0, 5, 11):
        changed = ids.copy()
        changed[:, j] = (changed[:, j] % 29) + 1                 # another token at position j
        out = model(changed).numpy()
        np.testing.assert_allclose(out[:, :j], base[:, :j], atol=1e-5)   # earlier positions: untouched
        assert np.abs(out[:, j] - base[:, j]).max() > 1e-4               # position j itself sees it


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    ns = run_cell("perplexity")
    for vocab_size in (7, 220):
        targets = np.random.default_rng(vocab_size).integers(0, vocab_size, size=(4, 9))
        log_probs = ns["token_log_probs"](np.zeros((4, 9, vocab_size)), targets)
        assert ns["perplexity"](log_probs) == pytest.approx(vocab_size, rel=1e-9)
    # a model sure of every right token has perplexity 1
    logits = np.where(np.eye(5)[None, [0, 3, 1]] > 0, 50.0, 0.0)
    assert ns["perplexity"](ns["token_log_probs"](logits, np.array([[0, 3, 1]]))) == pytest.approx(1.0, abs=1e-12)


# --- exercises -----------------------------------------------------------------------------

def test_typical_wrong_answers_are_rejected():
    ex = labkit.exercises.load("10")
    variance_not_sd = lambda x0, ab, noise: ab * x0 + (1 - ab) * noise  # noqa: E731
    result = ex.q1.check(variance_not_sd)
    assert result.status == "incorrect" and "square root" in result.message
    swapped = lambda x0, ab, noise: (1 - ab) ** 0.5 * x0 + ab ** 0.5 * noise  # noqa: E731
    assert ex.q1.check(swapped).status == "incorrect"
    numpy_only = lambda x0, ab, noise: np.sqrt(np.asarray(ab)) * x0 + np.sqrt(1 - np.asarray(ab)) * noise  # noqa: E731
    assert ex.q1.check(numpy_only).status == "incorrect"
    predicted_x0 = lambda x_t, eps, ab, ab_prev: (x_t - (1 - ab) ** 0.5 * eps) / ab ** 0.5  # noqa: E731
    result = ex.q2.check(predicted_x0)
    assert result.status == "incorrect" and "re-noise" in result.message
    same_level = lambda x_t, eps, ab, ab_prev: x_t  # noqa: E731
    assert ex.q2.check(same_level).status == "incorrect"


# --- the notebook, smoke profile ---------------------------------------------------------

@pytest.mark.notebook
def test_smoke_run_records_the_contract(smoke_run):
    metrics, outdir = smoke_run("10_beyond_gans")
    m = metrics["metrics"]
    missing = [k for k in CONTRACT if k not in m]
    assert not missing, missing
    assert m["fid_real_floor"] > 0 and m["fid_diffusion"] >= 0 and m["fid_pixel_diffusion"] >= 0
    assert metrics["targets"]["fid_diffusion"]["op"] == "<="
    assert metrics["targets"]["fid_diffusion"]["value"] == pytest.approx(10 * m["fid_real_floor"], rel=1e-3)
    assert metrics["targets"]["tstr_accuracy_diffusion"] == {"op": ">=", "value": 0.9}
    assert 0 <= m["coverage_diffusion"] <= 1 and 0 <= m["near_copy_share_diffusion"] <= 1
    assert 0 <= m["classes_covered_diffusion"] <= 10 and 0 <= m["tstr_accuracy_diffusion"] <= 1
    assert m["train_seconds_diffusion"] > 0 and m["train_seconds_pixel_diffusion"] > 0
    assert set(m["fid_by_sampling_steps"]) == set(m["samples_per_s_by_sampling_steps"]) == {"5", "10"}
    assert all(v > 0 for v in m["samples_per_s_by_sampling_steps"].values())
    assert set(m["fid_by_guidance"]) == {"0", "1"}
    assert m["text_perplexity_transformer"] > 1 and m["text_perplexity_ngram"] > 1
    assert 0 <= m["text_tstr_transformer"] <= 1 and m["text_longest_copy_transformer"] >= 0
    collapse = m["collapse_coverage_by_generation"]
    assert set(collapse) == {"synthetic only", "half real every generation"}
    assert all(len(v) == 3 and all(0 <= c <= 1 for c in v.values()) for v in collapse.values())
    for name in ("diffusion_samples", "pixel_diffusion_samples"):
        arrays = labkit.files.read_npz(outdir / f"{name}.npz")
        images, labels = arrays["images"], arrays["labels"]
        assert images.shape == (200, 28, 28) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1
        assert np.array_equal(labels, np.arange(200) % 10)
