"""labkit.privacy: membership-inference AUC and its interval, DP-SGD, the accountant wrapper.

The distances behind the attacks are tested in tests/test_nearest.py."""
import math

import numpy as np
import pytest

from labkit import privacy, vae
from labkit.params import ParameterError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


# --- membership inference --------------------------------------------------------------------

def test_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    m, n = rng.integers(0, 5, 60).astype(float), rng.integers(0, 4, 80).astype(float)
    want = roc_auc_score(np.r_[np.ones(60), np.zeros(80)], np.r_[m, n])
    assert privacy.auc(m, n) == pytest.approx(want)
    assert privacy.membership_auc(m, n).auc == pytest.approx(want)


def test_delong_interval_agrees_with_bootstrap():
    rng = np.random.default_rng(3)
    m, n = rng.normal(0.5, 1, 300), rng.normal(0, 1, 250)
    delong = privacy.membership_auc(m, n, method="delong")
    boot = privacy.membership_auc(m, n, method="bootstrap", bootstrap=2000, seed=1)
    assert delong.low < delong.auc < delong.high
    assert (delong.high - delong.low) == pytest.approx(boot.high - boot.low, rel=0.15)
    assert delong.low == pytest.approx(boot.low, abs=0.02)
    with pytest.raises(ParameterError, match="method"):
        privacy.membership_auc(m, n, method="magic")


def test_distance_attack_is_chance_on_one_distribution_and_certain_on_copies():
    rng = np.random.default_rng(4)
    train, holdout = rng.normal(size=(300, 10)), rng.normal(size=(300, 10))
    fresh = rng.normal(size=(2000, 10))                          # a "generator" that samples the source
    scores = privacy.distance_attack_scores(np.r_[train, holdout], fresh)
    chance = privacy.membership_auc(scores[:300], scores[300:])
    assert abs(chance.auc - 0.5) < 0.06 and chance.low < 0.5 < chance.high
    scores = privacy.distance_attack_scores(np.r_[train, holdout], train.copy())   # "synthetic" = copy
    copied = privacy.membership_auc(scores[:300], scores[300:])
    assert copied.auc == 1.0 and copied.low > 0.95


def test_roc_curve_points_reach_the_corners():
    fpr, tpr = privacy.roc_curve_points([3, 2, 1], [2, 0])
    assert (fpr[0], tpr[0]) == (0, 0) and (fpr[-1], tpr[-1]) == (1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(privacy.auc([3, 2, 1], [2, 0]))


def test_loss_attack_scores_average_draws():
    loss = lambda x, eps: x[:, 0] + eps[:, 0]                   # noqa: E731
    x = np.arange(6, dtype="float32")[:, None]
    one = privacy.loss_attack_scores(loss, (x,), draws=4000, noise_dim=1, seed=0, batch_size=4)
    np.testing.assert_allclose(one, -x[:, 0], atol=0.1)


# --- the accountant wrapper ------------------------------------------------------------------

def _gaussian_delta(eps, sigma):
    """Exact δ(ε) of one Gaussian mechanism with sensitivity 1 (Balle & Wang 2018, Theorem 8)."""
    from scipy.stats import norm

    return norm.cdf(-eps * sigma + 1 / (2 * sigma)) - math.exp(eps) * norm.cdf(-eps * sigma - 1 / (2 * sigma))


def test_accountant_matches_the_analytic_gaussian_mechanism():
    from scipy.optimize import brentq

    sigma, delta = 2.0, 1e-5
    exact = brentq(lambda e: _gaussian_delta(e, sigma) - delta, 1e-6, 50)   # about 2.0 for σ = 2
    pld = privacy.epsilon(sigma, 1.0, 1, delta, accountant="pld")
    rdp = privacy.epsilon(sigma, 1.0, 1, delta, accountant="rdp")
    assert pld == pytest.approx(exact, rel=0.01)
    assert rdp >= exact - 1e-6 and rdp < 1.5 * exact              # RDP: a valid, somewhat loose bound
    # T full-batch steps of σ compose to one Gaussian with σ / sqrt(T)
    exact_t = brentq(lambda e: _gaussian_delta(e, sigma / 2) - delta, 1e-6, 50)
    assert privacy.epsilon(sigma, 1.0, 4, delta, accountant="pld") == pytest.approx(exact_t, rel=0.01)


def test_accountant_against_dp_accounting_directly_and_monotone():
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.1)), 6000))
    assert privacy.epsilon(1.1, 0.01, 6000, 1e-5) == pytest.approx(acc.get_epsilon(1e-5))
    eps = [privacy.epsilon(s, 0.01, 1000, 1e-5) for s in (0.8, 1.0, 1.5, 3.0)]
    assert all(a > b for a, b in zip(eps, eps[1:]))             # more noise, less ε
    assert privacy.epsilon(1.0, 0.01, 2000, 1e-5) > privacy.epsilon(1.0, 0.01, 1000, 1e-5)
    assert privacy.epsilon(1.0, 0.02, 1000, 1e-5) > privacy.epsilon(1.0, 0.01, 1000, 1e-5)
    assert privacy.epsilon(0.0, 0.01, 10, 1e-5) == math.inf
    # Poisson subsampling amplifies privacy: far less than the same steps on the full data
    assert privacy.epsilon(1.0, 0.01, 100, 1e-5) < 0.2 * privacy.epsilon(1.0, 1.0, 100, 1e-5)


