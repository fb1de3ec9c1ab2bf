"""Synthetic tables: CTGAN's ideas in TensorFlow, two baselines, and SDMetrics-style evaluation.

- :class:`ModeNormalizer` and :class:`TableTransformer`: mode-specific normalisation of numeric
  columns (a Bayesian Gaussian mixture per column; value -> (mode one-hot, scalar in its mode)),
  one-hot categorical columns, missing values as their own category, bounds and integer types;
- :class:`ConditionSampler`: CTGAN's conditional vector and training-by-sampling (Xu et al. 2019),
  and drawing rows (of a chosen category) from a generator; the generator, the critic and their
  training step are built in notebook 08;
- baselines: :func:`independent_marginals` and :class:`GaussianCopula`.

Their evaluation (column shapes, pair trends, utility, distance to closest record, exact copies)
is in :mod:`labkit.table_metrics`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tensorflow as tf


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
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        x = np.asarray(values, dtype=np.float64).ravel()
        if len(x) < 2 or not np.isfinite(x).all():
            raise ValueError("ModeNormalizer needs at least 2 finite values (fill missing ones first)")
        rng = np.random.default_rng(self.seed)
        fit_on = x if len(x) <= 4000 else rng.choice(x, 4000, replace=False)
        n_modes = int(min(self.max_modes, len(np.unique(fit_on))))
        if n_modes < 2:
            self.means_, self.stds_ = np.array([x.mean()]), np.array([max(x.std(), 1e-3)])
            self.converged_ = True
            return self
        gm = BayesianGaussianMixture(n_components=n_modes, weight_concentration_prior_type="dirichlet_process",
                                     weight_concentration_prior=1e-3, max_iter=100, n_init=1,
                                     random_state=self.seed)
        # CTGAN's 100 iterations; on skewed columns the variational bound may still be moving then.
        # The modes it has found are all the transform needs (the round trip is exact either way),
        # so the result is recorded in ``converged_`` rather than shown as a warning in the notebook.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(fit_on[:, None])
        self.converged_ = bool(gm.converged_)
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


# --- training-by-sampling and sampling rows (the data side of the conditional GAN) ----------

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


class ConditionSampler:
    """CTGAN's data side (Xu et al. 2019): the transformed table, the conditional vector and
    training-by-sampling, and drawing rows from a trained generator.

    ``fit(frame)`` fits a :class:`TableTransformer` and sets ``data`` (the transformed training rows),
    ``spans`` (the generator's output layout) and ``cond_width`` (the length of the conditional
    vector: one one-hot slot per category of every categorical column).

    - :meth:`draw` (training): a column uniformly, one of its categories by **log**-frequency, and a
      real row having it, so rare categories are seen often enough to be learnt. With ``target`` and
      ``target_share`` > 0 that column is picked ``target_share`` more often on top of its uniform share.
    - :meth:`select_matrices`: which generated logits belong to which condition slot, for the
      generator's condition loss.
    - :meth:`sample` (generation): conditions by real frequency (or a chosen category), the generator's
      output activated with hard one-hots and decoded back into a table.
    """

    def __init__(self, spec: TableSpec, max_modes: int = 10, seed: int = 0, target: str | None = None,
                 target_share: float = 0.0):
        if not 0.0 <= target_share < 1.0:
            raise ValueError(f"target_share must be in [0, 1), got {target_share}")
        if target is not None and target not in spec.categorical:
            raise ValueError(f"target must be one of the categorical columns {spec.categorical}, got {target!r}")
        if not spec.categorical:
            raise ValueError("training-by-sampling needs at least one categorical column")
        self.spec, self.seed, self.target, self.target_share = spec, seed, target, target_share
        self.transformer = TableTransformer(spec, max_modes=max_modes, seed=seed)

    def fit(self, frame: pd.DataFrame):
        t = self.transformer
        self.data = t.fit(frame).transform(frame)
        self.spans, self.width = t.spans, t.width
        self.cond_offsets, self.cond_width, self.cond_spans = [], 0, []
        self.rows_by_category, self.log_freq, self.freq = [], [], []
        pos_of = np.cumsum([0] + [w for _, _, w in t.spans])
        for index, (name, _, width) in t.discrete:
            block = self.data[:, pos_of[index]:pos_of[index] + width]
            counts = block.sum(axis=0)
            self.cond_spans.append((name, int(pos_of[index]), width))
            self.cond_offsets.append(self.cond_width)
            self.cond_width += width
            self.rows_by_category.append([np.flatnonzero(block[:, j] > 0.5) for j in range(width)])
            lf = np.log(counts + 1.0)
            self.log_freq.append(lf / lf.sum())
            self.freq.append(counts / counts.sum())
        return self

    def condition(self, n: int, rng, by_log_frequency: bool = True):
        """``n`` conditional vectors (n, cond_width), the mask of the chosen column (n, columns) and,
        for each, the index of a real row with that category (training-by-sampling)."""
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

    def draw(self, data, rng, batch_size: int):
        """One training batch by training-by-sampling: (real rows, their conditions, the column mask)."""
        cond, mask, rows = self.condition(batch_size, rng)
        return np.asarray(data)[rows], cond, mask

    def select_matrices(self):
        """``select`` (cond_width, width): condition slot -> the generated logit of that category;
        ``slot_column`` (cond_width, columns): condition slot -> its column."""
        select = np.zeros((self.cond_width, self.width), np.float32)
        slot_column = np.zeros((self.cond_width, len(self.cond_spans)), np.float32)
        offset = 0
        for j, (_, start, w) in enumerate(self.cond_spans):
            select[offset:offset + w, start:start + w] = np.eye(w)
            slot_column[offset:offset + w, j] = 1.0
            offset += w
        return select, slot_column

    def _generate(self, generator, cond, rng):
        n = len(cond)
        noise_dim = int(generator.input_shape[-1]) - self.cond_width
        z = np.concatenate([rng.standard_normal((n, noise_dim)).astype(np.float32), cond], 1)
        raw = generator(tf.constant(z), training=False)
        u = gumbel_uniforms(rng, (n, self.width))
        return self.transformer.inverse_transform(activate(raw, self.spans, u, hard=True).numpy())

    def sample(self, generator, n: int, condition=None, seed: int = 0, max_tries: int = 20) -> pd.DataFrame:
        """``n`` rows from ``generator`` (input: noise + conditional vector). ``condition``: None
        (a random column, a category by real frequency, as CTGAN samples), a column name (its
        categories in their real frequencies) or ``{column: category}`` (only rows of that category:
        rows whose generated category differs are drawn again). Random numbers from ``seed``."""
        if not hasattr(self, "data"):
            raise RuntimeError("call fit() before sample()")
        rng = np.random.default_rng([self.seed, seed, 2 ** 31])
        names = [s[0] for s in self.cond_spans]
        if condition is None:
            cond, _, _ = self.condition(n, rng, by_log_frequency=False)
            return self._generate(generator, cond, rng)
        column, value = (condition, None) if isinstance(condition, str) else next(iter(condition.items()))
        if column not in names:
            raise ValueError(f"condition column must be one of {names}, got {column!r}")
        j = names.index(column)
        cond = np.zeros((n, self.cond_width), np.float32)
        if value is None:                       # a column: its categories in their real frequencies
            cats = rng.choice(len(self.freq[j]), size=n, p=self.freq[j])
            cond[np.arange(n), self.cond_offsets[j] + cats] = 1.0
            return self._generate(generator, cond, rng)
        levels = self.transformer.levels[column]
        if str(value) not in levels:
            raise ValueError(f"{column!r} has no category {value!r}; categories: {levels}")
        cond[:, self.cond_offsets[j] + levels.index(str(value))] = 1.0
        kept, self.last_acceptance = [], []
        for _ in range(max_tries):
            rows = self._generate(generator, cond, rng)
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
