"""Synthetic market series: windows, the TimeGAN evaluation protocol, stylised facts, baselines, a GAN.

The pieces of notebook 08's first part, each defined once:

- data: :class:`MinMaxScaler`, :func:`sliding_windows`, :func:`daily_features` / :func:`decode_paths`
  (OHLCV <-> close return, overnight gap, upper and lower shadows, volume change);
- the TimeGAN protocol (Yoon et al. 2019): :func:`discriminative_score` (post-hoc GRU classifier,
  |accuracy - 0.5|) and :func:`predictive_score` (train on synthetic, MAE on real), both training
  many small GRUs *at once* (one batched graph) so repeats cost little on a CPU;
- :func:`strong_discriminative_score`: a convolutional classifier trained to convergence;
- :func:`stylized_facts` of daily log returns (Cont 2001) and :func:`hill_tail_index`;
- baselines: :func:`garch_paths` (GARCH(1,1)-t fitted with ``arch``) and :func:`block_bootstrap`;
- the generator: :class:`SequenceWGAN`, a convolutional WGAN-GP over daily features;
- :func:`protocol_sets`: all of the above for one series in one call; :func:`constant_predictive_score`
  is the floor that a predictor ignoring its inputs reaches.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from . import training
from .params import check_int

FEATURES = ("Open", "High", "Low", "Close", "Adj Close", "Volume")
DAILY = ("return", "gap", "upper", "lower", "volume_change")


# --- data --------------------------------------------------------------------------------

class MinMaxScaler:
    """Column-wise min-max scaling to [0, 1], as in the TimeGAN code (``fit`` / ``transform``)."""

    def fit(self, values):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or len(values) < 2:
            raise ValueError(f"values must be a 2-D array with at least 2 rows, got shape {values.shape}")
        self.min_, self.max_ = values.min(axis=0), values.max(axis=0)
        return self

    def transform(self, values):
        return (np.asarray(values, dtype=np.float64) - self.min_) / (self.max_ - self.min_ + 1e-7)

    def inverse_transform(self, scaled):
        return np.asarray(scaled, dtype=np.float64) * (self.max_ - self.min_ + 1e-7) + self.min_


def sliding_windows(values, length: int = 24, stride: int = 1):
    """All windows ``values[i:i+length]`` (i = 0, stride, ...): shape (n, length, features)."""
    values = np.asarray(values)
    if length < 2 or stride < 1:
        raise ValueError(f"length must be >= 2 and stride >= 1, got {length} and {stride}")
    if len(values) < length:
        raise ValueError(f"a series of {len(values)} rows has no window of length {length}")
    starts = np.arange(0, len(values) - length + 1, stride)
    return np.stack([values[s:s + length] for s in starts])


def daily_features(ohlcv):
    """OHLCV rows (..., T, 6) -> daily features (..., T-1, 5) relative to the previous day.

    return = log(C_t / C_{t-1}), gap = log(O_t / C_{t-1}), upper = log(H_t / max(O_t, C_t)),
    lower = log(min(O_t, C_t) / L_t), volume_change = log(V_t / V_{t-1}). Adj Close is ignored
    (it equals Close for an index).
    """
    x = np.asarray(ohlcv, dtype=np.float64)
    if x.shape[-1] != 6:
        raise ValueError(f"expected 6 columns {FEATURES}, got {x.shape[-1]}")
    o, h, low, c, v = x[..., 0], x[..., 1], x[..., 2], x[..., 3], x[..., 5]
    if (x[..., :4] <= 0).any() or (v <= 0).any():
        raise ValueError("prices and volumes must be positive")
    prev_c, prev_v = c[..., :-1], v[..., :-1]
    o, h, low, c, v = o[..., 1:], h[..., 1:], low[..., 1:], c[..., 1:], v[..., 1:]
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    return np.stack([np.log(c / prev_c), np.log(o / prev_c), np.log(np.maximum(h, top) / top),
                     np.log(bottom / np.minimum(low, bottom)), np.log(v / prev_v)], axis=-1)


def decode_paths(anchors, features):
    """Inverse of :func:`daily_features`: anchor rows (n, 6) + features (n, L, 5) -> (n, L+1, 6).

    Shadows are taken in absolute value, so High >= max(Open, Close) >= min(Open, Close) >= Low > 0
    holds for any generator output.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    f = np.asarray(features, dtype=np.float64)
    if anchors.ndim != 2 or f.ndim != 3 or len(anchors) != len(f) or f.shape[-1] != 5:
        raise ValueError(f"need anchors (n, 6) and features (n, L, 5), got {anchors.shape} and {f.shape}")
    close = anchors[:, 3:4] * np.exp(np.cumsum(f[..., 0], axis=1))
    prev_close = np.concatenate([anchors[:, 3:4], close[:, :-1]], axis=1)
    opening = prev_close * np.exp(f[..., 1])
    high = np.maximum(opening, close) * np.exp(np.abs(f[..., 2]))
    low = np.minimum(opening, close) * np.exp(-np.abs(f[..., 3]))
    volume = anchors[:, 5:6] * np.exp(np.cumsum(f[..., 4], axis=1))
    rows = np.stack([opening, high, low, close, close, volume], axis=-1)
    return np.concatenate([anchors[:, None, :], rows], axis=1)


