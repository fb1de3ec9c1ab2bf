"""Notebook 05 (variational autoencoders): ELBO pieces against independent references, IWAE,
checkpoint/resume, exercises, and the smoke run's recorded metrics and saved models."""
import math

import numpy as np
import pytest
from scipy import stats

import labkit
from labkit import vae as V
from labkit.exercises import nb05

KEYS = ["test_elbo_nats", "test_iwae_nats", "iwae_k", "test_recon_nats", "test_kl_nats", "fid_vae",
        "coverage_vae", "beta_curve", "train_seconds", "latent_dim"]


# --- the closed-form KL ------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_kl_matches_monte_carlo(seed):
    rng = np.random.default_rng(seed)
    d = 5
    mean = rng.normal(0, 1, size=d)
    log_var = rng.normal(0, 0.7, size=d)
    sd = np.exp(0.5 * log_var)
    z = mean + sd * rng.standard_normal((400_000, d))
    # independent reference: SciPy's normal log-densities, averaged over draws from q
    monte_carlo = np.mean(np.sum(stats.norm.logpdf(z, mean, sd) - stats.norm.logpdf(z), axis=1))
    closed = float(V.kl_standard_normal(mean[None].astype("float32"), log_var[None].astype("float32"))[0])
    assert closed == pytest.approx(monte_carlo, rel=0.02)


def test_kl_is_zero_exactly_at_the_prior_and_positive_elsewhere():
    zeros = np.zeros((1, 8), dtype="float32")
    assert float(V.kl_standard_normal(zeros, zeros)[0]) == 0.0
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(100, 8)).astype("float32")
    log_var = rng.normal(size=(100, 8)).astype("float32")
    assert np.all(V.kl_standard_normal(mean, log_var).numpy() > 0)


def test_log_densities_match_scipy():
    rng = np.random.default_rng(4)
    x = (rng.random((3, 28, 28, 1)) < 0.3).astype("float32")
    logits = rng.normal(0, 2, size=x.shape).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype("float64")))
    want = stats.bernoulli.logpmf(x, p).reshape(3, -1).sum(axis=1)
    assert V.bernoulli_log_likelihood(x, logits).numpy() == pytest.approx(want, rel=1e-5)
    z, mean = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    log_var = rng.normal(size=(4, 3))
    want = [stats.multivariate_normal(mean[i], np.diag(np.exp(log_var[i]))).logpdf(z[i]) for i in range(4)]
    assert V.gaussian_log_density(z, mean, log_var).numpy() == pytest.approx(want, rel=1e-9)


# --- a tiny model whose ELBO we can compute by hand ---------------------------------------

def _known_model(m=0.5, log_var=-1.0, seed=0):
    """Encoder: constant q(z|x) = N(m, exp(log_var)); decoder: constant logits b (ignores z)."""
    encoder = V.build_encoder(latent_dim=1, hidden=())
    decoder = V.build_decoder(latent_dim=1, hidden=())
    encoder.get_layer("mean").set_weights([np.zeros((784, 1)), np.array([m])])
    encoder.get_layer("log_var").set_weights([np.zeros((784, 1)), np.array([log_var])])
    b = np.random.default_rng(seed).normal(0, 1.5, size=784)
    decoder.get_layer("logits").set_weights([np.zeros((1, 784)), b])
    return encoder, decoder, b


def test_elbo_of_a_known_tiny_model_matches_a_hand_computation():
    m, log_var = 0.5, -1.0
    encoder, decoder, b = _known_model(m, log_var)
    x = V.binarize(np.full((4, 28, 28), 0.3), seed=1)
    p = 1 / (1 + np.exp(-b))
    flat = x.reshape(4, -1)
    recon = (flat * np.log(p) + (1 - flat) * np.log(1 - p)).sum(axis=1)
    kl = 0.5 * (m**2 + math.exp(log_var) - 1 - log_var)
    terms = V.evaluate_elbo(encoder, decoder, x, num_samples=3)
    assert terms["kl"] == pytest.approx(np.full(4, kl), rel=1e-5)
    assert terms["recon"] == pytest.approx(recon, rel=1e-5)
    assert terms["elbo"] == pytest.approx(recon - kl, rel=1e-5)
    # the training loss of the Keras model is the same -ELBO (beta = 1)
    model = V.VAE(encoder, decoder, beta=1.0)
    loss, _, _ = model.losses_of(V.as_images(x))
    assert float(loss) == pytest.approx(float(np.mean(kl - recon)), rel=1e-5)
    # with a constant decoder, every importance weight is p(x) * p(z)/q(z): IWAE -> log p(x) exactly
    assert V.iwae_bound(encoder, decoder, x, k=20000, chunk=5000).mean() == pytest.approx(recon.mean(), abs=0.05)


