"""Privacy of synthetic data, measured: the membership attack's AUC with its interval, and DP accounting.

Distances to the closest record (DCR), the DCR ratio, NNDR and near-copy shares live in
:mod:`labkit.nearest` (one distance for images, tables and the attacks here).

Membership inference (Shokri et al. 2017; for generators: Hayes et al. 2019, Chen et al. 2020)::

    scores = distance_attack_scores(candidates, synthetic)      # -distance to the closest synthetic
    attack = membership_auc(scores[members], scores[non_members])   # ROC AUC with a DeLong interval

:func:`distance_attack_scores` is the black-box attack of every :mod:`labkit.quality` report;
notebook 09 writes it, and the white-box (loss) attack, in its own cells.

Differential privacy (Abadi et al. 2016): DP-SGD itself (per-example gradients, per-example
clipping, Gaussian noise, Poisson sampling) is written in notebook 09 as a training step. Its
accounting is done here by Google's ``dp_accounting`` library (:func:`epsilon`,
:func:`noise_for_epsilon`), never by a home-made bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .nearest import distance_to_closest_record
from .params import ParameterError, check_float, check_int

# --- membership inference ----------------------------------------------------------------------


def distance_attack_scores(candidates, synthetic) -> np.ndarray:
    """A black-box attack on a released synthetic set: score = -(distance to the closest synthetic row).

    A generator that memorised its training data places samples near its members, so members
    get higher scores than non-members. Needs only the synthetic data, not the model. Rows of any
    shape (flattened); the distance is :func:`labkit.nearest.distance_to_closest_record`.
    """
    return -distance_to_closest_record(candidates, synthetic)


def _check_scores(scores, name):
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(s) < 2:
        raise ValueError(f"{name} needs at least 2 scores, got {len(s)}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return s


def _psi(members, non_members):
    """Mann-Whitney kernel: 1 if member > non-member, 1/2 on ties, 0 otherwise (m x n)."""
    return (members[:, None] > non_members[None, :]) + 0.5 * (members[:, None] == non_members[None, :])


def auc(member_scores, non_member_scores) -> float:
    """ROC AUC of "member" against "non-member" scores: P(member scores higher), ties counted 1/2."""
    m = _check_scores(member_scores, "member_scores")
    n = _check_scores(non_member_scores, "non_member_scores")
    return float(_psi(m, n).mean())


@dataclass
class AttackResult:
    """An attack's ROC AUC with a confidence interval (``level``) and the sample sizes behind it."""

    auc: float
    low: float
    high: float
    level: float
    method: str
    members: int
    non_members: int

    def __str__(self):
        return (f"AUC {self.auc:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.level:.0%} {self.method}, "
                f"{self.members} members vs {self.non_members} non-members)")

    def as_dict(self):
        return {"auc": self.auc, "low": self.low, "high": self.high, "level": self.level,
                "method": self.method, "members": self.members, "non_members": self.non_members}


def membership_auc(member_scores, non_member_scores, level: float = 0.95, method: str = "delong",
                   bootstrap: int = 1000, seed: int = 0) -> AttackResult:
    """ROC AUC of a membership-inference attack with a confidence interval.

    ``method="delong"``: the variance of the Mann-Whitney AUC from its structural components
    (DeLong et al. 1988), normal interval clipped to [0, 1]. ``method="bootstrap"``: percentile
    interval over ``bootstrap`` resamples of members and non-members (each resampled on its own).
    An interval containing 0.5 means the attack is not distinguishable from guessing.
    """
    from scipy.stats import norm

    m = _check_scores(member_scores, "member_scores")
    n = _check_scores(non_member_scores, "non_member_scores")
    level = check_float("level", level, 0.5, 0.999)
    psi = _psi(m, n)
    value = float(psi.mean())
    if method == "delong":
        v10, v01 = psi.mean(1), psi.mean(0)
        se = math.sqrt(v10.var(ddof=1) / len(m) + v01.var(ddof=1) / len(n))
        z = norm.ppf(0.5 + level / 2)
        low, high = max(0.0, value - z * se), min(1.0, value + z * se)
    elif method == "bootstrap":
        rng = np.random.default_rng(seed)
        draws = [psi[rng.integers(0, len(m), len(m))][:, rng.integers(0, len(n), len(n))].mean()
                 for _ in range(check_int("bootstrap", bootstrap, minimum=10))]
        low, high = (float(v) for v in np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2]))
    else:
        raise ParameterError("method", method, "'delong' or 'bootstrap'")
    return AttackResult(value, float(low), float(high), level, method, len(m), len(n))


def roc_curve_points(member_scores, non_member_scores):
    """(false-positive rate, true-positive rate) of the attack at every threshold, for a plot."""
    m = _check_scores(member_scores, "member_scores")
    n = _check_scores(non_member_scores, "non_member_scores")
    thresholds = np.unique(np.concatenate([m, n]))[::-1]
    tpr = np.concatenate([[0.0], [(m >= t).mean() for t in thresholds]])
    fpr = np.concatenate([[0.0], [(n >= t).mean() for t in thresholds]])
    return fpr, tpr


# --- privacy accounting (dp_accounting) ---------------------------------------------------------


def dp_sgd_event(noise_multiplier: float, sample_rate: float, steps: int):
    """The DpEvent of DP-SGD: ``steps`` compositions of a Poisson-subsampled Gaussian mechanism."""
    import dp_accounting

    noise_multiplier = check_float("noise_multiplier", noise_multiplier, minimum=0.0)
    sample_rate = check_float("sample_rate", sample_rate, 0.0, 1.0)
    steps = check_int("steps", steps, minimum=0)
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    return dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(sample_rate, gaussian), steps)


def _accountant(kind: str):
    from dp_accounting import pld, rdp

    if kind == "rdp":
        return rdp.RdpAccountant()
    if kind == "pld":
        return pld.PLDAccountant()
    raise ParameterError("accountant", kind, "'rdp' (Renyi DP) or 'pld' (privacy loss distributions)")


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
            accountant: str = "rdp") -> float:
    """ε of DP-SGD at ``delta``, from dp_accounting's RDP (default) or PLD accountant.

    Noise multiplier 0 (no noise) gives ε = ∞.
    """
    check_float("delta", delta, 0.0, 1.0)
    event = dp_sgd_event(noise_multiplier, sample_rate, steps)
    if noise_multiplier == 0 and sample_rate > 0 and steps > 0:
        return math.inf
    acc = _accountant(accountant)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def noise_for_epsilon(target_epsilon: float, sample_rate: float, steps: int, delta: float,
                      accountant: str = "rdp") -> float:
    """The smallest noise multiplier whose DP-SGD run meets (target_epsilon, delta); dp_accounting's
    ``calibrate_dp_mechanism`` searches it (within 1e-4)."""
    import dp_accounting

    target_epsilon = check_float("target_epsilon", target_epsilon, minimum=1e-6)
    check_float("delta", delta, 0.0, 1.0)
    dp_sgd_event(1.0, sample_rate, steps)                  # validates the other arguments
    return float(dp_accounting.calibrate_dp_mechanism(
        lambda: _accountant(accountant), lambda sigma: dp_sgd_event(sigma, sample_rate, steps),
        target_epsilon, delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(0.05, 1.0), tol=1e-4))