# --- the TimeGAN protocol: batched GRUs -------------------------------------------------

def _gru_params(tf, n_models, n_in, units, n_out, seed):
    """Weights of ``n_models`` independent GRUs, each with its own Glorot-uniform draw (a repeat
    of the protocol is a fresh model, as in the TimeGAN code) and zero biases."""
    rng = np.random.default_rng([seed, n_models, n_in, units, n_out])

    def var(shape, name):
        limit = np.sqrt(6.0 / (shape[0] + shape[1]))
        return tf.Variable(rng.uniform(-limit, limit, (n_models,) + shape).astype(np.float32), name=name)

    return {"wx": var((n_in, 3 * units), "wx"), "wh": var((units, 3 * units), "wh"),
            "b": tf.Variable(tf.zeros((n_models, 1, 3 * units)), name="b"),
            "wo": var((units, n_out), "wo"), "bo": tf.Variable(tf.zeros((n_models, 1, n_out)), name="bo")}


def _gru_run(tf, p, x, return_sequences):
    """k independent GRUs at once: x (k, B, T, d) -> last state or all states through a dense head."""
    units = p["wh"].shape[1]
    h = tf.zeros((tf.shape(x)[0], tf.shape(x)[1], units))
    outputs = []
    for t in range(x.shape[2]):
        gx = tf.einsum("kbd,kdu->kbu", x[:, :, t], p["wx"]) + p["b"]
        gh = tf.einsum("kbu,kuv->kbv", h, p["wh"])
        z = tf.sigmoid(gx[..., :units] + gh[..., :units])
        r = tf.sigmoid(gx[..., units:2 * units] + gh[..., units:2 * units])
        cand = tf.tanh(gx[..., 2 * units:] + r * gh[..., 2 * units:])
        h = z * h + (1.0 - z) * cand
        if return_sequences:
            outputs.append(h)
    states = tf.stack(outputs, axis=2) if return_sequences else h
    eq = "kbtu,kuo->kbto" if return_sequences else "kbu,kuo->kbo"
    bias = p["bo"][:, :, None] if return_sequences else p["bo"]
    return tf.einsum(eq, states, p["wo"]) + bias


def _check_windows(name, windows, like=None):
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim != 3:
        raise ValueError(f"{name} must have shape (n, time, features), got {w.shape}")
    if like is not None and w.shape[1:] != like.shape[1:]:
        raise ValueError(f"{name} has windows of shape {w.shape[1:]}, the real ones {like.shape[1:]}")
    if not np.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return w