def test_noise_for_epsilon_round_trip():
    for target in (0.5, 2.0, 8.0):
        sigma = privacy.noise_for_epsilon(target, 0.05, 200, 1e-5)
        assert privacy.epsilon(sigma, 0.05, 200, 1e-5) == pytest.approx(target, rel=1e-3)
        assert privacy.epsilon(sigma * 0.97, 0.05, 200, 1e-5) > target      # the smallest such σ
    with pytest.raises(ParameterError, match="accountant"):
        privacy.epsilon(1.0, 0.1, 10, 1e-5, accountant="moments")
    with pytest.raises(ParameterError, match="sample_rate"):
        privacy.epsilon(1.0, 1.5, 10, 1e-5)


# --- DP-SGD ----------------------------------------------------------------------------------

@pytest.fixture()
def tiny_regression():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (3 * rng.normal(size=(16, 1))).astype("float32")
    loss_fn = lambda xb, yb: tf.reduce_sum(tf.square(model(xb) - yb), axis=1)   # noqa: E731
    return model, loss_fn, x, y


def test_per_example_gradients_match_one_at_a_time(tiny_regression):
    model, loss_fn, x, y = tiny_regression
    grads = privacy.per_example_gradients(loss_fn, model.trainable_variables, (x, y))
    for i in (0, 7, 15):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(x[i:i + 1], y[i:i + 1]))
        for g_all, g_one in zip(grads, tape.gradient(loss, model.trainable_variables)):
            np.testing.assert_allclose(g_all[i].numpy(), g_one.numpy(), rtol=1e-4, atol=1e-5)


def test_clipping_bounds_every_examples_gradient_norm(tiny_regression):
    model, loss_fn, x, y = tiny_regression
    grads = privacy.per_example_gradients(loss_fn, model.trainable_variables, (x, y))
    for clip in (0.1, 1.0, 5.0):
        clipped, norms = privacy.clip_per_example(grads, clip)
        after = np.sqrt(sum(np.sum(g.numpy().reshape(16, -1) ** 2, axis=1) for g in clipped))
        assert (after <= clip * (1 + 1e-5)).all()
        small = norms.numpy() <= clip                           # short gradients are left alone
        np.testing.assert_allclose(after[small], norms.numpy()[small], rtol=1e-5)
        np.testing.assert_allclose(after[~small], clip, rtol=1e-5)
        assert (~small).any()


def test_no_noise_and_huge_clip_equals_plain_sgd(tiny_regression):
    model, loss_fn, x, y = tiny_regression
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(loss_fn(x, y))
    plain = tape.gradient(loss, variables)
    noise = tf.random.Generator.from_seed(0)
    dp, _ = privacy.dp_gradients(loss_fn, variables, (x, y), 1e9, 0.0, float(len(x)), noise)
    for a, b in zip(dp, plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    # and one SGD step with each lands on the same weights
    start = [v.numpy().copy() for v in variables]
    keras.optimizers.SGD(0.1).apply_gradients(zip(dp, variables))
    after_dp = [v.numpy().copy() for v in variables]
    for v, s in zip(variables, start):
        v.assign(s)
    keras.optimizers.SGD(0.1).apply_gradients(zip(plain, variables))
    for a, v in zip(after_dp, variables):
        np.testing.assert_allclose(a, v.numpy(), rtol=1e-5, atol=1e-7)


def test_noise_has_the_calibrated_scale():
    clipped = [tf.zeros((5, 200, 50))]
    noise = tf.random.Generator.from_seed(1)
    out = privacy.noisy_mean(clipped, 2.0, 1.5, 10.0, noise)[0].numpy()
    assert out.std() * 10.0 == pytest.approx(1.5 * 2.0, rel=0.03)
    assert abs(out.mean()) < 0.01


def test_fit_private_and_plain(tmp_path, tiny_regression):
    """Exact resume is tested in tests/test_training_ports.py; here the history and a re-run."""
    model, loss_fn, x, y = tiny_regression
    spec = privacy.PrivacySpec(clip_norm=1.0, noise_multiplier=1.0, delta=1e-5)
    history = privacy.fit(loss_fn, [model], (x, y), 6, 4, privacy=spec,
                          checkpoint_dir=tmp_path / "ck", progress_desc=None)
    assert len(history["loss"]) == 6 and history["sample_rate"] == 0.25 and history["steps"] == 6
    assert history["epsilon"] == pytest.approx(privacy.epsilon(1.0, 0.25, 6, 1e-5))
    weights = model.get_weights()
    again = privacy.fit(loss_fn, [model], (x, y), 6, 4, privacy=spec,
                        checkpoint_dir=tmp_path / "ck", progress_desc=None)
    assert again["loss"] == history["loss"] and again["seconds"] == history["seconds"]   # restored, not retrained
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    before = np.mean(np.asarray(loss_fn(x, y)))
    plain = privacy.fit(loss_fn, [model], (x, y), 60, 4, learning_rate=1e-2, progress_desc=None)
    assert "epsilon" not in plain and np.mean(np.asarray(loss_fn(x, y))) < before
    with pytest.raises(ValueError, match="same length"):
        privacy.fit(loss_fn, [model], (x, y[:3]), 1, 2)


def test_cvae_losses_and_samples():
    encoder, decoder = vae.build_cvae(latent_dim=2, hidden=16)
    rng = np.random.default_rng(0)
    x = rng.random((5, 28, 28, 1)).astype("float32")
    y = np.eye(10, dtype="float32")[[0, 1, 2, 3, 4]]
    losses = vae.cvae_losses(encoder, decoder, x, y, np.zeros((5, 2), "float32"))
    assert losses.shape == (5,) and np.all(np.asarray(losses) > 0)
    images = vae.cvae_sample(decoder, [0, 1, 9], seed=0)
    assert images.shape == (3, 28, 28) and images.min() >= 0 and images.max() <= 1
