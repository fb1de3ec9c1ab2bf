"""Synthetic tables: CTGAN's ideas in TensorFlow, two baselines, and SDMetrics-style evaluation.

- :class:`ModeNormalizer` and :class:`TableTransformer`: mode-specific normalisation of numeric
  columns (a Bayesian Gaussian mixture per column; value -> (mode one-hot, scalar in its mode)),
  one-hot categorical columns, missing values as their own category, bounds and integer types;
- :class:`ConditionalTabularGAN`: a WGAN-GP generator/critic with a conditional vector and
  training-by-sampling (Xu et al. 2019), able to sample rows of a chosen category;
- baselines: :func:`independent_marginals` and :class:`GaussianCopula`.

Their evaluation (column shapes, pair trends, utility, distance to closest record, exact copies)
is in :mod:`labkit.table_metrics`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from . import training
from .params import check_int

MISSING = "(missing)"


@dataclass
class TableSpec:
    """Which columns are numeric (``integer`` ones are rounded) and which categorical."""

    numeric: list
    categorical: list
    integer: list = field(default_factory=list)

    def __post_init__(self):
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ValueError(f"columns both numeric and categorical: {sorted(both)}")
        if not set(self.integer) <= set(self.numeric):
            raise ValueError(f"integer columns must be numeric: {sorted(set(self.integer) - set(self.numeric))}")

    @property
    def columns(self):
        return list(self.numeric) + list(self.categorical)

    def check(self, frame: pd.DataFrame, name: str = "frame"):
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}")
        for c in self.numeric:
            if not pd.api.types.is_numeric_dtype(frame[c]):
                raise ValueError(f"{name}[{c!r}] must be numeric, got {frame[c].dtype}")
        return frame[self.columns]


def categories(series: pd.Series) -> pd.Series:
    """A column as category strings, missing values as the category ``(missing)``."""
    return series.astype(object).where(series.notna(), MISSING).astype(str)


# --- mode-specific normalisation ------------------------------------------------------

class ModeNormalizer:
    """CTGAN's mode-specific normalisation of one numeric column.

    A Bayesian Gaussian mixture (up to ``max_modes`` components, those with weight >= ``min_weight``
    kept) models the column; a value c becomes its mode k (most probable component) and
    alpha = (c - mu_k) / (4 sigma_k). ``inverse_transform`` gives back c = 4 sigma_k alpha + mu_k.
    """

    def __init__(self, max_modes: int = 10, min_weight: float = 0.005, seed: int = 0):
        self.max_modes, self.min_weight, self.seed = max_modes, min_weight, seed

    def fit(self, values):
        from sklearn.mixture import BayesianGaussianMixture

        x = np.asarray(values, dtype=np.float64).ravel()
        if len(x) < 2 or not np.isfinite(x).all():
            raise ValueError("ModeNormalizer needs at least 2 finite values (fill missing ones first)")
        rng = np.random.default_rng(self.seed)
        fit_on = x if len(x) <= 4000 else rng.choice(x, 4000, replace=False)
        n_modes = int(min(self.max_modes, len(np.unique(fit_on))))
        if n_modes < 2:
            self.means_, self.stds_ = np.array([x.mean()]), np.array([max(x.std(), 1e-3)])
            return self
        gm = BayesianGaussianMixture(n_components=n_modes, weight_concentration_prior_type="dirichlet_process",
                                     weight_concentration_prior=1e-3, max_iter=100, n_init=1,
                                     random_state=self.seed).fit(fit_on[:, None])
        keep = gm.weights_ >= self.min_weight
        self.means_ = gm.means_.ravel()[keep]
        self.stds_ = np.maximum(np.sqrt(gm.covariances_.ravel()[keep]), 1e-6 * (np.ptp(x) + 1e-12))
        self.weights_ = gm.weights_[keep] / gm.weights_[keep].sum()
        return self

    @property
    def n_modes(self):
        return len(self.means_)

    def _log_density(self, x):
        z = (x[:, None] - self.means_) / self.stds_
        w = getattr(self, "weights_", np.ones(self.n_modes))
        return np.log(w) - np.log(self.stds_) - 0.5 * z ** 2

    def transform(self, values):
        """values -> (alpha, mode); alpha is not clipped, so the round trip is exact."""
        x = np.asarray(values, dtype=np.float64).ravel()
        mode = self._log_density(x).argmax(axis=1)
        return (x - self.means_[mode]) / (4 * self.stds_[mode]), mode

    def inverse_transform(self, alpha, mode):
        mode = np.asarray(mode, dtype=int)
        return np.asarray(alpha, dtype=np.float64) * 4 * self.stds_[mode] + self.means_[mode]


class TableTransformer:
    """A table <-> a matrix of spans: numeric column = [alpha | mode one-hot | missing one-hot],
    categorical column = one-hot (missing is the category ``(missing)``).

    ``spans`` lists ``(column, kind, width)`` with kind "alpha" (tanh output) or "softmax".
    Decoding clips numbers to the training range and rounds integer columns, so generated rows
    respect bounds (no negative amounts) and categories always exist.
    """

    def __init__(self, spec: TableSpec, max_modes: int = 10, seed: int = 0):
        self.spec, self.max_modes, self.seed = spec, max_modes, seed

    def fit(self, frame: pd.DataFrame):
        frame = self.spec.check(frame)
        self.normalizers, self.fill, self.bounds, self.has_missing, self.levels = {}, {}, {}, {}, {}
        self.spans = []
        for c in self.spec.numeric:
            x = frame[c].to_numpy(dtype=np.float64)
            ok = np.isfinite(x)
            if not ok.any():
                raise ValueError(f"numeric column {c!r} has no values")
            self.fill[c] = float(np.median(x[ok]))
            self.bounds[c] = (float(x[ok].min()), float(x[ok].max()))
            self.has_missing[c] = bool((~ok).any())
            self.normalizers[c] = ModeNormalizer(self.max_modes, seed=self.seed).fit(x[ok])
            self.spans += [(c, "alpha", 1), (c, "softmax", self.normalizers[c].n_modes)]
            if self.has_missing[c]:
                self.spans.append((c + "__missing", "softmax", 2))
        for c in self.spec.categorical:
            self.levels[c] = sorted(categories(frame[c]).unique())
            self.spans.append((c, "softmax", len(self.levels[c])))
        self.width = sum(w for _, _, w in self.spans)
        self.discrete = [(i, s) for i, s in enumerate(self.spans) if s[0] in self.levels]
        return self

    def transform(self, frame: pd.DataFrame):
        frame = self.spec.check(frame)
        blocks = []
        for c in self.spec.numeric:
            x = frame[c].to_numpy(dtype=np.float64)
            ok = np.isfinite(x)
            alpha, mode = self.normalizers[c].transform(np.where(ok, x, self.fill[c]))
            blocks += [alpha[:, None], np.eye(self.normalizers[c].n_modes)[mode]]
            if self.has_missing[c]:
                blocks.append(np.eye(2)[(~ok).astype(int)])
        for c in self.spec.categorical:
            cats = categories(frame[c])
            unknown = set(cats) - set(self.levels[c])
            if unknown:
                raise ValueError(f"column {c!r} has categories unseen in fit: {sorted(unknown)[:5]}")
            index = {v: i for i, v in enumerate(self.levels[c])}
            blocks.append(np.eye(len(self.levels[c]))[cats.map(index).to_numpy()])
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def inverse_transform(self, matrix) -> pd.DataFrame:
        m = np.asarray(matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[1] != self.width:
            raise ValueError(f"expected a matrix with {self.width} columns, got {m.shape}")
        out, pos, parts = {}, 0, {}
        for name, kind, width in self.spans:
            parts[(name, kind)] = m[:, pos:pos + width]
            pos += width
        for c in self.spec.numeric:
            alpha = parts[(c, "alpha")][:, 0]
            mode = parts[(c, "softmax")].argmax(axis=1)
            x = self.normalizers[c].inverse_transform(alpha, mode)
            x = np.clip(x, *self.bounds[c])
            if c in self.spec.integer:
                x = np.round(x)
            if self.has_missing[c]:
                x = np.where(parts[(c + "__missing", "softmax")].argmax(axis=1) == 1, np.nan, x)
            out[c] = x
        for c in self.spec.categorical:
            labels = np.array(self.levels[c], dtype=object)[parts[(c, "softmax")].argmax(axis=1)]
            out[c] = pd.Series(labels).replace(MISSING, np.nan).to_numpy()
        return pd.DataFrame(out)[self.spec.columns]


# --- the conditional tabular GAN ----------------------------------------------------

def pack(rows, pac: int):
    """PacGAN (Lin et al. 2018), as in CTGAN: groups of ``pac`` consecutive rows side by side,
    (n, d) -> (n / pac, pac * d), so the critic judges ``pac`` rows at once and can see a lack of
    variety (mode collapse) that no single row shows. The WGAN-GP penalty is then taken on the
    packed input: one mixing weight and one gradient norm per group."""
    if pac == 1:
        return rows
    return tf.reshape(rows, (-1, pac * rows.shape[-1]))


def gumbel_uniforms(rng, shape) -> np.ndarray:
    """Uniform draws in [1e-8, 1) as float32 for :func:`activate`'s Gumbel noise. Drawn in float32:
    a float64 draw rounded to float32 can become exactly 1, whose Gumbel value is infinite."""
    return np.maximum(rng.random(shape, dtype=np.float32), np.float32(1e-8))


def activate(raw, spans, uniforms, hard: bool = False):
    """A generator's raw output -> a row of the transformed table: tanh for the alpha of each
    numeric column, Gumbel-softmax (temperature 0.2) for each one-hot span (``hard``: its one-hot
    argmax). ``uniforms`` (same shape as ``raw``, in (0, 1]) are the Gumbel draws."""
    out, pos = [], 0
    for _, kind, width in spans:
        logits = raw[:, pos:pos + width]
        if kind == "alpha":
            out.append(tf.tanh(logits))
        else:
            gumbel = -tf.math.log(-tf.math.log(uniforms[:, pos:pos + width]))
            y = tf.nn.softmax((logits + gumbel) / 0.2)
            out.append(tf.one_hot(tf.argmax(y, 1), width) if hard else y)
        pos += width
    return tf.concat(out, axis=1)


class TabularWGAN(training.Model):
    """The networks and the training step of :class:`ConditionalTabularGAN` (CTGAN, Xu et al. 2019).

    Generator: noise and the condition vector through two residual blocks (dense, batch norm, ReLU,
    concatenated to their input) to raw outputs, activated by :func:`activate`. Critic: (row,
    condition), ``pac`` rows at a time, through two dense LeakyReLU layers with dropout. One
    :meth:`train_step` is one WGAN-GP critic update and one generator update whose loss adds the
    cross-entropy between the generated conditioned column and the condition. The random numbers of
    a step come from ``(seed, step)``: the batch with its noise from ``sampler(data, rng, batch_size)``
    (see :meth:`ConditionalTabularGAN.draw`), the penalty's mixing weights from ``random_seed``; the
    critic's dropout masks come from its seeded generator, whose state is a checkpointed variable.
    """

    def __init__(self, spans, cond_spans, noise_dim: int = 64, width: int = 128, pac: int = 1,
                 gp_weight: float = 10.0, learning_rate: float = 2e-4, seed: int = 0, sampler=None):
        super().__init__(name="tabular_wgan")
        self.sampler = sampler
        self.spans = [tuple(s) for s in spans]
        self.cond_spans = [tuple(s) for s in cond_spans]
        self.noise_dim, self.width, self.pac, self.seed = noise_dim, width, pac, seed
        self.gp_weight, self.learning_rate = float(gp_weight), float(learning_rate)
        data_width = sum(w for _, _, w in self.spans)
        cond_width = sum(w for _, _, w in self.cond_spans)
        keras.utils.set_random_seed(seed)
        z = keras.Input((noise_dim + cond_width,))
        h = z
        for _ in range(2):
            block = keras.layers.Dense(width)(h)
            block = keras.layers.ReLU()(keras.layers.BatchNormalization()(block))
            h = keras.layers.Concatenate()([h, block])        # CTGAN's residual concatenation
        self.generator = keras.Model(z, keras.layers.Dense(data_width)(h), name="generator")
        x = keras.Input((pac * (data_width + cond_width),))
        c = x
        for _ in range(2):
            c = keras.layers.Dropout(0.5)(keras.layers.LeakyReLU(0.2)(keras.layers.Dense(width)(c)))
        self.critic = keras.Model(x, keras.layers.Dense(1)(c), name="critic")
        self.g_optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=0.5, beta_2=0.9)
        self.c_optimizer = keras.optimizers.Adam(self.learning_rate, beta_1=0.5, beta_2=0.9)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)
        select = np.zeros((cond_width, data_width), np.float32)        # condition slot -> data column
        span_of_slot = np.zeros((cond_width, len(self.cond_spans)), np.float32)
        offset = 0
        for j, (_, start, w) in enumerate(self.cond_spans):
            select[offset:offset + w, start:start + w] = np.eye(w)
            span_of_slot[offset:offset + w, j] = 1.0
            offset += w
        self._select, self._span_of_slot = tf.constant(select), tf.constant(span_of_slot)

    def get_config(self):
        return {"spans": self.spans, "cond_spans": self.cond_spans, "noise_dim": self.noise_dim,
                "width": self.width, "pac": self.pac, "gp_weight": self.gp_weight,
                "learning_rate": self.learning_rate, "seed": self.seed}

    def draw_batch(self, data, rng, batch_size: int):
        """The batch of one step and all its random numbers, from ``sampler``."""
        return self.sampler(data, rng, batch_size)

    def condition_loss(self, raw, cond, mask):
        """Cross-entropy between the generated logits of each row's conditioned column and its condition."""
        logits = tf.matmul(raw, self._select, transpose_b=True)              # (n, cond_width)
        in_span = tf.matmul(mask, self._span_of_slot, transpose_b=True)
        shifted = tf.where(in_span > 0, logits, -1e9)
        return -tf.reduce_sum(cond * tf.nn.log_softmax(shifted, axis=1), axis=1)

    def train_step(self, data):
        """One critic update (WGAN-GP on packed (row, condition) inputs), one generator update."""
        from .gan import wgan_gp_critic_loss

        real, cond, mask, z_critic, z_gen, u_critic, u_gen = data
        fake = activate(self.generator(tf.concat([z_critic, cond], 1), training=True), self.spans, u_critic)
        real_in = pack(tf.concat([real, cond], 1), self.pac)
        fake_in = pack(tf.concat([fake, cond], 1), self.pac)
        with tf.GradientTape() as tape:
            c_loss, wdist = wgan_gp_critic_loss(self.critic, real_in, fake_in, self.gp_weight,
                                                seed=self.random_seed(1))
        grads = tape.gradient(c_loss, self.critic.trainable_variables)
        self.c_optimizer.apply_gradients(zip(grads, self.critic.trainable_variables))
        with tf.GradientTape() as tape:
            raw = self.generator(tf.concat([z_gen, cond], 1), training=True)
            fake = activate(raw, self.spans, u_gen)
            g_loss = (-tf.reduce_mean(self.critic(pack(tf.concat([fake, cond], 1), self.pac), training=True))
                      + tf.reduce_mean(self.condition_loss(raw, cond, mask)))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return {"critic_loss": -wdist, "generator_loss": g_loss}