def discriminative_score(real, synthetic: dict, repeats: int = 3, iterations: int = 2000,
                         batch_size: int = 128, units: int | None = None, seed: int = 0,
                         progress_desc: str | None = "discriminative score") -> dict:
    """TimeGAN's discriminative score for each synthetic set: |accuracy - 0.5| of a post-hoc GRU.

    As in Yoon et al.'s code: a GRU with ``units`` = features // 2 (3 for OHLCV) and a linear head on
    its last state, trained with Adam for ``iterations`` steps on batches of ``batch_size`` real and
    ``batch_size`` synthetic windows from an 80 % split, scored on the other 20 %. All
    ``len(synthetic) * repeats`` classifiers train together in one batched graph (independent weights).
    Returns ``{name: (mean, sd, [scores])}``; 0 = indistinguishable, 0.5 = perfectly separated.
    """
    import tensorflow as tf

    real = _check_windows("real", real)
    names = list(synthetic)
    fakes = [_check_windows(f"synthetic[{n!r}]", synthetic[n], real) for n in names]
    if not names or repeats < 1 or iterations < 1:
        raise ValueError("need at least one synthetic set, repeats >= 1 and iterations >= 1")
    units = units or max(real.shape[-1] // 2, 1)
    rng = np.random.default_rng(seed)
    k = len(names) * repeats
    splits = []
    for m in range(k):
        fake = fakes[m // repeats]
        n = min(len(real), len(fake))
        ir, jf = rng.permutation(len(real))[:n], rng.permutation(len(fake))[:n]
        cut = int(0.8 * n)
        splits.append((real[ir[:cut]], fake[jf[:cut]], real[ir[cut:]], fake[jf[cut:]]))
    p = _gru_params(tf, k, real.shape[-1], units, 1, seed)
    opt = tf.keras.optimizers.Adam()
    variables = list(p.values())

    @tf.function
    def step(xr, xf):
        x = tf.concat([xr, xf], axis=1)
        y = tf.concat([tf.ones_like(xr[..., :1, :1]), tf.zeros_like(xf[..., :1, :1])], axis=1)[..., 0]
        with tf.GradientTape() as tape:
            logits = _gru_run(tf, p, x, False)
            loss = tf.reduce_sum(tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), axis=[1, 2]))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    from .progress import progress
    loop = range(iterations) if progress_desc is None else progress(range(iterations), desc=progress_desc)
    for _ in loop:
        xr = np.stack([s[0][rng.integers(0, len(s[0]), batch_size)] for s in splits])
        xf = np.stack([s[1][rng.integers(0, len(s[1]), batch_size)] for s in splits])
        step(tf.constant(xr), tf.constant(xf))
    scores = []
    for m, (_, _, tr, tf_) in enumerate(splits):
        pm = {key: v[m:m + 1] for key, v in p.items()}
        logit_r = _gru_run(tf, pm, tf.constant(tr[None]), False).numpy().ravel()
        logit_f = _gru_run(tf, pm, tf.constant(tf_[None]), False).numpy().ravel()
        acc = (np.sum(logit_r > 0) + np.sum(logit_f <= 0)) / (len(tr) + len(tf_))
        scores.append(abs(float(acc) - 0.5))
    return {n: _summary(scores[i * repeats:(i + 1) * repeats]) for i, n in enumerate(names)}


