"""Distance to closest record (DCR): the one nearest-neighbour distance of the workbook.

Every memorisation and privacy measure of the course is built on a single idea:

    **distance to closest record** (DCR) of a sample = the Euclidean distance from the sample to
    its nearest *training* record, measured in one feature space (pixels for images, encoded rows
    for tables, see ``feature_map``).

A DCR means little on its own: a blurry digit sits close to many training digits without copying
any. So it is always read against a **held-out floor**: the DCRs of real records that were *not*
trained on (new data from the same source). Its variants:

- **near-copy share** = the share of synthetic samples closer to the training set than the
  ``quantile`` of the held-out records' DCR (the *near-copy threshold*). Held-out records are not
  copies by construction, so about ``quantile`` of them fall below it; a generator far above that
  share is memorising. Images use ``quantile=0.01`` (:mod:`labkit.image_metrics`), the privacy
  report ``quantile=0.05`` (:func:`dcr_summary`).
- **DCR ratio** = median DCR of synthetic samples / median DCR of held-out records: about 1 when the
  generator does not sit closer to its training data than fresh data do, well below 1 when it copies.
- **NNDR** (nearest-neighbour distance ratio) = distance to the closest / to the second-closest
  training record: near 0 when a sample hugs one particular record rather than a region.
- **distance attack** (membership inference, :func:`labkit.privacy.distance_attack_scores`): the
  same distance the other way round, from a candidate record to the closest *synthetic* sample.

API::

    index, distance = nearest_neighbours(query, reference, k=1)       # (N, k) each, sorted by distance
    dcr = distance_to_closest_record(query, reference)                # (N,)
    threshold = near_copy_threshold(holdout, train, quantile=0.01)    # the held-out floor quantile
    near_copy_share(synthetic, train, threshold)                      # share below it
    dcr_summary(synthetic, train, holdout, quantile=0.05)             # DCR ratio, NNDR, near-copy shares

``feature_map`` (optional, every function) is applied to the query and the reference before
measuring, e.g. :func:`labkit.table_metrics.distance_features` for tables. Without it any array with
a leading sample axis is used as is, flattened to ``(N, D)`` (images become pixel vectors).

Distances are exact (brute force, no approximate index), in float64: the candidates are found in
chunks of query rows from ``|q|² + |r|² − 2 q·r`` (one matrix product), then their distances are
recomputed directly as ``|q − r|``, so a copy is at distance 0 exactly and no precision is lost to
the expansion.
"""
from __future__ import annotations

import numpy as np

from .params import ParameterError, check_int

MAX_BLOCK = 2 ** 24          # float64 entries of one chunk of the distance matrix (128 MB)