class ConditionalTabularGAN:
    """CTGAN's ideas, small: mode-specific normalisation, a conditional vector with
    training-by-sampling, Gumbel-softmax outputs, a WGAN-GP critic that sees (row, condition).

    ``fit(frame)`` trains; ``sample(n)`` draws conditions from the data's frequencies;
    ``sample(n, condition={"grade": "E"})`` draws rows of a chosen category (re-drawing rows whose
    generated category differs). The networks and the training step are a :class:`TabularWGAN`
    (``self.model``), trained through :mod:`labkit.training`: a run resumed from ``checkpoint_dir``
    continues exactly, because every random number of a step is drawn from ``(seed, step)``, and
    sampling after ``fit`` starts from its own fixed stream.

    Options beyond the defaults: ``pac`` > 1 packs that many rows per critic input (PacGAN, as
    CTGAN's pac=10; see :func:`pack`); ``target`` with ``target_share`` > 0 makes training-by-sampling
    pick that column (e.g. the label a downstream model will predict) ``target_share`` more often on
    top of its uniform share, so the generator is trained more on rows conditioned on it.
    """

    def __init__(self, spec: TableSpec, noise_dim: int = 64, width: int = 128, max_modes: int = 10,
                 seed: int = 0, pac: int = 1, target: str | None = None, target_share: float = 0.0):
        if pac < 1:
            raise ValueError(f"pac must be >= 1, got {pac}")
        if not 0.0 <= target_share < 1.0:
            raise ValueError(f"target_share must be in [0, 1), got {target_share}")
        if target is not None and target not in spec.categorical:
            raise ValueError(f"target must be one of the categorical columns {spec.categorical}, got {target!r}")
        self.spec, self.noise_dim, self.width, self.seed = spec, noise_dim, width, seed
        self.pac, self.target, self.target_share = pac, target, target_share
        self.transformer = TableTransformer(spec, max_modes=max_modes, seed=seed)
        self.rng = np.random.default_rng([seed, 2 ** 31])          # the sampling stream (reset by fit)
        self.history = {"critic_loss": [], "generator_loss": []}
        self.train_seconds = 0.0

    @property
    def generator(self):
        return self.model.generator

    @property
    def critic(self):
        return self.model.critic

    def _setup_conditions(self, data):
        t = self.transformer
        self.cond_offsets, self.cond_width, self.cond_spans = [], 0, []
        self.rows_by_category, self.log_freq, self.freq = [], [], []
        pos_of = np.cumsum([0] + [w for _, _, w in t.spans])
        for index, (name, _, width) in t.discrete:
            block = data[:, pos_of[index]:pos_of[index] + width]
            counts = block.sum(axis=0)
            self.cond_spans.append((name, int(pos_of[index]), width))
            self.cond_offsets.append(self.cond_width)
            self.cond_width += width
            self.rows_by_category.append([np.flatnonzero(block[:, j] > 0.5) for j in range(width)])
            lf = np.log(counts + 1.0)
            self.log_freq.append(lf / lf.sum())
            self.freq.append(counts / counts.sum())

    def _sample_condition(self, n, by_log_frequency: bool = True, rng=None):
        """Training-by-sampling: a column uniformly, a category by log-frequency, a real row with it.
        During training (log-frequency), ``target_share`` of the draws go to the ``target`` column on
        top of its uniform share. Draws from ``rng`` (the sampling stream by default)."""
        rng = self.rng if rng is None else rng
        cond = np.zeros((n, self.cond_width), np.float32)
        mask = np.zeros((n, len(self.cond_spans)), np.float32)
        rows = np.zeros(n, dtype=int)
        k = len(self.cond_spans)
        if self.target is not None and self.target_share > 0 and by_log_frequency:
            p_col = np.full(k, (1 - self.target_share) / k)
            p_col[[s[0] for s in self.cond_spans].index(self.target)] += self.target_share
            columns = rng.choice(k, size=n, p=p_col)
        else:
            columns = rng.integers(0, k, n)
        for i, col in enumerate(columns):
            probs = self.log_freq[col] if by_log_frequency else self.freq[col]
            cat = rng.choice(len(probs), p=probs)
            cond[i, self.cond_offsets[col] + cat] = 1.0
            mask[i, col] = 1.0
            rows[i] = rng.choice(self.rows_by_category[col][cat])
        return cond, mask, rows

    def draw(self, data, rng, batch_size: int) -> tuple:
        """One training step's batch, from its ``rng`` (``(seed, step)``): conditions and the real rows
        that carry them, both updates' noise and Gumbel draws (the penalty's mixing weights come from
        the model's ``random_seed``)."""
        cond, mask, rows = self._sample_condition(batch_size, rng=rng)
        width = self.transformer.width
        z = rng.standard_normal((2, batch_size, self.noise_dim), dtype=np.float32)
        u = gumbel_uniforms(rng, (2, batch_size, width))
        return data[rows], cond, mask, z[0], z[1], u[0], u[1]

    def fit(self, frame: pd.DataFrame, epochs: int = 50, batch_size: int = 500, learning_rate: float = 2e-4,
            gp_weight: float = 10.0, checkpoint_dir=None, checkpoint_every: int = 10,
            progress_desc: str | None = "tabular GAN"):
        """Train on ``frame`` for ``epochs`` (WGAN-GP, one critic step per generator step).

        With ``checkpoint_dir`` the model, its optimisers, step and history are saved every
        ``checkpoint_every`` epochs and after the last (:func:`labkit.training.fit`); a rerun resumes
        from the latest save, or restores a finished run with its history. ``train_seconds`` is the
        time of fitting the table transformer (measured now) plus that of the training steps (the
        original one on a restore).
        """
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
        epochs = check_int("epochs", epochs, minimum=1)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        if batch_size % self.pac:
            raise ValueError(f"batch_size {batch_size} must be a multiple of pac {self.pac}")
        frame = self.spec.check(frame, "training table")
        began = time.perf_counter()
        data = self.transformer.fit(frame).transform(frame)
        prepare_seconds = time.perf_counter() - began
        self._setup_conditions(data)
        if not self.cond_spans:
            raise ValueError("ConditionalTabularGAN needs at least one categorical column")
        self.model = TabularWGAN(self.transformer.spans, self.cond_spans, self.noise_dim, self.width, self.pac,
                                 gp_weight, learning_rate, self.seed, sampler=self.draw)
        per_epoch = max(len(data) // batch_size, 1)
        params = {**self.model.get_config(), "target": self.target, "target_share": self.target_share,
                  "per_epoch": per_epoch}
        history = training.fit(self.model, data, epochs * per_epoch, batch_size=batch_size, seed=self.seed,
                               checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every * per_epoch,
                               params=params, desc=progress_desc or "", show_progress=progress_desc is not None)
        # one value per epoch (its last step), as CTGAN reports
        self.history = {k: list(history.get(k, []))[per_epoch - 1::per_epoch]
                        for k in ("critic_loss", "generator_loss")}
        self.train_seconds = prepare_seconds + float(history["seconds"])     # steps: the original time
        self.rng = np.random.default_rng([self.seed, 2 ** 31])
        return self

    def _generate(self, n, cond):
        z = np.concatenate([self.rng.standard_normal((n, self.noise_dim)).astype(np.float32), cond], 1)
        u = gumbel_uniforms(self.rng, (n, self.transformer.width))
        raw = self.generator(tf.constant(z), training=False)
        return self.transformer.inverse_transform(activate(raw, self.transformer.spans, u, hard=True).numpy())

    def sample(self, n: int, condition=None, max_tries: int = 20) -> pd.DataFrame:
        """``n`` synthetic rows. ``condition``: None (conditions drawn as in CTGAN: a random column, a
        category by frequency), a column name (its categories drawn by their real frequencies), or
        ``{column: category}`` (only rows of that category)."""
        if not hasattr(self, "model"):
            raise RuntimeError("call fit() before sample()")
        if condition is None:
            cond, _, _ = self._sample_condition(n, by_log_frequency=False)
            return self._generate(n, cond)
        if isinstance(condition, str):           # a column: its categories in their real frequencies
            names = [s[0] for s in self.cond_spans]
            if condition not in names:
                raise ValueError(f"condition column must be one of {names}, got {condition!r}")
            j = names.index(condition)
            cats = self.rng.choice(len(self.freq[j]), size=n, p=self.freq[j])
            cond = np.zeros((n, self.cond_width), np.float32)
            cond[np.arange(n), self.cond_offsets[j] + cats] = 1.0
            return self._generate(n, cond)
        (column, value), = condition.items()
        names = [s[0] for s in self.cond_spans]
        if column not in names:
            raise ValueError(f"condition column must be one of {names}, got {column!r}")
        j = names.index(column)
        levels = self.transformer.levels[column]
        if str(value) not in levels:
            raise ValueError(f"{column!r} has no category {value!r}; categories: {levels}")
        cond = np.zeros((n, self.cond_width), np.float32)
        cond[:, self.cond_offsets[j] + levels.index(str(value))] = 1.0
        kept, self.last_acceptance = [], []
        for _ in range(max_tries):
            rows = self._generate(n, cond)
            hit = categories(rows[column]) == str(value)
            self.last_acceptance.append(float(hit.mean()))
            kept.append(rows[hit.to_numpy()])
            if sum(len(k) for k in kept) >= n:
                break
        out = pd.concat(kept, ignore_index=True).iloc[:n]
        if len(out) < n:
            raise RuntimeError(f"only {len(out)} of {n} rows came out with {column} = {value!r}")
        return out


# --- baselines ----------------------------------------------------------------------

def independent_marginals(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Each column drawn independently from its own empirical distribution (missing values included)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: frame[c].to_numpy()[rng.integers(0, len(frame), n)] for c in frame.columns})


