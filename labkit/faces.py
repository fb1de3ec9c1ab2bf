"""Faces for the chapter's four-step case (11.3.2.1): data, a face/non-face classifier, measurements.

* :func:`face_data` — scikit-image's 100 LFW faces and 100 non-face crops, resized to 32x32 and
  split into train and held-out parts (stratified) before anything is trained;
* :func:`load_face_folder` — a user's own folder of face images (CelebA, FFHQ thumbnails …) as
  grey squares of 32 or 64 px, with a :class:`~labkit.data.DataError` for a bad folder;
* :func:`face_classifier` / :func:`train_classifier` — a small CNN: face (1) vs non-face (0);
  its layer ``"features"`` is the feature space of KID here (see :func:`face_features`);
* :func:`case_study` — steps 2–4 of the case: train the classifier on real crops only, on real
  plus generated faces and on real plus augmented real faces, with several seeds, and evaluate on
  the held-out real crops.

KID here uses the face classifier's 64-dimensional penultimate features instead of Inception
features (a download that has never seen 32 px grey crops); its values compare within this
notebook only. With 30 held-out faces the estimate is noisy: compare it with its floor (held-out
real faces against training faces). Near-copies of training faces are measured with the digit
notebook's functions, which take images of any size: :func:`labkit.image_metrics.nearest_training`,
``near_copy_threshold`` and ``near_copy_share`` (see :mod:`labkit.nearest`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import DataError, load_faces
from .params import ParameterError, check_choice, check_fraction, check_int

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


# --- data ------------------------------------------------------------------------------------

def resize(images, size: int = 32) -> np.ndarray:
    """Resize (N, H, W) images in [0, 1] to (N, size, size) with bilinear interpolation (anti-aliased)."""
    import tensorflow as tf

    x = np.asarray(images, np.float32)
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {x.shape}")
    out = tf.image.resize(x[..., None], [size, size], method="bilinear", antialias=True).numpy()
    return np.clip(out[..., 0], 0.0, 1.0)


def face_data(holdout_fraction: float = 0.3, size: int = 32, seed: int = 0) -> dict:
    """The LFW subset resized to ``size`` px and split, stratified by class, into train / held-out.

    Returns ``x_train, y_train, x_holdout, y_holdout`` (y: 1 = face, 0 = non-face), the face-only
    parts ``faces_train, faces_holdout`` and the data ``card``.
    """
    fraction = check_fraction("holdout_fraction", holdout_fraction)
    size = check_choice("size", size, (32, 64))
    data = load_faces()
    x = resize(data.x, size)
    rng = np.random.default_rng(seed)
    train, holdout = [], []
    for label in (1, 0):
        index = rng.permutation(np.flatnonzero(data.y == label))
        n_holdout = int(round(fraction * len(index)))
        if n_holdout < 2 or len(index) - n_holdout < 2:
            raise ParameterError("holdout_fraction", holdout_fraction,
                                 "a share leaving at least 2 images of each class on each side")
        holdout.extend(index[:n_holdout])
        train.extend(index[n_holdout:])
    train, holdout = np.sort(train), np.sort(holdout)
    out = {"x_train": x[train], "y_train": data.y[train], "x_holdout": x[holdout],
           "y_holdout": data.y[holdout], "card": data.card}
    out["faces_train"] = out["x_train"][out["y_train"] == 1]
    out["faces_holdout"] = out["x_holdout"][out["y_holdout"] == 1]
    return out


def _read_grey(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path} is not a readable image ({err}); remove it or convert it") from err
    width, height = grey.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = grey.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(square, np.float32) / 255.0


def load_face_folder(path, size: int = 32, max_images: int | None = None, min_images: int = 10) -> np.ndarray:
    """A folder of face images (e.g. CelebA or FFHQ thumbnails) as (N, size, size) grey in [0, 1].

    Each image is centre-cropped to a square, converted to grey and resized. Files are read in
    name order; ``max_images`` keeps the first ones. Raises :class:`~labkit.data.DataError` when the
    folder is missing, holds fewer than ``min_images`` images or an image cannot be read.
    """
    size = check_choice("size", size, (32, 64))
    min_images = check_int("min_images", min_images, minimum=1)
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DataError(f"face folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file; give the folder that holds the face images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if max_images is not None:
        files = files[:check_int("max_images", max_images, minimum=1)]
    if len(files) < min_images:
        raise DataError(f"{folder} holds {len(files)} images ({', '.join(IMAGE_EXTENSIONS)}); "
                        f"at least {min_images} are needed")
    return np.stack([_read_grey(p, size) for p in files])


# --- the face / non-face classifier ----------------------------------------------------------

def face_classifier(image_size: int = 32, feature_dim: int = 64):
    """A small CNN: image → P(face). Its layer ``"features"`` gives the KID feature space."""
    import keras
    from keras import layers

    from .image_metrics import FEATURE_LAYER

    inputs = keras.Input((image_size, image_size, 1))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(feature_dim, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="face")(x)
    model = keras.Model(inputs, outputs, name="face_classifier")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def train_classifier(x, y, epochs: int = 40, batch_size: int = 32, seed: int = 0, steps: int | None = None):
    """Train :func:`face_classifier` on (N, S, S) images in [0, 1] with labels 1 = face, 0 = non-face.

    Classes are weighted by their inverse frequency, so adding extra faces does not shift the
    decision threshold just by changing the class balance. ``steps`` (instead of ``epochs``):
    about that many gradient steps whatever the set's size (whole epochs, rounded up), so that
    sets of different sizes get the same training.
    """
    import keras

    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.float32)
    if x.ndim != 3 or len(x) != len(y):
        raise ValueError(f"x must be (N, S, S) with one label each, got {x.shape} and {y.shape}")
    if set(np.unique(y)) != {0.0, 1.0}:
        raise ValueError("y must contain both classes, 1 = face and 0 = non-face")
    if steps is not None:
        epochs = int(np.ceil(check_int("steps", steps, minimum=1) / np.ceil(len(x) / batch_size)))
    keras.utils.set_random_seed(seed)
    model = face_classifier(x.shape[1])
    weights = {c: len(y) / (2.0 * (y == c).sum()) for c in (0, 1)}
    model.fit(x[..., None], y, epochs=check_int("epochs", epochs, minimum=1), batch_size=batch_size,
              class_weight=weights, shuffle=True, verbose=0)
    return model


def face_probability(model, images, batch_size: int = 1000) -> np.ndarray:
    """The classifier's P(face) for each image (N, S, S) in [0, 1]."""
    x = np.asarray(images, np.float32)[..., None]
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))[:, 0]
                           for i in range(0, len(x), batch_size)])