def as_rows(x, name: str = "rows", min_rows: int = 1) -> np.ndarray:
    """Any array with a leading sample axis -> finite float64 ``(N, D)``; images are flattened."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"{name} must have a sample axis and at least one feature, got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty")
    if len(a) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {len(a)}")
    a = a.reshape(len(a), -1)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def paired_rows(a, b, names=("query", "reference"), min_rows: int = 1, feature_map=None):
    """Two sets of rows (see :func:`as_rows`, after ``feature_map``) with the same number of features."""
    a, b = (as_rows(x if feature_map is None else feature_map(x), name, min_rows)
            for x, name in zip((a, b), names))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of features, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    return a, b


def squared_distances(a, b) -> np.ndarray:
    """All squared Euclidean distances between the rows of ``a`` (n, D) and ``b`` (m, D): (n, m)."""
    d = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def nearest_neighbours(query, reference, k: int = 1, feature_map=None, chunk: int = 1000):
    """Index of, and Euclidean distance to, the ``k`` nearest reference rows of each query row.

    Returns ``(index, distance)``, both ``(N, k)``, sorted by distance. ``chunk`` query rows are
    measured at a time (fewer if the reference is large).
    """
    q, r = paired_rows(query, reference, feature_map=feature_map)
    k = check_int("k", k, minimum=1, maximum=len(r))
    chunk = max(1, min(check_int("chunk", chunk, minimum=1), MAX_BLOCK // len(r)))
    index = np.empty((len(q), k), dtype=np.int64)
    distance = np.empty((len(q), k))
    for start in range(0, len(q), chunk):
        d = squared_distances(q[start:start + chunk], r)
        if k == 1:
            part = d.argmin(axis=1)[:, None]
        else:
            part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(r) else np.argsort(d, axis=1)
            part = np.take_along_axis(part, np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable"), 1)
        exact = np.sqrt(((q[start:start + chunk, None, :] - r[part]) ** 2).sum(-1))
        order = np.argsort(exact, axis=1, kind="stable")
        index[start:start + chunk] = np.take_along_axis(part, order, 1)
        distance[start:start + chunk] = np.take_along_axis(exact, order, 1)
    return index, distance


def distance_to_closest_record(query, reference, feature_map=None, chunk: int = 1000) -> np.ndarray:
    """DCR: for each query row, the Euclidean distance to its nearest reference row, shape (N,)."""
    return nearest_neighbours(query, reference, 1, feature_map, chunk)[1][:, 0]


def _check_quantile(quantile):
    if not 0 < quantile < 1:
        raise ParameterError("quantile", quantile, "a number strictly between 0 and 1")
    return float(quantile)


def near_copy_threshold(holdout, reference, quantile: float = 0.01, feature_map=None) -> float:
    """The held-out floor: the ``quantile`` of held-out records' DCR to the ``reference`` (training) set.

    Held-out records are not copies by construction, so only ``quantile`` of them are closer than
    this; a generator whose samples fall below it much more often is memorising.
    """
    quantile = _check_quantile(quantile)
    return float(np.quantile(distance_to_closest_record(holdout, reference, feature_map), quantile))


def near_copy_share(query, reference, threshold: float, feature_map=None) -> float:
    """Near-copy share: the share of query rows whose DCR to ``reference`` is below ``threshold``."""
    if not np.isfinite(threshold) or threshold < 0:
        raise ParameterError("threshold", threshold, "a non-negative distance")
    return float((distance_to_closest_record(query, reference, feature_map) < threshold).mean())


def dcr_summary(synthetic, train, holdout, quantile: float = 0.05, feature_map=None) -> dict:
    """DCR ratio, NNDR and near-copy shares of ``synthetic`` against the held-out floor.

    Synthetic rows and real *held-out* rows are both measured against the training rows.
    ``dcr_ratio`` = median DCR of synthetic / median DCR of held-out rows (<1: closer than new data);
    ``nndr_*_median`` = median closest / second-closest training distance (near 0: hugs one record);
    ``near_copy_share_*`` = share of rows closer than the held-out ``quantile`` of DCR (the held-out
    side's share is ``quantile`` by construction). Also returns the DCR arrays ``dcr_synthetic`` and
    ``dcr_holdout`` (for a histogram) and the ``near_copy_threshold``.
    """
    quantile = _check_quantile(quantile)
    t = as_rows(train if feature_map is None else feature_map(train), "train")
    syn = nearest_neighbours(synthetic if feature_map is None else feature_map(synthetic), t, k=2)[1]
    hold = nearest_neighbours(holdout if feature_map is None else feature_map(holdout), t, k=2)[1]
    threshold = float(np.quantile(hold[:, 0], quantile))

    def nndr(d):
        return d[:, 0] / np.maximum(d[:, 1], 1e-12)

    return {
        "dcr_synthetic_median": float(np.median(syn[:, 0])),
        "dcr_holdout_median": float(np.median(hold[:, 0])),
        "dcr_ratio": float(np.median(syn[:, 0]) / max(np.median(hold[:, 0]), 1e-12)),
        "nndr_synthetic_median": float(np.median(nndr(syn))),
        "nndr_holdout_median": float(np.median(nndr(hold))),
        "near_copy_share_synthetic": float((syn[:, 0] < threshold).mean()),
        "near_copy_share_holdout": float((hold[:, 0] < threshold).mean()),
        "near_copy_threshold": threshold,
        "dcr_synthetic": syn[:, 0], "dcr_holdout": hold[:, 0],
    }