def predictive_score(real, train_sets: dict, repeats: int = 3, iterations: int = 5000,
                     batch_size: int = 128, units: int | None = None, seed: int = 0,
                     progress_desc: str | None = "predictive score") -> dict:
    """TimeGAN's predictive score: train a GRU on each set, report its MAE on the real windows.

    The GRU reads the first ``features - 1`` columns of steps 1..T-1 and predicts the last column
    (here Volume) one step ahead, trained with an absolute-error loss as in Yoon et al. Put the real
    windows themselves in ``train_sets`` for the train-on-real row. Returns ``{name: (mean, sd, [maes])}``.
    """
    import tensorflow as tf

    real = _check_windows("real", real)
    names = list(train_sets)
    sets = [_check_windows(f"train_sets[{n!r}]", train_sets[n], real) for n in names]
    if not names or repeats < 1 or iterations < 1:
        raise ValueError("need at least one training set, repeats >= 1 and iterations >= 1")
    d = real.shape[-1]
    units = units or max(d // 2, 1)
    rng = np.random.default_rng(seed)
    k = len(names) * repeats
    p = _gru_params(tf, k, d - 1, units, 1, seed)
    opt = tf.keras.optimizers.Adam()
    variables = list(p.values())

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            pred = tf.sigmoid(_gru_run(tf, p, x[:, :, :-1, :-1], True))
            loss = tf.reduce_sum(tf.reduce_mean(tf.abs(pred - x[:, :, 1:, -1:]), axis=[1, 2, 3]))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    from .progress import progress
    loop = range(iterations) if progress_desc is None else progress(range(iterations), desc=progress_desc)
    for _ in loop:
        batch = np.stack([sets[m // repeats][rng.integers(0, len(sets[m // repeats]), batch_size)]
                          for m in range(k)])
        step(tf.constant(batch))
    maes = []
    for m in range(k):
        pm = {key: v[m:m + 1] for key, v in p.items()}
        pred = tf.sigmoid(_gru_run(tf, pm, tf.constant(real[None, :, :-1, :-1]), True)).numpy()[0]
        maes.append(float(np.mean(np.abs(pred - real[:, 1:, -1:]))))
    return {n: _summary(maes[i * repeats:(i + 1) * repeats]) for i, n in enumerate(names)}


def constant_predictive_score(real) -> float:
    """The predictive score of a guess that ignores its inputs: the MAE of the best constant,
    the median of the next-step last column. A predictor is only as good as its margin below this."""
    target = _check_windows("real", real)[:, 1:, -1]
    return float(np.mean(np.abs(target - np.median(target))))


def _summary(values):
    values = [float(v) for v in values]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, values


# --- a strong post-hoc classifier -------------------------------------------------------

def strong_features(windows, scaler: MinMaxScaler):
    """What the strong classifier sees: the scaled levels plus standardised daily log features.

    An adversary may use domain knowledge; daily returns and shadows are what differ between models,
    and they are tiny in min-max units of a 20-year price range.
    """
    w = np.asarray(windows, dtype=np.float64)
    raw = np.maximum(scaler.inverse_transform(w.reshape(-1, w.shape[-1])).reshape(w.shape), 1e-3)
    daily = daily_features(raw)
    daily = np.clip(daily / np.array([0.012, 0.008, 0.005, 0.006, 0.2]), -10, 10)
    return np.concatenate([w[:, 1:], daily], axis=-1).astype(np.float32)


def strong_discriminative_score(real, synthetic: dict, scaler: MinMaxScaler, repeats: int = 2,
                                max_epochs: int = 40, patience: int = 4, seed: int = 0,
                                progress_desc: str | None = "strong classifier") -> dict:
    """|accuracy - 0.5| of a convolutional classifier trained to convergence (early stopping).

    Per repeat: 80/20 split into train and test; 20 % of the training part is a validation set for
    early stopping (best weights restored). Returns ``{name: (mean, sd, [scores])}``.
    """
    import keras

    real = _check_windows("real", real)
    fr = strong_features(real, scaler)
    rng = np.random.default_rng(seed)
    out = {}
    from .progress import progress
    jobs = [(n, r) for n in synthetic for r in range(repeats)]
    loop = jobs if progress_desc is None else progress(jobs, desc=progress_desc)
    scores = {n: [] for n in synthetic}
    for name, r in loop:
        ff = strong_features(_check_windows(f"synthetic[{name!r}]", synthetic[name], real), scaler)
        n = min(len(fr), len(ff))
        x = np.concatenate([fr[rng.permutation(len(fr))[:n]], ff[rng.permutation(len(ff))[:n]]])
        y = np.concatenate([np.ones(n), np.zeros(n)]).astype(np.float32)
        order = rng.permutation(2 * n)
        x, y = x[order], y[order]
        cut, val = int(0.8 * 2 * n), int(0.64 * 2 * n)
        keras.utils.set_random_seed(seed + 1000 * r + len(scores[name]))
        inp = keras.Input(x.shape[1:])
        h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(inp)
        h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
        h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(h),
                                        keras.layers.GlobalMaxPooling1D()(h)])
        h = keras.layers.Dense(32, activation="relu")(h)
        model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
        model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy", metrics=["accuracy"])
        model.fit(x[:val], y[:val], validation_data=(x[val:cut], y[val:cut]), epochs=max_epochs,
                  batch_size=128, verbose=0, callbacks=[keras.callbacks.EarlyStopping(
                      patience=patience, restore_best_weights=True)])
        acc = float(np.mean((model.predict(x[cut:], verbose=0).ravel() > 0.5) == y[cut:]))
        scores[name].append(abs(acc - 0.5))
    for name in synthetic:
        out[name] = _summary(scores[name])
    return out


