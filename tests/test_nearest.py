"""labkit.nearest: one distance to closest record for images, tables and the privacy attacks.

Checked against scikit-learn's ``NearestNeighbors`` (brute force) and against the three
implementations it replaced (kept below, verbatim in substance, as oracles).
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from labkit import image_metrics as im
from labkit import nearest, privacy
from labkit import table_metrics as tm
from labkit.params import ParameterError
from labkit.tabular import TableSpec


# --- the replaced implementations, as oracles ---------------------------------------------------

def _old_sq_distances(a, b):                            # image_metrics._sq_distances
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def _old_nearest_training(samples, x_train, chunk=1000):     # image_metrics.nearest_training
    s = np.asarray(samples, np.float64).reshape(len(samples), -1)
    t = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    index, distance = np.empty(len(s), dtype=np.int64), np.empty(len(s))
    for start in range(0, len(s), chunk):
        d = _old_sq_distances(s[start:start + chunk], t)
        index[start:start + chunk] = d.argmin(1)
        distance[start:start + chunk] = np.sqrt(d.min(1))
    return index, distance


def _old_nearest_distances(q, r, k=1, chunk=1000):     # privacy.nearest_distances
    q, r = np.asarray(q, np.float64).reshape(len(q), -1), np.asarray(r, np.float64).reshape(len(r), -1)
    r_sq, out = (r ** 2).sum(1), np.empty((len(q), k))
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        d = np.maximum((block ** 2).sum(1)[:, None] + r_sq[None, :] - 2 * block @ r.T, 0.0)
        part = np.partition(d, k - 1, axis=1)[:, :k] if k < len(r) else d
        out[start:start + chunk] = np.sqrt(np.sort(part, axis=1)[:, :k])
    return out


def _sklearn(q, r, k):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(r)
    distance, index = nn.kneighbors(q)
    return index, distance


# --- the primitive --------------------------------------------------------------------------------

@pytest.mark.parametrize("k, chunk", [(1, 1000), (1, 7), (3, 10), (53, 16)])
def test_nearest_neighbours_match_sklearn(k, chunk):
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(53, 5))
    index, distance = nearest.nearest_neighbours(q, r, k=k, chunk=chunk)
    want_index, want_distance = _sklearn(q, r, k)
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_allclose(distance, want_distance, rtol=1e-10, atol=1e-10)
    assert (np.diff(distance, axis=1) >= 0).all()


def test_nearest_neighbours_equal_the_replaced_functions():
    """Same neighbours; distances equal up to the old expansion's rounding (now recomputed exactly)."""
    rng = np.random.default_rng(1)
    images, train = rng.random((230, 28, 28)), rng.random((300, 28, 28))
    old_index, old_distance = _old_nearest_training(images, train, chunk=100)
    index, distance = nearest.nearest_neighbours(images, train, chunk=100)
    np.testing.assert_array_equal(index[:, 0], old_index)
    np.testing.assert_allclose(distance[:, 0], old_distance, rtol=1e-12, atol=1e-7)
    rows, ref = rng.normal(size=(120, 9)), rng.normal(size=(80, 9))
    np.testing.assert_allclose(nearest.nearest_neighbours(rows, ref, k=2, chunk=50)[1],
                               _old_nearest_distances(rows, ref, k=2, chunk=50), rtol=1e-12, atol=1e-7)
    np.testing.assert_array_equal(nearest.squared_distances(rows, ref), _old_sq_distances(rows, ref))
    brute = np.linalg.norm(rows[:, None] - ref[None], axis=2)
    np.testing.assert_array_equal(nearest.nearest_neighbours(rows, ref, k=3)[1], np.sort(brute, axis=1)[:, :3])


def test_a_record_is_its_own_closest_record():
    rng = np.random.default_rng(2)
    images = rng.random((4, 28, 28))
    assert (nearest.distance_to_closest_record(images, images) == 0).all()
    index, _ = nearest.nearest_neighbours(images, images)
    np.testing.assert_array_equal(index[:, 0], np.arange(4))


def test_feature_map_is_applied_to_both_sides():
    rng = np.random.default_rng(3)
    q, r = rng.normal(size=(20, 4)), rng.normal(size=(30, 4))
    scaled = nearest.distance_to_closest_record(q, r, feature_map=lambda x: 2 * np.asarray(x))
    np.testing.assert_allclose(scaled, 2 * nearest.distance_to_closest_record(q, r))


