"""Measuring synthetic tables: fidelity, coverage, utility and privacy (SDMetrics-style).

The tables are pandas DataFrames described by a :class:`labkit.tabular.TableSpec` (which columns
are numeric, which categorical); the models and baselines that make them are in
:mod:`labkit.tabular`, the one-page report that combines these measures in :mod:`labkit.quality`.

::

    column_shapes(real, synthetic, spec)          # (mean, {column: score}): 1 - KS / 1 - TV distance
    column_pair_trends(real, synthetic, spec)     # (mean, {(a, b): score}): correlations, contingency tables
    coverage(train, synthetic, spec)              # categories and numeric ranges reached
    utility_auc(train, test, spec, target, positive)   # ROC AUC on real test: TSTR or TRTR
    fit_classifier / predict_classifier           # the model behind utility_auc
    distance_to_closest_record(query, reference, spec) # DCR (labkit.nearest) on encoded rows
    exact_copy_share(synthetic, train, spec)      # rows identical to a training row

Distances use :func:`encode_for_distance` (numbers scaled to [0, 1] by the training range, one-hot
categories); :func:`distance_features` hands that encoding to any function of :mod:`labkit.nearest`
(the DCR ratio, NNDR and near-copy shares of :func:`labkit.nearest.dcr_summary`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import nearest
from .tabular import MISSING, TableSpec, categories

# --- fidelity: column shapes and pair trends ------------------------------------------

def ks_complement(real, synthetic) -> float:
    """1 - the two-sample KS statistic of the non-missing values (SDMetrics' KSComplement)."""
    from scipy.stats import ks_2samp

    a = pd.to_numeric(pd.Series(real), errors="coerce").dropna().to_numpy()
    b = pd.to_numeric(pd.Series(synthetic), errors="coerce").dropna().to_numpy()
    if len(a) == 0 or len(b) == 0:
        raise ValueError("ks_complement needs non-missing values on both sides")
    return 1.0 - float(ks_2samp(a, b).statistic)


def tv_complement(real, synthetic) -> float:
    """1 - total variation distance of category frequencies, missing as a category (TVComplement)."""
    p = categories(pd.Series(real)).value_counts(normalize=True)
    q = categories(pd.Series(synthetic)).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float(np.abs(p - q).sum())


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec):
    """Mean column-shape score and the per-column scores (KS complement / TV complement)."""
    real, synthetic = spec.check(real, "real"), spec.check(synthetic, "synthetic")
    scores = {c: ks_complement(real[c], synthetic[c]) for c in spec.numeric}
    scores.update({c: tv_complement(real[c], synthetic[c]) for c in spec.categorical})
    return float(np.mean(list(scores.values()))), scores


def coverage(train: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec) -> dict:
    """How much of the real table the synthetic one reaches: ``category_coverage`` (share of the
    training categories, averaged over categorical columns, that appear in the synthetic table) and
    ``range_coverage`` (share of each numeric column's training range spanned by synthetic values,
    averaged). A key is left out when the spec has no column of that kind."""
    cats = [np.isin(sorted(categories(train[c]).unique()), categories(synthetic[c]).unique()).mean()
            for c in spec.categorical]
    ranges = []
    for c in spec.numeric:
        r, s = train[c].dropna().to_numpy(float), synthetic[c].dropna().to_numpy(float)
        width = r.max() - r.min()
        if len(s) == 0:
            ranges.append(0.0)
        elif width > 0:
            ranges.append(max(0.0, min(s.max(), r.max()) - max(s.min(), r.min())) / width)
    out = {}
    if cats:
        out["category_coverage"] = float(np.mean(cats))
    if ranges:
        out["range_coverage"] = float(np.mean(ranges))
    return out


def _binned(series, edges):
    x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2).astype(object)
    return pd.Series(np.where(np.isfinite(x), b, MISSING)).astype(str)


def contingency_similarity(real_a, real_b, synth_a, synth_b) -> float:
    """1 - total variation distance between the two joint category tables."""
    p = pd.crosstab(real_a.to_numpy(), real_b.to_numpy(), normalize=True).stack()
    q = pd.crosstab(synth_a.to_numpy(), synth_b.to_numpy(), normalize=True).stack()
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float(np.abs(p - q).sum())


