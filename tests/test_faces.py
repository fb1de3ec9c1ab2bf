"""labkit.faces: the split, a user's face folder, the classifier, near-copies of faces and the case helpers."""
import numpy as np
import pytest

from labkit import faces
from labkit import image_metrics as im
from labkit.data import DataError
from labkit.params import ParameterError

pytest.importorskip("skimage")


def test_face_data_split_is_stratified_disjoint_and_seeded():
    data = faces.face_data(holdout_fraction=0.3, seed=0)
    assert data["x_train"].shape == (140, 32, 32) and data["x_holdout"].shape == (60, 32, 32)
    assert data["y_train"].sum() == 70 and data["y_holdout"].sum() == 30
    assert data["faces_train"].shape == (70, 32, 32) and data["faces_holdout"].shape == (30, 32, 32)
    assert 0 <= data["x_train"].min() and data["x_train"].max() <= 1
    train = {x.tobytes() for x in data["x_train"]}
    assert not any(x.tobytes() in train for x in data["x_holdout"])
    np.testing.assert_array_equal(faces.face_data(seed=0)["x_holdout"], data["x_holdout"])
    assert not np.array_equal(faces.face_data(seed=1)["x_holdout"], data["x_holdout"])
    with pytest.raises(ParameterError, match="holdout_fraction"):
        faces.face_data(holdout_fraction=0.999)
    with pytest.raises(ParameterError, match="size"):
        faces.face_data(size=48)


def _write_images(folder, n, size=(40, 30)):
    from PIL import Image

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")


def test_load_face_folder_reads_grey_squares(tmp_path):
    _write_images(tmp_path / "faces", 12)
    from PIL import Image

    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(tmp_path / "faces" / "white.jpg")
    (tmp_path / "faces" / "notes.txt").write_text("not an image")
    x = faces.load_face_folder(tmp_path / "faces", size=32)
    assert x.shape == (13, 32, 32) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[-1], 1.0)                     # white.jpg sorts last
    assert faces.load_face_folder(tmp_path / "faces", size=64, max_images=5, min_images=5).shape == (5, 64, 64)


def test_load_face_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        faces.load_face_folder(tmp_path / "missing")
    _write_images(tmp_path / "few", 3)
    with pytest.raises(DataError, match="holds 3 images"):
        faces.load_face_folder(tmp_path / "few")
    with pytest.raises(DataError, match="is a file"):
        faces.load_face_folder(tmp_path / "few" / "000.png")
    _write_images(tmp_path / "bad", 10)
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png"):
        faces.load_face_folder(tmp_path / "bad")
    with pytest.raises(ParameterError, match="size"):
        faces.load_face_folder(tmp_path / "bad", size=28)


def test_nearest_training_matches_brute_force_on_32px_faces():
    """Reference: a direct NumPy loop over every (sample, training face) pair."""
    rng = np.random.default_rng(1)
    samples, train = rng.random((20, 32, 32)), rng.random((15, 32, 32))
    index, distance = im.nearest_training(samples, train, chunk=7)
    brute = np.array([[np.linalg.norm(a - b) for b in train] for a in samples])
    np.testing.assert_array_equal(index, brute.argmin(1))
    np.testing.assert_allclose(distance, brute.min(1), rtol=1e-5)
    with pytest.raises(ValueError, match="differ in size"):
        im.nearest_training(rng.random((2, 28, 28)), train)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        im.nearest_training(samples * 3, train)


def test_near_copy_share_counts_copies():
    rng = np.random.default_rng(2)
    train, holdout = rng.random((30, 32, 32)), rng.random((20, 32, 32))
    threshold = im.near_copy_threshold(holdout, train)
    samples = np.concatenate([train[:5] + 0.001, rng.random((15, 32, 32))])
    assert im.near_copy_share(samples, train, threshold) == pytest.approx(5 / 20)
    with pytest.raises(ParameterError, match="quantile"):
        im.near_copy_threshold(holdout, train, quantile=1.0)


def _toy_task(n=40, seed=3):
    """Bright discs (faces, 1) against flat noise (non-faces, 0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    disc = ((yy - 16) ** 2 + (xx - 16) ** 2 < 100).astype("float32")
    x = rng.random((n, 32, 32)).astype("float32") * 0.3
    y = np.arange(n) % 2
    x[y == 1] += 0.7 * disc
    return np.clip(x, 0, 1), y


@pytest.mark.filterwarnings("error::UserWarning")   # no Keras input-structure warning in 07's output
def test_classifier_learns_a_toy_task_and_scores():
    x, y = _toy_task()
    model = faces.train_classifier(x, y, epochs=15, seed=0)
    x_test, y_test = _toy_task(seed=4)
    assert faces.accuracy(model, x_test, y_test) >= 0.9
    assert faces.face_score(model, x_test[y_test == 1]) >= 0.9
    assert faces.face_features(model, x_test).shape == (40, 64)
    with pytest.raises(ValueError, match="both classes"):
        faces.train_classifier(x, np.ones(len(x)))


def test_case_study_and_augmented_faces():
    x, y = _toy_task()
    extra = faces.augmented_faces(x[y == 1], 10, seed=0)
    assert extra.shape == (10, 32, 32) and 0 <= extra.min() and extra.max() <= 1
    assert not np.allclose(extra, x[y == 1][:10])
    results = faces.case_study(x, y, x, y, generated=x[y == 1][:10], augmented=extra, seeds=(0, 1), epochs=1)
    assert set(results) == set(faces.CONDITIONS)
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in results.values())