def test_clear_errors():
    q, r = np.zeros((3, 5)), np.zeros((4, 5))
    with pytest.raises(ValueError, match="same number of features"):
        nearest.nearest_neighbours(q, r[:, :4])
    with pytest.raises(ParameterError, match="'k'"):
        nearest.nearest_neighbours(q, r, k=0)
    with pytest.raises(ParameterError, match="'k'"):
        nearest.nearest_neighbours(q, r, k=5)
    with pytest.raises(ValueError, match="NaN"):
        nearest.nearest_neighbours(np.full((2, 5), np.nan), r)
    with pytest.raises(ValueError, match="empty"):
        nearest.nearest_neighbours(np.zeros((0, 5)), r)
    with pytest.raises(ValueError, match="sample axis"):
        nearest.nearest_neighbours(np.zeros(5), r)
    with pytest.raises(ParameterError, match="quantile"):
        nearest.near_copy_threshold(q, r, quantile=0)
    with pytest.raises(ParameterError, match="threshold"):
        nearest.near_copy_share(q, r, threshold=np.nan)


# --- the held-out floor and its variants ------------------------------------------------------------

def test_near_copy_share_against_the_held_out_floor():
    rng = np.random.default_rng(4)
    train, holdout = rng.normal(size=(400, 6)), rng.normal(size=(300, 6))
    threshold = nearest.near_copy_threshold(holdout, train, quantile=0.05)
    assert nearest.near_copy_share(holdout, train, threshold) == pytest.approx(0.05, abs=0.01)
    copies = np.r_[train[:30] + 1e-4, rng.normal(size=(70, 6))]
    assert nearest.near_copy_share(copies, train, threshold) >= 0.30


def test_dcr_summary_sees_copies():
    rng = np.random.default_rng(1)
    train, holdout, fresh = rng.normal(size=(400, 6)), rng.normal(size=(300, 6)), rng.normal(size=(300, 6))
    same = nearest.dcr_summary(fresh, train, holdout)
    assert same["dcr_ratio"] == pytest.approx(1.0, abs=0.1)
    assert same["near_copy_share_holdout"] == pytest.approx(0.05, abs=0.01)
    assert same["near_copy_threshold"] == pytest.approx(nearest.near_copy_threshold(holdout, train, 0.05))
    copies = nearest.dcr_summary(train[:300] + 1e-3 * rng.normal(size=(300, 6)), train, holdout)
    assert copies["dcr_ratio"] < 0.01 and copies["near_copy_share_synthetic"] == 1.0
    assert copies["nndr_synthetic_median"] < 0.01 < same["nndr_synthetic_median"]
    # the replaced privacy.dcr_summary computed the same numbers from its own distances
    old = _old_nearest_distances(fresh, train, k=2)
    assert same["dcr_synthetic_median"] == pytest.approx(np.median(old[:, 0]), rel=1e-12)
    assert same["nndr_synthetic_median"] == pytest.approx(np.median(old[:, 0] / old[:, 1]), rel=1e-12)


# --- the three users: images, tables, the attack --------------------------------------------------

def test_images_tables_and_the_attack_share_one_distance():
    rng = np.random.default_rng(5)
    samples, train = rng.random((40, 28, 28)), rng.random((60, 28, 28))
    index, distance = im.nearest_training(samples, train)             # pixels as float32, as before
    pixels, train_pixels = samples.astype(np.float32), train.astype(np.float32)
    np.testing.assert_array_equal(distance, nearest.distance_to_closest_record(pixels, train_pixels))
    np.testing.assert_array_equal(index, _old_nearest_training(pixels, train_pixels)[0])
    np.testing.assert_array_equal(privacy.distance_attack_scores(pixels, train_pixels), -distance)

    spec = TableSpec(numeric=["x", "y"], categorical=["c"])
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": np.where(rng.random(200) < 0.1, np.nan, rng.random(200)),
                          "c": rng.choice(["a", "b", None], 200)})
    query, reference = frame.iloc[:50], frame.iloc[50:]
    encoded_q = tm.encode_for_distance(query, reference, spec)
    encoded_r = tm.encode_for_distance(reference, reference, spec)
    want = _sklearn(encoded_q, encoded_r, 1)[1][:, 0]              # what tabular.py computed before
    np.testing.assert_allclose(tm.distance_to_closest_record(query, reference, spec), want, rtol=1e-10, atol=1e-7)
    fmap = tm.distance_features(reference, spec)
    np.testing.assert_array_equal(tm.distance_to_closest_record(query, reference, spec),
                                  nearest.distance_to_closest_record(query, reference, feature_map=fmap))