def column_pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec, bins: int = 10):
    """Mean column-pair score: numeric pairs 1 - |rho_real - rho_synth| / 2 (Pearson, rows where both
    are present); other pairs contingency similarity, numbers cut into ``bins`` equal-width bins of the
    real range (SDMetrics bins each table on its own range, so mixed pairs can differ). Returns (mean, {(a, b): score})."""
    real, synthetic = spec.check(real, "real"), spec.check(synthetic, "synthetic")
    disc_r, disc_s = {}, {}
    for c in spec.numeric:
        x = real[c].dropna().to_numpy(dtype=np.float64)
        edges = np.linspace(x.min(), x.max(), bins + 1)
        disc_r[c], disc_s[c] = _binned(real[c], edges), _binned(synthetic[c], edges)
    for c in spec.categorical:
        disc_r[c], disc_s[c] = categories(real[c]).reset_index(drop=True), categories(synthetic[c]).reset_index(drop=True)
    scores = {}
    cols = spec.columns
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            if a in spec.numeric and b in spec.numeric:
                rr = real[[a, b]].dropna().corr().iloc[0, 1]
                rs = synthetic[[a, b]].dropna().corr().iloc[0, 1]
                rs = 0.0 if not np.isfinite(rs) else rs
                scores[(a, b)] = 1.0 - abs(rr - rs) / 2.0
            else:
                scores[(a, b)] = contingency_similarity(disc_r[a], disc_r[b], disc_s[a], disc_s[b])
    return float(np.mean(list(scores.values()))), scores


# --- utility: train on synthetic, test on real ---------------------------------------

def _model_matrix(frame, spec, target, reference):
    x = frame[[c for c in spec.columns if c != target]].copy()
    for c in spec.categorical:
        if c in x:
            x[c] = pd.Categorical(categories(x[c]), categories=sorted(categories(reference[c]).unique()))
    return x


def fit_classifier(train: pd.DataFrame, spec: TableSpec, target: str, positive, seed: int = 0,
                   class_weight=None):
    """A histogram gradient-boosting classifier of ``target in positive`` from the other columns.

    ``class_weight`` (e.g. ``{True: 8.0, False: 1.0}``) weights the training rows of each class."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = categories(train[target]).isin([str(p) for p in positive]).to_numpy()
    if y.all() or not y.any():
        raise ValueError(f"the training table has only one class of {target} in {positive}")
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, categorical_features="from_dtype",
                                           random_state=seed, class_weight=class_weight)
    model.reference_ = train
    return model.fit(_model_matrix(train, spec, target, train), y)


def predict_classifier(model, frame: pd.DataFrame, spec: TableSpec, target: str, proba: bool = False):
    """Predictions (or positive-class probabilities) of a :func:`fit_classifier` model on ``frame``."""
    x = _model_matrix(frame, spec, target, model.reference_)
    return model.predict_proba(x)[:, 1] if proba else model.predict(x)


def utility_auc(train: pd.DataFrame, test: pd.DataFrame, spec: TableSpec, target: str, positive,
                seed: int = 0) -> float:
    """ROC AUC on real ``test`` of a classifier trained on ``train`` (synthetic: TSTR, real: TRTR)."""
    from sklearn.metrics import roc_auc_score

    model = fit_classifier(train, spec, target, positive, seed)
    y = categories(test[target]).isin([str(p) for p in positive]).to_numpy()
    score = predict_classifier(model, test, spec, target, proba=True)
    return float(roc_auc_score(y, score))


# --- privacy: distance to closest record, exact copies ---------------------------------

def encode_for_distance(frame: pd.DataFrame, reference: pd.DataFrame, spec: TableSpec):
    """Numbers scaled to [0, 1] by the reference's range (missing -> 0 plus a 0/1 flag), categories
    one-hot: the space in which distances to the closest record are measured."""
    blocks = []
    for c in spec.numeric:
        ref = reference[c].to_numpy(dtype=np.float64)
        lo, hi = np.nanmin(ref), np.nanmax(ref)
        x = frame[c].to_numpy(dtype=np.float64)
        blocks += [np.nan_to_num((x - lo) / (hi - lo + 1e-12))[:, None], np.isnan(x)[:, None].astype(float)]
    for c in spec.categorical:
        levels = sorted(categories(reference[c]).unique())
        cats = categories(frame[c])
        blocks.append(np.stack([(cats == v).to_numpy(float) for v in levels], axis=1))
    return np.concatenate(blocks, axis=1)


def distance_features(reference: pd.DataFrame, spec: TableSpec):
    """The feature map of table distances: ``frame -> encode_for_distance(frame, reference, spec)``,
    for the functions of :mod:`labkit.nearest` (its ``feature_map`` argument)."""
    def features(frame):
        return encode_for_distance(frame, reference, spec)

    return features


def distance_to_closest_record(query: pd.DataFrame, reference: pd.DataFrame, spec: TableSpec):
    """DCR of tables: for each query row, the Euclidean distance to its nearest reference row, in
    the space of :func:`encode_for_distance` (:func:`labkit.nearest.distance_to_closest_record`)."""
    return nearest.distance_to_closest_record(query, reference, feature_map=distance_features(reference, spec))


def exact_copy_share(synthetic: pd.DataFrame, train: pd.DataFrame, spec: TableSpec) -> float:
    """Share of synthetic rows identical (every column, missing = missing) to some training row."""
    def keys(frame):
        return frame[spec.columns].astype(object).where(frame[spec.columns].notna(), MISSING).astype(str).agg("|".join, axis=1)

    return float(keys(synthetic).isin(set(keys(train))).mean())
