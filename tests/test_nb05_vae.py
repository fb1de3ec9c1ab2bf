"""Notebook 05 (variational autoencoders): the notebook's own cells (ELBO, IWAE, VampPrior, refinement,
the training step) against independent references, the learner's exercise functions being what trains,
the conditional VAE of labkit (used by 09) against the notebook's cell, the exercises' wrong answers,
and the smoke run's recorded metrics and saved models."""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import labkit
from labkit import vae as V
from labkit.exercises import nb05

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_vae.ipynb"
KEYS = ["test_elbo_nats", "test_iwae_nats", "iwae_k", "test_recon_nats", "test_kl_nats", "fid_vae",
        "coverage_vae", "beta_curve", "train_seconds", "latent_dim", "train_iwae_nats",
        "generalisation_gap_encoder_nats", "generalisation_gap_iwae_nats"]


# --- the notebook's cells, executed here -------------------------------------------------------

def _code_cells():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _definitions(marker: str, namespace: dict) -> dict:
    """Execute the imports, functions and classes of the code cell containing ``marker``."""
    [source] = [s for s in _code_cells() if marker in s]
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                        ast.ClassDef))]
    exec(compile(tree, str(NOTEBOOK), "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace


@pytest.fixture(scope="module")
def nb():
    """The notebook's model code: log-densities, networks, VAE, VampVAE, ELBO/IWAE and refinement cells."""
    ns = {"np": np, "labkit": labkit, "log_mean_exp": nb05.iwae_from_log_weights}
    for marker in ("def bernoulli_log_likelihood", "def build_encoder", "class VAE(", "def elbo_of",
                   "def log_weights", "class VampVAE(", "def refine_posterior", "def build_cvae"):
        _definitions(marker, ns)
    return ns


def test_setup_cell_is_short_and_no_labkit_model_is_called():
    cells = _code_cells()
    setup = cells[1]                                    # the cell after `parameters`
    assert "labkit.start(\"05_vae\"" in setup and len(setup.strip().splitlines()) <= 6
    text = "\n".join(cells)
    for name in ("make_vae", "V.fit", "V.VAE", "V.iwae_bound", "V.refine_posterior", "V.VampPrior",
                 "V.build_cvae", "show_source"):
        assert name not in text, name
    assert "GradientTape" in text and "def train_step" in text


def _known_model(nb, m=0.5, log_var=-1.0, seed=0):
    """Encoder: constant q(z|x) = N(m, exp(log_var)); decoder: constant logits b (ignores z)."""
    encoder, decoder = nb["build_encoder"](1, hidden=()), nb["build_decoder"](1, hidden=())
    encoder.get_layer("mean").set_weights([np.zeros((784, 1)), np.array([m])])
    encoder.get_layer("log_var").set_weights([np.zeros((784, 1)), np.array([log_var])])
    b = np.random.default_rng(seed).normal(0, 1.5, size=784)
    decoder.get_layer("logits").set_weights([np.zeros((1, 784)), b])
    return encoder, decoder, b


def test_notebook_elbo_and_iwae_of_a_known_tiny_model_match_a_hand_computation(nb):
    m, log_var = 0.5, -1.0
    encoder, decoder, b = _known_model(nb, m, log_var)
    model = nb["VAE"](encoder, decoder, nb05.kl_to_standard_normal, nb05.reparameterize)
    x = V.binarize(np.full((4, 28, 28), 0.3), seed=1)
    p = 1 / (1 + np.exp(-b))
    flat = x.reshape(4, -1)
    recon = (flat * np.log(p) + (1 - flat) * np.log(1 - p)).sum(axis=1)
    kl = 0.5 * (m**2 + math.exp(log_var) - 1 - log_var)
    got_recon, got_kl = nb["elbo_of"](model, x, num_samples=3)
    assert got_kl == pytest.approx(np.full(4, kl), rel=1e-5)
    assert got_recon == pytest.approx(recon, rel=1e-5)
    # a constant decoder makes every importance weight p(x) p(z)/q(z): the bound is log p(x) exactly
    assert nb["iwae_bound"](model, x, k=20000, chunk=5000).mean() == pytest.approx(recon.mean(), abs=0.05)


def test_notebook_iwae_rises_from_the_elbo_with_k(nb):
    labkit.seed_everything(0)
    model = nb["VAE"](nb["build_encoder"](4, (32,)), nb["build_decoder"](4, (32,)),
                      nb05.kl_to_standard_normal, nb05.reparameterize)
    x = V.binarize(labkit.data.load_digits().x[::500])            # 10 digits
    lw = nb["log_weights"](model, x, *model.encoder(x), k=2000, rng=np.random.default_rng(7))
    recon, kl = nb["elbo_of"](model, x, num_samples=100, seed=99)
    standard_error = lw.std(axis=0) * math.sqrt(1 / len(lw) + 1 / 100)  # both are estimates
    assert np.all(np.abs(lw.mean(axis=0) - (recon - kl)) < 4 * standard_error + 1e-3)
    assert np.all(nb05.iwae_from_log_weights(lw) > lw.mean(axis=0))


def test_notebook_vamp_prior_is_the_mixture_density_and_its_kl_estimate(nb):
    labkit.seed_everything(0)
    encoder = nb["build_encoder"](3, (16,))
    pseudo = np.random.default_rng(0).random((5, 28, 28)).astype("float32")
    model = nb["VampVAE"](encoder, nb["build_decoder"](3, (16,)), nb05.kl_to_standard_normal,
                          nb05.reparameterize, pseudo)
    means, log_vars = (a.numpy().astype("float64") for a in encoder(model.pseudo_inputs()))
    z = np.random.default_rng(1).normal(size=(7, 3)).astype("float32")
    dens = np.mean([stats.multivariate_normal(means[j], np.diag(np.exp(log_vars[j]))).pdf(z)
                    for j in range(5)], axis=0)
    assert model.log_prior(z).numpy() == pytest.approx(np.log(dens), rel=1e-4)
    assert model.pseudo_inputs().numpy() == pytest.approx(np.clip(pseudo, 0.02, 0.98), abs=1e-5)
    draws = model.sample_prior(100_000, seed=2)                    # the mixture's mean (law of total mean)
    assert draws.mean(axis=0) == pytest.approx(means.mean(axis=0), abs=0.03)
    mean, log_var = means[:1].astype("float32"), log_vars[:1].astype("float32")
    zq = (mean + np.exp(0.5 * log_var) * np.random.default_rng(3).standard_normal((20000, 3))).astype("float32")
    kl = model.kl(np.repeat(mean, 20000, 0), np.repeat(log_var, 20000, 0), zq).numpy().mean()
    q = stats.multivariate_normal(mean[0], np.diag(np.exp(log_var[0])))
    assert kl == pytest.approx(np.mean(q.logpdf(zq) - np.log(np.mean(
        [stats.multivariate_normal(means[j], np.diag(np.exp(log_vars[j]))).pdf(zq) for j in range(5)], axis=0))),
        abs=1e-3)


def test_notebook_kl_warmup_ramps_the_weight(nb):
    model = nb["VAE"](nb["build_encoder"](2, (8,)), nb["build_decoder"](2, (8,)), nb05.kl_to_standard_normal,
                      nb05.reparameterize, beta=2.0, kl_warmup_epochs=4, steps_per_epoch=5)
    weights = []
    for step in (0, 4, 5, 12, 20, 35):
        model.step.assign(step)
        weights.append(float(model.kl_weight()))
    assert weights == pytest.approx([0.0, 0.0, 0.5, 1.0, 2.0, 2.0])
    assert nb["VAE"](model.encoder, model.decoder, None, None).kl_weight() == 1.0


def test_notebook_refinement_raises_each_digits_elbo(nb):
    labkit.seed_everything(0)
    model = nb["VAE"](nb["build_encoder"](2, (16,)), nb["build_decoder"](2, (16,)),
                      nb05.kl_to_standard_normal, nb05.reparameterize)
    x = V.binarize(labkit.data.load_digits().x[::250])            # 20 digits
    start = nb["refine_posterior"](model, x, steps=0)
    np.testing.assert_allclose(start[0], model.encoder(x)[0].numpy(), atol=1e-6)
    posterior = nb["refine_posterior"](model, x, steps=30, learning_rate=0.1)
    before = np.subtract(*nb["elbo_of"](model, x, num_samples=20, seed=1))
    after = np.subtract(*nb["elbo_of"](model, x, posterior, num_samples=20, seed=1))
    assert after.mean() > before.mean() + 0.5 and np.mean(after > before) > 0.8


def test_the_learners_passing_functions_are_what_trains(nb, tmp_path, capsys):
    """A correct but instrumented KL and reparameterisation, handed on by `use` as in the notebook."""
    from labkit import training

    calls = {"kl": 0, "sample": 0}

    def my_kl(mean, log_var):
        calls["kl"] += 1
        return nb05.kl_to_standard_normal(mean, log_var)

    def my_reparameterize(mean, log_var, eps):
        calls["sample"] += 1
        return nb05.reparameterize(mean, log_var, eps)

    ex = labkit.exercises.load("05")
    kl_fn = ex.q1.use(my_kl, "KL term")
    sample_z = ex.q2.use(my_reparameterize, "reparameterisation")
    assert kl_fn is my_kl and sample_z is my_reparameterize
    assert "use your KL term" in capsys.readouterr().out
    labkit.seed_everything(0)
    model = nb["VAE"](nb["build_encoder"](2, (8,)), nb["build_decoder"](2, (8,)), kl_fn, sample_z,
                      steps_per_epoch=4)
    model.compile(optimizer="adam")
    calls.update(kl=0, sample=0)
    x = labkit.data.load_digits().x[:40]
    history = training.fit(model, x, 4, batch_size=10, checkpoint_dir=tmp_path / "mine", show_progress=False)
    assert calls["kl"] >= 1 and calls["sample"] >= 1 and len(history["loss"]) == 4
    # a wrong answer is replaced by the reference, and the checkpoint key tells the two apart
    wrong = lambda mean, log_var, eps: mean + tf_exp(log_var) * eps  # noqa: E731
    assert ex.q2.use(wrong, "reparameterisation") is nb05.reparameterize
    other = nb["VAE"](model.encoder, model.decoder, kl_fn, nb05.reparameterize, steps_per_epoch=4)
    other.compile(optimizer="adam")
    assert training.checkpoint_key(model, x, 0, 10) != training.checkpoint_key(other, x, 0, 10)


def tf_exp(value):
    import tensorflow as tf

    return tf.exp(value)


def tf_constant(value):
    import tensorflow as tf

    return tf.constant(value)


def test_labkit_cvae_builds_the_notebooks_architecture(nb):
    """09 trains labkit.vae.build_cvae; the notebook shows the same model in a cell."""
    for args in [(), (2, 128), (16, 512)]:
        labkit.seed_everything(0)
        ours = nb["build_cvae"](*args)
        theirs = V.build_cvae(*args)
        for a, b in zip(ours, theirs):
            assert [type(l).__name__ for l in a.layers] == [type(l).__name__ for l in b.layers]
            assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights]
            assert a.count_params() == b.count_params()
            assert [tuple(t.shape) for t in a.outputs] == [tuple(t.shape) for t in b.outputs]


# --- what labkit.vae keeps (used by notebook 09) ------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_kl_matches_monte_carlo(seed):
    rng = np.random.default_rng(seed)
    mean, log_var = rng.normal(0, 1, size=5), rng.normal(0, 0.7, size=5)
    sd = np.exp(0.5 * log_var)
    z = mean + sd * rng.standard_normal((400_000, 5))
    monte_carlo = np.mean(np.sum(stats.norm.logpdf(z, mean, sd) - stats.norm.logpdf(z), axis=1))
    closed = float(V.kl_standard_normal(mean[None].astype("float32"), log_var[None].astype("float32"))[0])
    assert closed == pytest.approx(monte_carlo, rel=0.02)
    assert float(nb05.kl_to_standard_normal(mean[None], log_var[None])[0]) == pytest.approx(closed, rel=1e-5)


def test_bernoulli_log_likelihood_matches_scipy(nb):
    rng = np.random.default_rng(4)
    x = (rng.random((3, 28, 28)) < 0.3).astype("float32")
    logits = rng.normal(0, 2, size=x.shape).astype("float32")
    want = stats.bernoulli.logpmf(x, 1 / (1 + np.exp(-logits.astype("float64")))).reshape(3, -1).sum(axis=1)
    assert nb["bernoulli_log_likelihood"](x, logits).numpy() == pytest.approx(want, rel=1e-5)
    assert V.bernoulli_log_likelihood(x[..., None], logits[..., None]).numpy() == pytest.approx(want, rel=1e-5)
    z, mean, log_var = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    want = [stats.multivariate_normal(mean[i], np.diag(np.exp(log_var[i]))).logpdf(z[i]) for i in range(4)]
    assert nb["gaussian_log_density"](z, mean, log_var).numpy() == pytest.approx(want, rel=1e-9)


def test_cvae_losses_and_samples():
    labkit.seed_everything(0)
    encoder, decoder = V.build_cvae(latent_dim=2, hidden=16)
    x = tf_constant(labkit.data.load_digits().x[:3, ..., None])
    label = tf_constant(np.eye(10, dtype="float32")[[0, 1, 2]])
    eps = np.zeros((3, 2), "float32")                               # z = mean
    mean, log_var = encoder([x, label])
    want = V.kl_standard_normal(mean, log_var) - V.bernoulli_log_likelihood(x, decoder([mean, label]))
    assert V.cvae_losses(encoder, decoder, x, label, eps).numpy() == pytest.approx(want.numpy(), rel=1e-5)
    images = V.cvae_sample(decoder, [3, 3, 7], seed=1)
    assert images.shape == (3, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert np.array_equal(images, V.cvae_sample(decoder, [3, 3, 7], seed=1))


def test_binarize_is_a_fixed_bernoulli_draw():
    grey = np.random.default_rng(0).random((200, 28, 28)).astype("float32")
    a, b = V.binarize(grey, seed=5), V.binarize(grey, seed=5)
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0.0, 1.0}
    assert not np.array_equal(a, V.binarize(grey, seed=6))
    assert a.mean() == pytest.approx(grey.mean(), abs=0.005)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.binarize(np.full((2, 28, 28), 255.0))


# --- exercises -----------------------------------------------------------------------------
# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook

def test_q1_kl_wrong_answers_are_rejected():
    import tensorflow as tf

    ex = labkit.exercises.load("05")
    half = lambda m, lv: tf.reduce_sum(tf.square(m) + tf.exp(lv) - 1.0 - lv, axis=-1)  # noqa: E731
    assert "1/2" in ex.q1.check(half).message
    log_sigma = lambda m, lv: 0.5 * tf.reduce_sum(tf.square(m) + tf.exp(2 * lv) - 1.0 - 2 * lv, axis=-1)  # noqa: E731
    assert "log-variance" in ex.q1.check(log_sigma).message
    mean_over = lambda m, lv: 0.5 * tf.reduce_mean(tf.square(m) + tf.exp(lv) - 1.0 - lv, axis=-1)  # noqa: E731
    assert "sum" in ex.q1.check(mean_over).message
    scalar = lambda m, lv: 0.5 * tf.reduce_sum(tf.square(m) + tf.exp(lv) - 1.0 - lv)  # noqa: E731
    assert "shape" in ex.q1.check(scalar).message
    in_numpy = lambda m, lv: 0.5 * np.sum(np.square(m) + np.exp(lv) - 1.0 - lv, axis=-1)  # noqa: E731
    result = ex.q1.check(in_numpy)
    assert result.status == "incorrect" and "tf.function" in result.message
    assert ex.q1.check(nb05.kl_to_standard_normal).status == "correct"


def test_q2_reparameterisation_wrong_answers_are_rejected():
    import tensorflow as tf

    ex = labkit.exercises.load("05")
    variance = lambda m, lv, e: m + tf.exp(lv) * e  # noqa: E731
    assert "standard" in ex.q2.check(variance).message
    assert ex.q2.check(lambda m, lv, e: m + e).status == "incorrect"
    assert ex.q2.check(lambda m, lv, e: m + lv * e).status == "incorrect"
    fresh = lambda m, lv, e: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m))  # noqa: E731
    assert "eps" in ex.q2.check(fresh).message
    detached = lambda m, lv, e: tf.constant(m.numpy() + np.exp(0.5 * lv.numpy()) * e.numpy())  # noqa: E731
    assert ex.q2.check(detached).status == "incorrect"
    assert ex.q2.check(lambda m, lv, e: m + tf.sqrt(tf.exp(lv)) * e).status == "correct"


