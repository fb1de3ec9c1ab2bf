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
- :func:`constant_predictive_score`: the floor that a predictor ignoring its inputs reaches.

The generator (a convolutional WGAN-GP over daily features) and its training step are built in
notebook 08 itself.
"""
from __future__ import annotations

import numpy as np

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
