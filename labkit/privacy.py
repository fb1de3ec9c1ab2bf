"""Privacy of synthetic data, measured: distances, membership inference, DP-SGD and its accounting.

Distances to the closest record (DCR), the DCR ratio, NNDR and near-copy shares live in
:mod:`labkit.nearest` (one distance for images, tables and the attacks here).

Membership inference (Shokri et al. 2017; for generators: Hayes et al. 2019, Chen et al. 2020)::

    scores = distance_attack_scores(candidates, synthetic)      # -distance to the closest synthetic
    attack = membership_auc(scores[members], scores[non_members])   # ROC AUC with a DeLong interval

Differential privacy (Abadi et al. 2016): :func:`per_example_gradients`, :func:`clip_per_example`
and :func:`noisy_mean` are DP-SGD's three steps; :class:`DPSGD` is a :class:`labkit.training.Model`
whose ``train_step`` is one DP-SGD update on a Poisson-subsampled batch, its noise keyed by
``(seed, step)``, and :func:`fit` trains it (exact resume, history kept). Privacy accounting is
done by Google's ``dp_accounting`` library (:func:`epsilon`, :func:`noise_for_epsilon`), never by a
home-made bound.

The generator under attack in notebook 09 is the small conditional VAE of :mod:`labkit.vae`
(:func:`~labkit.vae.build_cvae`, :func:`~labkit.vae.cvae_losses`); its labelled samples feed a
train-on-synthetic test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from . import training
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


def loss_attack_scores(per_example_loss, arrays, draws: int = 8, noise_dim: int = 0, seed: int = 0,
                       batch_size: int = 500) -> np.ndarray:
    """A white-box attack (Yeom et al. 2018): score = -(the model's loss on the candidate).

    Models fit their training examples better than new ones. ``per_example_loss(*arrays[, noise])``
    returns one loss per example; with ``noise_dim`` the loss is averaged over ``draws`` standard-
    normal draws of that size (a VAE's negative ELBO), else computed once.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    rounds = check_int("draws", draws, minimum=1) if noise_dim else 1
    for _ in range(rounds):
        for start in range(0, n, batch_size):
            part = [a[start:start + batch_size] for a in arrays]
            part += _draw(rng, len(part[0]), noise_dim)
            total[start:start + batch_size] += np.asarray(per_example_loss(*part), dtype=np.float64)
    return -total / rounds


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


# --- DP-SGD in TensorFlow ------------------------------------------------------------------------


def per_example_gradients(loss_fn, variables, batch):
    """Gradients of each example's loss, one tensor (N, *shape) per variable.

    ``loss_fn(*tensors)`` returns one loss per example for a batch; ``batch`` is a tuple of tensors
    sharing their first axis. The loop over examples is vectorised (``tf.vectorized_map``).
    """
    import tensorflow as tf

    def one(example):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(*[t[None] for t in example]))
        return tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return tf.vectorized_map(one, tuple(batch))


def clip_per_example(grads, clip_norm):
    """Scale each example's gradient (all variables together) to L2 norm at most ``clip_norm``.

    Returns the clipped gradients and the norms before clipping, shape (N,).
    """
    import tensorflow as tf

    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in grads]
    norms = tf.sqrt(tf.add_n(squares))
    factor = tf.minimum(1.0, clip_norm / tf.maximum(norms, 1e-12))
    clipped = [g * tf.reshape(factor, [-1] + [1] * (len(g.shape) - 1)) for g in grads]
    return clipped, norms


def noisy_mean(clipped, clip_norm, noise_multiplier, denominator, noise):
    """Sum the clipped gradients, add N(0, (noise_multiplier * clip_norm)²) to every coordinate and
    divide by ``denominator`` (the *expected* batch size under Poisson sampling, so the batch size
    itself reveals nothing). ``noise`` is a ``tf.random.Generator``."""
    import tensorflow as tf

    return [(tf.reduce_sum(g, axis=0) + noise.normal(tf.shape(g)[1:]) * (noise_multiplier * clip_norm))
            / denominator for g in clipped]


def dp_gradients(loss_fn, variables, batch, clip_norm, noise_multiplier, denominator, noise):
    """DP-SGD's gradient: per-example gradients, clipped, summed, noised, divided. Returns
    (gradients, per-example norms before clipping)."""
    grads = per_example_gradients(loss_fn, variables, batch)
    clipped, norms = clip_per_example(grads, clip_norm)
    return noisy_mean(clipped, clip_norm, noise_multiplier, denominator, noise), norms


def _draw(rng, n, noise_dim):
    return [rng.standard_normal((n, noise_dim), dtype=np.float32)] if noise_dim else []


@dataclass
class PrivacySpec:
    """DP-SGD settings: ``noise_multiplier`` None trains without clipping or noise."""

    clip_norm: float = 1.0
    noise_multiplier: float | None = None
    delta: float = 1e-5


class SeededNoise:
    """Gaussian noise for :func:`noisy_mean` from stateless seeds: ``seed_fn(salt)`` gives the seed
    of the ``salt``-th draw (one per variable, in a fixed order). With a training model's
    ``random_seed`` the noise of step k is the same whenever step k is computed, so a resumed run
    adds the noise the uninterrupted run added."""

    def __init__(self, seed_fn, first_salt: int = 1000):
        self.seed_fn, self.salt = seed_fn, first_salt

    def normal(self, shape):
        import tensorflow as tf

        self.salt += 1
        return tf.random.stateless_normal(shape, seed=self.seed_fn(self.salt))