class GaussianCopula:
    """A Gaussian copula over empirical marginals (as SDV's GaussianCopula, simplified).

    Numeric values -> normal scores of their ranks (missingness as an extra 0/1 column); categories ->
    a random point inside the category's frequency interval of [0, 1] -> normal score. Sampling draws
    correlated normals and maps them back through the empirical quantiles / intervals.
    """

    def __init__(self, spec: TableSpec, seed: int = 0):
        self.spec, self.rng = spec, np.random.default_rng(seed)

    def _uniforms(self, frame):
        us = []
        for c in self.spec.numeric:
            x = frame[c].to_numpy(dtype=np.float64)
            ok = np.isfinite(x)
            u = np.full(len(x), 0.5)
            u[ok] = (pd.Series(x[ok]).rank(method="average").to_numpy()) / (ok.sum() + 1)
            us.append(u)
            if self.missing_rate[c] > 0:
                us.append(np.where(ok, self.rng.uniform(0, 1 - self.missing_rate[c], len(x)),
                                   self.rng.uniform(1 - self.missing_rate[c], 1, len(x))))
        for c in self.spec.categorical:
            cats = categories(frame[c]).to_numpy()
            lo = np.array([self.intervals[c][v][0] for v in cats])
            hi = np.array([self.intervals[c][v][1] for v in cats])
            us.append(self.rng.uniform(lo, hi))
        return np.clip(np.stack(us, axis=1), 1e-6, 1 - 1e-6)

    def fit(self, frame: pd.DataFrame):
        from scipy.stats import norm

        frame = self.spec.check(frame)
        self.values = {c: np.sort(frame[c].dropna().to_numpy(dtype=np.float64)) for c in self.spec.numeric}
        self.missing_rate = {c: float(frame[c].isna().mean()) for c in self.spec.numeric}
        self.intervals = {}
        for c in self.spec.categorical:
            freq = categories(frame[c]).value_counts(normalize=True).sort_index()
            edges = np.concatenate([[0.0], np.cumsum(freq.to_numpy())])
            self.intervals[c] = {v: (edges[i], edges[i + 1]) for i, v in enumerate(freq.index)}
        z = norm.ppf(self._uniforms(frame))
        self.correlation = np.corrcoef(z, rowvar=False)
        return self

    def sample(self, n: int) -> pd.DataFrame:
        from scipy.stats import norm

        z = self.rng.multivariate_normal(np.zeros(len(self.correlation)), self.correlation, size=n,
                                         method="eigh")
        u = norm.cdf(z)
        out, j = {}, 0
        for c in self.spec.numeric:
            x = np.quantile(self.values[c], u[:, j])
            if c in self.spec.integer:
                x = np.round(x)
            j += 1
            if self.missing_rate[c] > 0:
                x = np.where(u[:, j] > 1 - self.missing_rate[c], np.nan, x)
                j += 1
            out[c] = x
        for c in self.spec.categorical:
            names = list(self.intervals[c])
            uppers = np.array([self.intervals[c][v][1] for v in names])
            idx = np.minimum(np.searchsorted(uppers, u[:, j]), len(names) - 1)
            out[c] = pd.Series(np.array(names, dtype=object)[idx]).replace(MISSING, np.nan).to_numpy()
            j += 1
        return pd.DataFrame(out)[self.spec.columns]