def test_q3_and_q4_wrong_answers_are_rejected():
    ex = labkit.exercises.load("05")
    naive = lambda log_w: np.log(np.mean(np.exp(log_w), axis=0))  # noqa: E731
    with np.errstate(divide="ignore"):
        result = ex.q3.check(naive)
    assert result.status == "incorrect" and "subtract" in result.message
    assert "ELBO" in ex.q3.check(lambda log_w: log_w.mean(axis=0)).message
    log_sum = lambda log_w: nb05.iwae_from_log_weights(log_w) + math.log(len(log_w))  # noqa: E731
    assert "divide by k" in ex.q3.check(log_sum).message
    assert ex.q4.check({"beta_to_zero": "b", "beta_large": "a"}).status == "incorrect"
    assert ex.q4.check({"beta_to_zero": "c", "beta_large": "b"}).status == "incorrect"
    assert ex.q4.check({"beta_to_zero": "a"}).status == "incorrect"


# --- the notebook, smoke profile ---------------------------------------------------------

@pytest.mark.notebook
def test_smoke_run_records_the_contract(smoke_run):
    import keras

    metrics, outdir = smoke_run("05_vae")
    m = metrics["metrics"]
    assert set(KEYS) <= set(m)
    assert metrics["targets"]["test_elbo_nats"] == {"op": ">=", "value": -100.0}
    assert metrics["targets"]["test_iwae_nats"] == {"op": ">=", "value": -95.0}
    assert -600 < m["test_elbo_nats"] < 0 and m["test_kl_nats"] >= 0 and m["test_recon_nats"] < 0
    assert m["test_elbo_nats"] == pytest.approx(m["test_recon_nats"] - m["test_kl_nats"], abs=1e-4)
    assert m["test_iwae_nats"] > m["test_elbo_amortised_nats"]
    assert m["fid_vae"] >= 0 and 0 <= m["coverage_vae"] <= 1
    assert all(len(row) == 3 and row[1] >= 0 and row[2] < 0 for row in m["beta_curve"])
    assert m["train_seconds"] > 0
    samples = labkit.files.read_npz(outdir / "samples.npz")["images"]
    assert samples.ndim == 3 and samples.shape[1:] == (28, 28) and 0 <= samples.min() <= samples.max() <= 1
    encoder = keras.models.load_model(outdir / "encoder.keras")
    decoder = keras.models.load_model(outdir / "decoder.keras")
    mean, log_var = encoder.predict(np.zeros((2, 28, 28), "float32"), verbose=0)
    assert mean.shape == log_var.shape == (2, m["latent_dim"])
    assert decoder.predict(mean, verbose=0).shape == (2, 28, 28)
    pseudo = labkit.files.read_npz(outdir / "prior.npz")["pseudo_inputs"]
    assert pseudo.shape[1:] == (28, 28) and len(pseudo) == metrics["config"]["pseudo_inputs"]