class DPSGD(training.Model):
    """DP-SGD (Abadi et al. 2016) as a model whose :meth:`train_step` is one update.

    ``loss_fn(*batch)`` returns one loss per example; the trained weights are the trainable
    variables of ``models`` (the Keras models ``loss_fn`` uses, e.g. a VAE's encoder and decoder).
    Without ``privacy`` (or with ``noise_multiplier=None``) the step is plain minibatch Adam; with it,
    the gradient is :func:`dp_gradients`: per-example gradients clipped to ``clip_norm``, summed, plus
    Gaussian noise N(0, (noise_multiplier * clip_norm)²) keyed by ``(seed, step)``, divided by the
    *expected* batch size. :meth:`draw_batch` samples each example with probability q = batch_size / n
    when private (Poisson sampling, what the accountant assumes), shuffled epochs otherwise, and
    appends ``noise_dim`` standard-normal numbers per example when asked (a VAE's draw).
    """

    def __init__(self, loss_fn, models, n: int, batch_size: int, learning_rate: float = 1e-3,
                 privacy: PrivacySpec | None = None, noise_dim: int = 0, seed: int = 0):
        super().__init__(name="dp_sgd")
        self.loss_fn, self.parts = loss_fn, list(models)
        self.n = check_int("n", n, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1, maximum=self.n)
        self.learning_rate = check_float("learning_rate", learning_rate, minimum=0.0)
        self.privacy, self.noise_dim, self.seed = privacy, int(noise_dim), int(seed)
        self.private = privacy is not None and privacy.noise_multiplier is not None
        self.sample_rate = self.batch_size / self.n
        self.dp_optimizer = keras.optimizers.Adam(self.learning_rate)
        self.dp_optimizer.build(self.trained_variables)

    @property
    def trained_variables(self):
        return [v for m in self.parts for v in m.trainable_variables]

    def get_config(self):
        spec = None if self.privacy is None else vars(self.privacy)
        return {"n": self.n, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "privacy": spec, "noise_dim": self.noise_dim, "seed": self.seed}

    def draw_batch(self, data, rng, batch_size: int) -> tuple:
        """One step's examples (and their noise vectors), from the step's ``rng``."""
        if self.private:
            index = np.flatnonzero(rng.random(self.n) < self.sample_rate)
            if len(index) == 0:                     # an empty Poisson batch: only noise (rare)
                index = rng.integers(0, self.n, 1)
        else:
            step = int(self.step.numpy())
            epoch, within = divmod(step * self.batch_size, self.n)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            index = order[within:within + self.batch_size]
        return tuple(a[index] for a in data) + tuple(_draw(rng, len(index), self.noise_dim))

    def train_step(self, batch):
        """One (DP-)SGD update; returns the mean loss and the mean per-example (private) or the
        batch (plain) gradient norm."""
        import tensorflow as tf

        variables = self.trained_variables
        if self.private:
            grads, norms = dp_gradients(self.loss_fn, variables, batch, float(self.privacy.clip_norm),
                                        float(self.privacy.noise_multiplier), float(self.batch_size),
                                        SeededNoise(self.random_seed))
            loss, norm = tf.reduce_mean(self.loss_fn(*batch)), tf.reduce_mean(norms)
        else:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.loss_fn(*batch))
            grads = tape.gradient(loss, variables)
            norm = tf.linalg.global_norm(grads)
        self.dp_optimizer.apply_gradients(zip(grads, variables))
        return {"loss": loss, "grad_norm": norm}


def fit(loss_fn, models, arrays, steps: int, batch_size: int, learning_rate: float = 1e-3,
        privacy: PrivacySpec | None = None, noise_dim: int = 0, seed: int = 0, checkpoint_dir=None,
        progress_desc: str | None = "training", checkpoint_every: int = 200) -> dict:
    """Train the Keras ``models`` on ``loss_fn`` (one loss per example) with Adam, privately or not.

    A :class:`DPSGD` model trained by :func:`labkit.training.fit`: batches, VAE noise and DP noise
    depend on (seed, step) only, so a run resumed from ``checkpoint_dir`` continues exactly as it
    would have, and a finished run is restored with its history. Returns the history: ``loss`` and
    ``grad_norm`` per step, ``seconds`` (time in training steps), ``sample_rate`` q, ``steps`` and
    (if private) ε from the RDP accountant with its ``delta``.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("all training arrays must have the same length")
    steps = check_int("steps", steps, minimum=0)
    model = DPSGD(loss_fn, models, n, batch_size, learning_rate, privacy, noise_dim, seed)
    history = training.fit(model, arrays, steps, batch_size=model.batch_size, seed=seed,
                           checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                           params=model.get_config(), desc=progress_desc or "",
                           show_progress=progress_desc is not None)
    history["sample_rate"] = model.sample_rate
    if model.private:
        history["epsilon"] = epsilon(privacy.noise_multiplier, model.sample_rate, steps, privacy.delta)
        history["delta"] = privacy.delta
    return history