def test_iwae_with_k_1_equals_the_elbo_in_expectation():
    labkit.seed_everything(0)
    encoder, decoder = V.build_encoder(4, (32,)), V.build_decoder(4, (32,))
    x = V.binarize(labkit.data.load_digits().x[::500])            # 10 digits
    # with k = 1 the bound is the single log weight log p(x|z) + log p(z) - log q(z|x) ...
    for s in range(3):
        one = V.iwae_bound(encoder, decoder, x, k=1, seed=s)
        assert one == pytest.approx(V.log_weights(encoder, decoder, x, k=1, seed=s)[0], abs=1e-4)
    # ... whose expectation over z ~ q is the ELBO (closed-form KL, Monte-Carlo reconstruction)
    lw = V.log_weights(encoder, decoder, x, k=2000, seed=7)
    elbo = V.evaluate_elbo(encoder, decoder, x, num_samples=100, seed=99)["elbo"]
    standard_error = lw.std(axis=0) * math.sqrt(1 / len(lw) + 1 / 100)  # both are estimates
    assert np.all(np.abs(lw.mean(axis=0) - elbo) < 4 * standard_error + 1e-3)
    # and averaging weights (not log weights) over k draws gives a higher bound
    assert np.all(V.log_mean_exp(lw, axis=0) > lw.mean(axis=0))


@pytest.fixture(scope="module")
def trained_vae():
    labkit.seed_everything(0)
    digits = labkit.data.load_digits()
    order = np.random.default_rng(0).permutation(len(digits.x))
    vae = V.make_vae(latent_dim=8, hidden=(128, 64), seed=0)
    V.fit(vae, digits.x[order[:1500]], epochs=4, batch_size=100)
    return vae, V.binarize(digits.x[order[4000:4100]])


def test_iwae_is_tighter_than_the_elbo_on_a_trained_model(trained_vae):
    vae, x_test = trained_vae
    elbo = V.evaluate_elbo(vae.encoder, vae.decoder, x_test, num_samples=20)["elbo"].mean()
    iwae_10 = V.iwae_bound(vae.encoder, vae.decoder, x_test, k=10).mean()
    iwae_200 = V.iwae_bound(vae.encoder, vae.decoder, x_test, k=200).mean()
    assert elbo < iwae_10 < iwae_200 < 0