# --- stylised facts -------------------------------------------------------------------

def autocorrelation(x, max_lag: int):
    """Sample autocorrelation at lags 1..max_lag (the usual biased estimator, as statsmodels' acf)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) <= max_lag:
        raise ValueError(f"need a 1-D series longer than max_lag={max_lag}, got shape {x.shape}")
    x = x - x.mean()
    denom = np.dot(x, x)
    return np.array([np.dot(x[:-k], x[k:]) / denom for k in range(1, max_lag + 1)])


def hill_tail_index(x, tail_fraction: float = 0.05):
    """Hill estimator of the tail index alpha of |x| from its largest ``tail_fraction`` values."""
    a = np.sort(np.abs(np.asarray(x, dtype=np.float64)))[::-1]
    k = int(tail_fraction * len(a))
    if k < 2 or not 0 < tail_fraction < 1:
        raise ValueError(f"tail_fraction={tail_fraction} leaves {k} tail values; need at least 2")
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def leverage(r, max_lag: int = 10):
    """corr(r_t, |r_{t+k}|^2) for k = 1..max_lag (negative: falls raise later volatility)."""
    r = np.asarray(r, dtype=np.float64)
    return np.array([np.corrcoef(r[:-k], r[k:] ** 2)[0, 1] for k in range(1, max_lag + 1)])


def stylized_facts(r, max_lag: int = 100) -> dict:
    """Cont's (2001) stylised facts of daily log returns ``r``, as one dict of numbers.

    excess_kurtosis (heavy tails: > 0), hill_alpha (tail index, 2-5 for stocks), acf_r_lag1 (no linear
    autocorrelation: ~ 0), acf_abs_lag1 and acf_abs_mean_1_100 (volatility clustering: > 0),
    acf_abs_decay (power-law exponent beta of ACF|r|(k) ~ k^-beta over lags 1..100; ~0.2-0.4 for
    stocks), leverage_1_10 (mean corr(r_t, r_{t+k}^2), k = 1..10: < 0), skewness (gain/loss
    asymmetry: < 0).
    """
    from scipy import stats

    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 1 or len(r) < 4 * max_lag or not np.isfinite(r).all():
        raise ValueError(f"need a finite 1-D return series of at least {4 * max_lag} values")
    acf_abs = autocorrelation(np.abs(r), max_lag)
    lags = np.arange(1, max_lag + 1)
    positive = acf_abs > 1e-3
    decay = (float(-np.polyfit(np.log(lags[positive]), np.log(acf_abs[positive]), 1)[0])
             if positive.sum() >= 5 else float("nan"))
    return {"excess_kurtosis": float(stats.kurtosis(r)), "hill_alpha": hill_tail_index(r),
            "acf_r_lag1": float(autocorrelation(r, 1)[0]), "acf_abs_lag1": float(acf_abs[0]),
            "acf_abs_mean_1_100": float(acf_abs.mean()), "acf_abs_decay": decay,
            "leverage_1_10": float(leverage(r).mean()), "skewness": float(stats.skew(r))}


# --- baselines -------------------------------------------------------------------------

def fit_garch(returns, dist: str = "t"):
    """Fit a constant-mean GARCH(1,1) with Student-t errors to daily log returns (in percent inside)."""
    from arch import arch_model

    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or len(r) < 100:
        raise ValueError("need at least 100 daily returns to fit a GARCH model")
    return arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist=dist).fit(disp="off")


def garch_returns(result, n: int, seed: int = 0, burn: int = 500):
    """Simulate ``n`` daily log returns from a fitted GARCH(1,1)-t result (back from percent)."""
    from arch.univariate import GARCH, ConstantMean, StudentsT

    if set(result.params.index) != {"mu", "omega", "alpha[1]", "beta[1]", "nu"}:
        raise ValueError("expected a constant-mean GARCH(1,1) with Student-t errors (see fit_garch)")
    model = ConstantMean(None, volatility=GARCH(1, 0, 1),
                         distribution=StudentsT(seed=np.random.default_rng(seed)))
    data = model.simulate(result.params.to_numpy(), n, burn=burn)
    return data["data"].to_numpy() / 100.0


def garch_paths(result, daily_real, anchors, length: int, seed: int = 0):
    """GARCH baseline windows: a simulated close path, real intraday shadows/gaps and volume changes.

    Each window gets its own stretch of one long simulation (so volatility clusters inside it); gap,
    shadows and volume change are copied from randomly chosen real days, independent of the returns.
    """
    rng = np.random.default_rng(seed)
    n = len(anchors)
    steps = length - 1
    r = garch_returns(result, n * steps, seed=seed).reshape(n, steps)
    daily_real = np.asarray(daily_real)
    pick = rng.integers(0, len(daily_real), size=(n, steps))
    feats = daily_real[pick].copy()
    feats[..., 0] = r
    return decode_paths(anchors, feats)


def block_bootstrap(daily_real, n: int, steps: int, block: int = 5, seed: int = 0):
    """Moving-block bootstrap of real daily feature vectors: (n, steps, 5), blocks of ``block`` days."""
    daily_real = np.asarray(daily_real)
    if not 1 <= block <= len(daily_real):
        raise ValueError(f"block must be in 1..{len(daily_real)}, got {block}")
    rng = np.random.default_rng(seed)
    n_blocks = -(-steps // block)
    starts = rng.integers(0, len(daily_real) - block + 1, size=(n, n_blocks))
    idx = (starts[..., None] + np.arange(block)).reshape(n, -1)[:, :steps]
    return daily_real[idx]


# --- the generator -------------------------------------------------------------------

class SequenceWGAN(training.Model):
    """A convolutional WGAN-GP that generates sequences of standardised daily features.

    Generator: per-step noise plus one per-sequence noise vector (a volatility "regime") broadcast
    over time, through 1-D convolutions, to ``channels`` features per day. Critic: 1-D convolutions,
    a dense score. Gradient penalty as in Gulrajani et al. (2017).

    One training step (:meth:`train_step`) is ``n_critic`` critic updates and one generator update.
    Its randomness comes from ``(seed, step)``: the real windows of each critic update and every
    noise vector from :meth:`draw_batch`, the penalty's mixing weights from ``random_seed``. So
    :meth:`fit` (the :func:`labkit.training.fit` contract) resumes a checkpointed run exactly, and a
    re-run restores the trained model with its loss history and training seconds.
    """

    def __init__(self, steps: int, channels: int = 5, noise_dim: int = 8, global_dim: int = 8,
                 width: int = 64, seed: int = 0, n_critic: int = 3, gp_weight: float = 10.0,
                 learning_rate: float = 2e-4):
        super().__init__(name="sequence_wgan")
        self.steps, self.channels, self.noise_dim, self.global_dim = steps, channels, noise_dim, global_dim
        self.width, self.seed = width, seed
        self.n_critic = check_int("n_critic", n_critic, minimum=1, maximum=100)
        self.gp_weight, self.learning_rate = float(gp_weight), float(learning_rate)
        keras.utils.set_random_seed(seed)
        zs = keras.Input((steps, noise_dim))
        zg = keras.Input((global_dim,))
        g = keras.layers.Dense(width, activation="relu")(zg)
        g = keras.layers.RepeatVector(steps)(g)
        h = keras.layers.Concatenate()([keras.layers.Dense(width)(zs), g])
        for dilation in (1, 2, 4):
            h = keras.layers.Conv1D(width, 3, padding="same", dilation_rate=dilation)(h)
            h = keras.layers.LeakyReLU(0.2)(h)
        self.generator = keras.Model([zs, zg], keras.layers.Conv1D(channels, 1)(h), name="generator")
        x = keras.Input((steps, channels))
        c = keras.layers.Conv1D(width, 3, padding="same")(x)
        c = keras.layers.LeakyReLU(0.2)(c)
        c = keras.layers.Conv1D(width, 3, padding="same", dilation_rate=2)(c)
        c = keras.layers.LeakyReLU(0.2)(c)
        c = keras.layers.Conv1D(width, 3, padding="same", dilation_rate=4)(c)
        c = keras.layers.LeakyReLU(0.2)(c)
        pooled = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(c),
                                             keras.layers.Flatten()(c)])
        self.critic = keras.Model(x, keras.layers.Dense(1)(pooled), name="critic")
        self.g_optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=0.5, beta_2=0.9)
        self.c_optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=0.5, beta_2=0.9)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)
        self.history = {"critic_loss": [], "generator_loss": []}
        self.train_seconds = 0.0

    def get_config(self):
        return {"steps": self.steps, "channels": self.channels, "noise_dim": self.noise_dim,
                "global_dim": self.global_dim, "width": self.width, "seed": self.seed,
                "n_critic": self.n_critic, "gp_weight": self.gp_weight, "learning_rate": self.learning_rate}

    def noise(self, n: int, rng):
        """Per-step noise (n, steps, noise_dim) and per-sequence noise (n, global_dim) from ``rng``."""
        return (rng.standard_normal((n, self.steps, self.noise_dim), dtype=np.float32),
                rng.standard_normal((n, self.global_dim), dtype=np.float32))

    def draw_batch(self, data, rng, batch_size: int) -> tuple:
        """One training step's batch, from its ``rng``: the ``n_critic`` real batches and the critic's
        and the generator's noise (the penalty's mixing weights come from ``random_seed``)."""
        k, b = self.n_critic, batch_size
        real = data[rng.integers(0, len(data), (k, b))]
        zs, zg = self.noise(k * b, rng)
        gs, gg = self.noise(b, rng)
        return real, zs.reshape(k, b, self.steps, self.noise_dim), zg.reshape(k, b, self.global_dim), gs, gg

    def train_step(self, batch):
        """``n_critic`` WGAN-GP critic updates, then one generator update."""
        from .gan import wgan_gp_critic_loss

        real, zs, zg, gs, gg = batch
        for i in range(self.n_critic):
            fake = self.generator([zs[i], zg[i]], training=True)
            with tf.GradientTape() as tape:
                loss, wdist = wgan_gp_critic_loss(self.critic, real[i], fake, self.gp_weight,
                                                  seed=self.random_seed(i))
            grads = tape.gradient(loss, self.critic.trainable_variables)
            self.c_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(self.critic(self.generator([gs, gg], training=True), training=True))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return {"critic_loss": -wdist, "generator_loss": g_loss}

    def fit(self, data, iterations: int, batch_size: int = 128, checkpoint_dir=None,
            checkpoint_every: int = 200, progress_desc: str | None = "WGAN-GP"):
        """Train on ``data`` (n, steps, channels) for ``iterations`` steps (:func:`labkit.training.fit`).

        Sets ``history`` (critic and generator loss per step) and ``train_seconds`` (time in training
        steps, the original one when a finished run is restored); returns the model.
        """
        data = np.asarray(data, dtype=np.float32)
        if data.shape[1:] != (self.steps, self.channels):
            raise ValueError(f"data must have shape (n, {self.steps}, {self.channels}), got {data.shape}")
        history = training.fit(self, data, iterations, batch_size=batch_size, seed=self.seed,
                               checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                               params=self.get_config(), desc=progress_desc or "",
                               show_progress=progress_desc is not None)
        self.history = {k: list(history.get(k, [])) for k in ("critic_loss", "generator_loss")}
        self.train_seconds = float(history["seconds"])
        self._sampling = None
        return self

    def sample(self, n: int, seed: int | None = None):
        """``n`` generated sequences (n, steps, channels) in the standardised units.

        Calls without ``seed`` continue one stream that restarts at ``(seed, "sample")`` after every
        ``fit``, so a re-run that restores the trained model samples the same windows.
        """
        rng = self._sample_rng() if seed is None else np.random.default_rng(seed)
        zs, zg = self.noise(n, rng)
        return self.generator.predict([zs, zg], verbose=0, batch_size=1024)

    def _sample_rng(self):
        if getattr(self, "_sampling", None) is None:
            self._sampling = np.random.default_rng([self.seed, 2 ** 31])
        return self._sampling


def protocol_sets(raw, gan_iterations: int, length: int = 24, n_critic: int = 3, block: int = 5,
                  seed: int = 0, checkpoint_dir=None, progress_desc: str | None = "WGAN-GP") -> dict:
    """Notebook 08's market recipe for one OHLCV series (T, 6), in one call.

    Min-max scale, cut windows of ``length`` days, draw one real anchor day per window, and build
    the three generators' windows from the daily features: GARCH(1,1)-t, a block bootstrap, and a
    :class:`SequenceWGAN` trained for ``gan_iterations`` steps. Returns the scaled windows
    ``{"real", "gan", "garch", "bootstrap"}`` (each (n, length, 6)), the ``"scaler"`` and
    ``"train_seconds"``: the GARCH fit's and the WGAN-GP's training time (the WGAN-GP's original one
    when a re-run restores it).
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != len(FEATURES) or not np.isfinite(raw).all() or (raw <= 0).any():
        raise ValueError(f"raw must be a (T, 6) array of positive {FEATURES}, got shape {raw.shape}")
    scaler = MinMaxScaler().fit(raw)
    real = sliding_windows(scaler.transform(raw), length).astype(np.float32)
    raw_windows = sliding_windows(raw, length)
    daily = daily_features(raw)
    rng = np.random.default_rng(seed)
    n, steps = len(real), length - 1
    anchors = raw_windows[rng.integers(0, n, n), 0]

    def scaled(paths):
        return scaler.transform(paths.reshape(-1, raw.shape[1])).reshape(paths.shape).astype(np.float32)

    began = time.perf_counter()
    garch = garch_paths(fit_garch(daily[:, 0]), daily, anchors, length, seed=seed)
    garch_seconds = time.perf_counter() - began
    boot = decode_paths(anchors, block_bootstrap(daily, n, steps, block, seed=seed))
    mean, sd = daily.mean(axis=0), daily.std(axis=0)
    wgan = SequenceWGAN(steps, channels=daily.shape[1], seed=seed, n_critic=n_critic)
    wgan.fit((daily_features(raw_windows) - mean) / sd, iterations=gan_iterations,
             checkpoint_dir=checkpoint_dir, progress_desc=progress_desc)
    gan = decode_paths(anchors, wgan.sample(n) * sd + mean)
    return {"real": real, "gan": scaled(gan), "garch": scaled(garch), "bootstrap": scaled(boot),
            "scaler": scaler, "train_seconds": garch_seconds + wgan.train_seconds}