def face_score(model, images, threshold: float = 0.5) -> float:
    """Share of images the classifier accepts as faces (P(face) > ``threshold``)."""
    return float((face_probability(model, images) > threshold).mean())


def accuracy(model, x, y) -> float:
    """Face / non-face accuracy at threshold 0.5."""
    return float(((face_probability(model, x) > 0.5) == (np.asarray(y) == 1)).mean())


def face_features(model, images, batch_size: int = 1000) -> np.ndarray:
    """Penultimate (``"features"``) activations (N, 64) of the face classifier: KID's feature space."""
    from .image_metrics import feature_extractor

    extractor = feature_extractor(model)
    x = np.asarray(images, np.float32)[..., None]
    return np.concatenate([np.asarray(extractor(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)]).astype(np.float64)


# --- the four-step case ----------------------------------------------------------------------

CONDITIONS = ("real_only", "real_plus_generated", "real_plus_augmented")


def augmented_faces(faces, n: int, seed: int = 0) -> np.ndarray:
    """``n`` augmented copies of real faces: small rotation, zoom, shift, contrast and mirroring."""
    from .augment import augment_images, image_layers

    n = check_int("n", n, minimum=1)
    faces = np.asarray(faces, np.float32)
    source = faces[np.arange(n) % len(faces)]
    layers = image_layers(rotation=10, zoom=0.1, translation=0.08, contrast=0.2, flip=True,
                          image_size=faces.shape[1])
    return augment_images(source, layers, seed=seed)


def case_study(x_train, y_train, x_holdout, y_holdout, generated, augmented, seeds=(0, 1, 2),
               epochs: int = 40, progress=None, steps: int | None = None) -> dict:
    """Steps 2–4: train on each condition with every seed; held-out accuracies per condition.

    ``generated`` and ``augmented`` are extra face images (label 1) added to the real training set.
    ``steps``: the same number of gradient steps for every condition (see :func:`train_classifier`).
    Returns ``{condition: [accuracy per seed]}`` for :data:`CONDITIONS`.
    """
    extra = {"real_only": None, "real_plus_generated": generated, "real_plus_augmented": augmented}
    results = {c: [] for c in CONDITIONS}
    jobs = [(c, s) for s in seeds for c in CONDITIONS]
    for condition, seed in (progress(jobs, desc="classifiers") if progress else jobs):
        x, y = np.asarray(x_train), np.asarray(y_train)
        if extra[condition] is not None:
            x = np.concatenate([x, extra[condition]])
            y = np.concatenate([y, np.ones(len(extra[condition]), y.dtype)])
        model = train_classifier(x, y, epochs=epochs, seed=int(seed), steps=steps)
        results[condition].append(accuracy(model, x_holdout, y_holdout))
    return results