def test_refined_posterior_tightens_the_bounds_and_stays_a_bound(trained_vae):
    vae, x_test = trained_vae
    enc, dec = vae.encoder, vae.decoder
    # zero steps: exactly the encoder's q(z|x)
    mean0, log_var0 = V.refine_posterior(enc, dec, x_test, steps=0)
    mean, log_var = enc(V.as_images(x_test), training=False)
    np.testing.assert_allclose(mean0, mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(log_var0, log_var.numpy(), atol=1e-6)
    # refining each image's q raises its ELBO (fresh draws, averaged) ...
    post = V.refine_posterior(enc, dec, x_test, steps=60, seed=1)
    amortised = V.evaluate_elbo(enc, dec, x_test, num_samples=20, seed=2)["elbo"]
    refined = V.evaluate_elbo(enc, dec, x_test, num_samples=20, seed=2, posterior=post)["elbo"]
    assert refined.mean() > amortised.mean() + 0.5
    assert np.mean(refined > amortised) > 0.8
    # ... and the IWAE bound with the refined proposal is still below a k=5000 estimate of log p(x)
    iwae_refined = V.iwae_bound(enc, dec, x_test[:10], k=100, posterior=tuple(p[:10] for p in post))
    reference = V.iwae_bound(enc, dec, x_test[:10], k=5000, seed=3)
    assert iwae_refined.mean() < reference.mean() + 0.5
    with pytest.raises(ValueError, match="one row per image"):
        V.evaluate_elbo(enc, dec, x_test, posterior=(mean0[:5], log_var0[:5]))


# --- the VampPrior ------------------------------------------------------------------------

def _vamp_prior(k=5, latent_dim=3, seed=0):
    labkit.seed_everything(seed)
    encoder = V.build_encoder(latent_dim, (16,))
    pseudo = np.random.default_rng(seed).random((k, 28, 28, 1)).astype("float32")
    return V.VampPrior(encoder, pseudo), encoder


def test_vamp_prior_log_prob_is_the_mixture_density():
    prior, encoder = _vamp_prior()
    means, log_vars = (a.numpy().astype("float64") for a in encoder(prior.pseudo_inputs))
    z = np.random.default_rng(1).normal(size=(7, 3)).astype("float32")
    # independent reference: SciPy's normal densities, averaged over the 5 components
    dens = np.mean([stats.multivariate_normal(means[j], np.diag(np.exp(log_vars[j]))).pdf(z)
                    for j in range(5)], axis=0)
    assert prior.log_prob(z).numpy() == pytest.approx(np.log(dens), rel=1e-5)
    assert prior.frozen().log_prob(z).numpy() == pytest.approx(np.log(dens), rel=1e-5)
    assert V.log_prior(z, None).numpy() == pytest.approx(stats.multivariate_normal(np.zeros(3)).logpdf(z))
    # samples: the mixture's mean and variance (law of total variance)
    draws = prior.sample(200_000, seed=2)
    assert draws.mean(axis=0) == pytest.approx(means.mean(axis=0), abs=0.02)
    total_var = np.exp(log_vars).mean(axis=0) + means.var(axis=0)
    assert draws.var(axis=0) == pytest.approx(total_var, rel=0.03)


def test_kl_term_against_closed_forms():
    m, log_var = 0.5, -1.0
    encoder, decoder, _ = _known_model(m, log_var)          # q(z|x) = N(m, e^log_var) for every x
    prior = V.VampPrior(encoder, np.zeros((3, 28, 28, 1), "float32"))   # so p(z) = N(m, e^log_var) too
    z = np.random.default_rng(0).normal(size=(10, 1)).astype("float32")
    full = np.full((10, 1), m, "float32"), np.full((10, 1), log_var, "float32")
    assert V.kl_term(*full, z, prior).numpy() == pytest.approx(np.zeros(10), abs=1e-5)   # KL(p || p) = 0
    assert V.kl_term(*full, z).numpy() == pytest.approx(V.kl_standard_normal(*full).numpy())
    # a posterior N(mu, s^2) against that prior: Monte Carlo KL vs the Gaussian closed form
    x = V.binarize(np.full((4, 28, 28), 0.3), seed=1)
    mu, lv = np.array([[1.2], [0.0], [-0.7], [0.5]], "float32"), np.array([[0.3], [-2.0], [-0.5], [-1.0]], "float32")
    terms = V.evaluate_elbo(encoder, decoder, x, num_samples=20000, posterior=(mu, lv), prior=prior)
    want = 0.5 * (log_var - lv + (np.exp(lv) + (mu - m) ** 2) / math.exp(log_var) - 1)[:, 0]
    assert terms["kl"] == pytest.approx(want, abs=0.05)            # Monte-Carlo error ~0.02
    # a constant decoder makes every IWAE weight p(x) p(z) / q(z): the bound is log p(x) exactly
    recon = V.evaluate_elbo(encoder, decoder, x)["recon"]
    assert V.iwae_bound(encoder, decoder, x, k=5000, prior=prior).mean() == pytest.approx(recon.mean(), abs=0.05)


def test_vamp_vae_trains_its_pseudo_inputs():
    labkit.seed_everything(0)
    x = labkit.data.load_digits().x[::10]                          # 500 digits
    vae = V.make_vae(latent_dim=4, hidden=(32,), pseudo_inputs=x[:6])
    start = vae.pseudo_inputs().copy()
    assert start.shape == (6, 28, 28) and start.min() >= 0.0199 and start.max() <= 0.9801
    history = V.fit(vae, x, epochs=2, batch_size=100)
    assert np.isfinite(history["loss"]).all() and history["kl"][-1] > 0
    assert not np.allclose(vae.pseudo_inputs(), start)             # learned with the rest
    assert V.sample_prior(vae.decoder, 5, seed=1, prior=vae.prior).shape == (5, 28, 28)
    with pytest.raises(ValueError, match="6 pseudo-inputs"):
        vae.set_pseudo_inputs(x[:3])


def test_kl_warmup_ramps_the_kl_weight():
    labkit.seed_everything(0)
    x = labkit.data.load_digits().x[::20]                          # 250 digits
    vae = V.make_vae(latent_dim=4, hidden=(16,), beta=2.0)
    assert float(vae.kl_weight) == 2.0
    history = V.fit(vae, x, epochs=5, batch_size=50, kl_warmup=4, show_progress=False)
    weights = [0.0, 0.5, 1.0, 1.5, 2.0]                             # beta * min(1, epoch / 4)
    assert float(vae.kl_weight) == 2.0
    # an epoch's loss is the mean over its batches of weight * KL + reconstruction cost
    first = V.fit(V.make_vae(latent_dim=4, hidden=(16,), beta=2.0), x, epochs=1, batch_size=50,
                  kl_warmup=4, show_progress=False)
    assert first["loss"][0] == pytest.approx(first["recon"][0], rel=1e-4)   # weight 0: recon alone
    assert history["loss"][0] == pytest.approx(history["recon"][0], rel=1e-4)
    assert history["loss"][4] == pytest.approx(history["recon"][4] + weights[4] * history["kl"][4], rel=1e-3)
    assert history["loss"][1] < history["recon"][1] + 1.0 * history["kl"][1]
    with pytest.raises(labkit.ParameterError, match="kl_warmup"):
        V.fit(vae, x, epochs=1, kl_warmup=-1)


def test_log_mean_exp_is_stable():
    a = np.array([[-800.0, -1000.0], [-801.0, -1000.0]])
    want = [-800 + math.log((1 + math.exp(-1)) / 2), -1000.0]
    assert V.log_mean_exp(a, axis=0) == pytest.approx(want)


# --- data, sampling, helpers ----------------------------------------------------------

def test_binarize_is_a_fixed_bernoulli_draw():
    grey = np.random.default_rng(0).random((200, 28, 28)).astype("float32")
    a, b = V.binarize(grey, seed=5), V.binarize(grey, seed=5)
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0.0, 1.0}
    assert not np.array_equal(a, V.binarize(grey, seed=6))
    assert a.mean() == pytest.approx(grey.mean(), abs=0.005)
    assert np.all(V.binarize(np.ones((2, 28, 28))) == 1) and np.all(V.binarize(np.zeros((2, 28, 28))) == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.binarize(np.full((2, 28, 28), 255.0))


def test_bad_input_raises_clear_errors():
    with pytest.raises(labkit.ParameterError, match="latent_dim"):
        V.build_encoder(latent_dim=0)
    with pytest.raises(labkit.ParameterError, match="beta"):
        V.make_vae(latent_dim=2, hidden=(8,), beta=-1.0)
    with pytest.raises(ValueError, match="28, 28"):
        V.as_images(np.zeros((3, 32, 32)))
    encoder, decoder = V.build_encoder(3, (8,)), V.build_decoder(3, (8,))
    with pytest.raises(labkit.ParameterError, match="'k'"):
        V.iwae_bound(encoder, decoder, np.zeros((2, 28, 28)), k=0)
    with pytest.raises(ValueError, match="2-D latent"):
        V.manifold_grid(decoder)


def test_decoding_helpers_shapes_and_ranges():
    labkit.seed_everything(0)
    encoder, decoder = V.build_encoder(2, (16,)), V.build_decoder(2, (16,))
    samples = V.sample_prior(decoder, 7, seed=1)
    assert samples.shape == (7, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    assert np.array_equal(samples, V.sample_prior(decoder, 7, seed=1))
    assert V.manifold_grid(decoder, n=4).shape == (16, 28, 28)
    line = V.interpolate(decoder, [0, 0], [1, 1], steps=5)
    assert line.shape == (5, 28, 28)
    assert np.allclose(line[0], V.decode(decoder, [[0, 0]])[0])
    assert V.encode_mean(encoder, np.zeros((3, 28, 28))).shape == (3, 2)


def test_training_resumes_exactly_and_a_rerun_restores_the_history(tmp_path):
    x = labkit.data.load_digits().x[::25]                         # 200 digits
    val = V.binarize(labkit.data.load_digits().x[1::50])

    def run(folder, epochs):
        labkit.seed_everything(0)                                 # the same initial weights each time
        vae = V.make_vae(4, (16,), seed=0, jit_compile=False)
        return vae, V.fit(vae, x, epochs=epochs, batch_size=50, validation_data=val, checkpoint_dir=folder,
                          checkpoint_every=2, kl_warmup=2, show_progress=False)

    whole_vae, whole = run(tmp_path / "whole", 4)
    run(tmp_path / "parts", 2)                                    # interrupted after 2 epochs
    resumed_vae, resumed = run(tmp_path / "parts", 4)
    for key in ("loss", "recon", "kl", "val_loss", "val_kl"):
        assert whole[key] == resumed[key] and len(whole[key]) == 4, key
    for a, b in zip(whole_vae.get_weights(), resumed_vae.get_weights()):
        np.testing.assert_array_equal(a, b)
    again_vae, again = run(tmp_path / "whole", 4)                 # a finished run: restored, not retrained
    assert again == whole and again["seconds"] > 0
    with pytest.raises(labkit.ParameterError, match="checkpoint_every"):
        V.fit(V.make_vae(4, (16,)), x, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=0)
    assert whole["loss"][-1] < whole["loss"][0]


# --- exercises -----------------------------------------------------------------------------

# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook


def test_exercise_wrong_answers_teach():
    ex = labkit.exercises.load("05")
    assert ex.q1.reference == pytest.approx(0.818147, abs=1e-5)
    assert "1/2" in ex.q1.check(2 * ex.q1.reference).message
    naive = lambda log_w: np.log(np.mean(np.exp(log_w), axis=0))  # noqa: E731
    with np.errstate(divide="ignore"):
        result = ex.q2.check(naive)
    assert result.status == "incorrect" and "subtract" in result.message
    assert "ELBO" in ex.q2.check(lambda log_w: log_w.mean(axis=0)).message
    assert ex.q3.check({"beta_to_zero": "b", "beta_large": "a"}).status == "incorrect"
    assert ex.q3.check({"beta_to_zero": "c", "beta_large": "b"}).status == "incorrect"
    assert nb05.BETA_ANSWER == ex.q3.reference


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
    assert m["test_elbo_nats"] == pytest.approx(m["test_recon_nats"] - m["test_kl_nats"], abs=1e-6)
    assert m["test_iwae_nats"] > m["test_elbo_nats"]
    assert m["fid_vae"] >= 0 and 0 <= m["coverage_vae"] <= 1
    assert all(len(row) == 3 and row[1] >= 0 and row[2] < 0 for row in m["beta_curve"])
    assert m["train_seconds"] > 0
    samples = labkit.files.read_npz(outdir / "samples.npz")["images"]
    assert samples.ndim == 3 and samples.shape[1:] == (28, 28) and 0 <= samples.min() <= samples.max() <= 1
    encoder = keras.models.load_model(outdir / "encoder.keras")
    decoder = keras.models.load_model(outdir / "decoder.keras")
    mean, log_var = encoder.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0)
    assert mean.shape == log_var.shape == (2, m["latent_dim"])
    assert decoder.predict(mean, verbose=0).shape == (2, 28, 28, 1)
