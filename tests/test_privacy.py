"""labkit.privacy: membership-inference AUC and its interval, the accountant wrapper.

The distances behind the attacks are tested in tests/test_nearest.py; DP-SGD is notebook 09's own
code and is tested from its cells in tests/test_nb09_privacy.py."""
import math

import numpy as np
import pytest

from labkit import privacy
from labkit.params import ParameterError


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
