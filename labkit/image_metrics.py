"""Measuring generated digits: a reference classifier and the metrics built on its features.

Used by the GAN notebook (04) and the VAE notebook. Images are always ``(N, 28, 28)`` (or
``(N, 28, 28, 1)``) floats in ``[0, 1]``; features are ``(N, D)`` float arrays.

Public API (stable)::

    clf = reference_classifier(run, x_train, y_train)     # trained once, cached in run.dir
    f_real = features(clf, x_test)                          # penultimate-layer features
    f_fake = features(clf, samples)
    fid(f_real, f_fake)                                     # Fréchet distance of two Gaussians
    kid(f_real, f_fake)                                     # unbiased MMD² with a cubic kernel
    density_coverage(f_real, f_fake, k=5)                   # {"density": .., "coverage": ..}
    predict_labels(clf, samples)                            # the classifier's digit for each sample
    class_shares(labels), classes_covered(labels, 0.05)     # class balance of samples
    nearest_training(samples, x_train)                      # index, distance of nearest train image (DCR)
    near_copy_threshold(x_holdout, x_train, quantile=0.01)  # the held-out floor: 1% of real new digits
    near_copy_share(samples, x_train, threshold)            # share of samples below it
    sample_report(clf, x_real, samples, x_train=.., threshold=..)  # all of the above in one dict

FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) are usually computed with Inception-v3
features from ImageNet; those weights are a download and know nothing of digits, so here a small
CNN trained on the real training digits defines the feature space. Numbers are therefore
comparable *within this workbook* (same classifier, same data), not with published MNIST FIDs.
Density and coverage follow Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics").
Near-copies are the pixel-space form of the distance to closest record, :mod:`labkit.nearest`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import files, nearest
from .params import ParameterError, check_int

FEATURE_LAYER = "features"


# --- input checks ---------------------------------------------------------------------------

def as_images(images, name: str = "images", size=(28, 28)) -> np.ndarray:
    """Return ``images`` as float32 ``(N, H, W, 1)`` in [0, 1], or raise a clear error.

    ``size`` is the required (H, W), 28x28 digits by default; ``None`` accepts any size.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1 or (size is not None and x.shape[1:3] != tuple(size)):
        want = "(N, H, W) or (N, H, W, 1)" if size is None else \
            f"(N, {size[0]}, {size[1]}) or (N, {size[0]}, {size[1]}, 1)"
        raise ValueError(f"{name} must have shape {want}, got {np.shape(images)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
                         "(a tanh generator's output x maps to [0, 1] with (x + 1) / 2)")
    return np.clip(x, 0.0, 1.0)


def _pair(f_real, f_fake, min_rows=2):
    """Two finite feature matrices (samples, features) of the same width, each with ``min_rows`` rows."""
    for f, name in ((f_real, "f_real"), (f_fake, "f_fake")):
        if np.ndim(f) != 2:
            raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {np.shape(f)}")
    return nearest.paired_rows(f_real, f_fake, ("f_real", "f_fake"), min_rows)


# --- the reference classifier ---------------------------------------------------------------

def build_classifier(feature_dim: int = 128, num_classes: int = 10):
    """A small CNN for 28x28 digits; its layer named ``"features"`` is the feature extractor."""
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(feature_dim, activation="relu", name=FEATURE_LAYER)(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="class")(x)
    model = keras.Model(inputs, outputs, name="reference_classifier")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _folder(run_or_dir) -> Path:
    folder = getattr(run_or_dir, "dir", run_or_dir)
    if not isinstance(folder, (str, Path)):
        raise TypeError(f"run_or_dir must be a labkit Run or a folder path, got {type(run_or_dir).__name__}")
    return Path(folder)


def reference_classifier(run_or_dir, x_train, y_train, epochs: int = 6, batch_size: int = 64,
                         seed: int = 0, name: str = "reference_classifier", verbose: bool = False,
                         reuse_from=None):
    """Train (or load from cache) the reference digit classifier.

    The model is saved as ``<folder>/<name>-<digest>.keras``, where the digest covers the training
    data and settings, so changing either retrains it. ``reuse_from`` is another notebook's output
    folder (e.g. ``<output_dir>/04_gan``): a model with the same digest found there, checksum and
    all, is loaded and saved into this folder instead of training again. To keep later random
    streams the same whether the model was trained or loaded, Python/NumPy/TensorFlow are re-seeded
    with ``seed`` before returning. The returned model carries ``model.cache_path`` and
    ``model.was_cached``.
    """
    from .run import seed_everything

    x = as_images(x_train, "x_train")
    y = np.asarray(y_train)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_train must be integer labels of shape ({len(x)},), got {y.dtype} {y.shape}")
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    digest = hashlib.sha1()
    for part in (x.tobytes(), y.astype(np.int64).tobytes(), f"{epochs}-{batch_size}-{seed}".encode()):
        digest.update(part)
    path = _folder(run_or_dir) / f"{name}-{digest.hexdigest()[:10]}.keras"
    model = files.load_keras_verified(path)  # safe_mode=True, SHA-256 checked; None means retrain
    if model is None and reuse_from is not None and (Path(reuse_from) / path.name).is_file():
        model = files.load_keras_verified(Path(reuse_from) / path.name)
        if model is not None:
            files.save_keras(model, path, checksum=True)
    cached = model is not None
    if not cached:
        seed_everything(seed)
        model = build_classifier(num_classes=int(y.max()) + 1)
        callbacks = []
        if verbose:
            from .progress import keras_progress
            callbacks.append(keras_progress(epochs, desc="reference classifier"))
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks)
        files.save_keras(model, path, checksum=True)
    seed_everything(seed)
    model.cache_path, model.was_cached = path, cached
    return model


def feature_extractor(model):
    """The sub-model from a classifier's input to its ``"features"`` layer (cached on the model)."""
    import keras

    extractor = getattr(model, "_labkit_extractor", None)
    if extractor is None:
        try:
            layer = model.get_layer(FEATURE_LAYER)
        except ValueError:
            raise ValueError(f"model has no layer named {FEATURE_LAYER!r}; "
                             "build it with image_metrics.build_classifier") from None
        extractor = keras.Model(model.input, layer.output)       # one input, not a list: no structure warning
        model._labkit_extractor = extractor
    return extractor


def _batched(model, x, batch_size):
    # a direct call per batch: much less overhead than ``model.predict`` for a few thousand images
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def features(model, images, batch_size: int = 1000) -> np.ndarray:
    """Penultimate-layer features ``(N, D)`` of images in [0, 1]."""
    return _batched(feature_extractor(model), as_images(images), batch_size).astype(np.float64)


def predict_labels(model, images, batch_size: int = 1000) -> np.ndarray:
    """The classifier's most likely digit for each image."""
    return _batched(model, as_images(images), batch_size).argmax(axis=1)


# --- distribution metrics ------------------------------------------------------------------

def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½), the Fréchet distance of two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(float), np.atleast_1d(mu2).astype(float)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(float), np.atleast_2d(sigma2).astype(float)
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
    return max(value, 0.0)


def fid(f_real, f_fake) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (lower is better, 0 = same)."""
    a, b = _pair(f_real, f_fake)
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def polynomial_kernel(a, b):
    """The KID kernel k(x, y) = (x·y / d + 1)³."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(a, b, kernel=polynomial_kernel) -> float:
    """Unbiased estimate of the squared MMD between the samples ``a`` and ``b``."""
    m, n = len(a), len(b)
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1))
                 + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean())


def kid(f_real, f_fake, subsets: int = 20, subset_size: int = 500, seed: int = 0,
        return_std: bool = False):
    """Kernel Inception Distance: the unbiased MMD² (cubic kernel) averaged over random subsets.

    Unbiased, so it can be slightly negative when the two sets come from one distribution.
    """
    a, b = _pair(f_real, f_fake)
    subsets = check_int("subsets", subsets, minimum=1)
    size = min(check_int("subset_size", subset_size, minimum=2), len(a), len(b))
    rng = np.random.default_rng(seed)
    values = np.array([mmd2_unbiased(a[rng.choice(len(a), size, replace=False)],
                                     b[rng.choice(len(b), size, replace=False)])
                       for _ in range(subsets)])
    return (float(values.mean()), float(values.std())) if return_std else float(values.mean())


def knn_radii(f, k: int) -> np.ndarray:
    """Distance from each row of ``f`` to its k-th nearest other row."""
    d = nearest.squared_distances(f, f)
    np.fill_diagonal(d, np.inf)
    return np.sqrt(np.partition(d, k - 1, axis=1)[:, k - 1])


def density_coverage(f_real, f_fake, k: int = 5, chunk: int = 2000) -> dict:
    """Density and coverage of fake features against real ones (Naeem et al. 2020).

    Each real point gets a ball reaching its k-th nearest real neighbour. *Density*: the mean
    number of balls a fake point falls in, divided by k (≈1 when fake matches real, >1 when fakes
    crowd dense regions). *Coverage*: the share of real balls holding at least one fake point.
    """
    k = check_int("k", k, minimum=1)
    a, b = _pair(f_real, f_fake, min_rows=k + 1)
    radii = knn_radii(a, k)
    inside_count = np.zeros(len(b))
    covered = np.zeros(len(a), dtype=bool)
    for start in range(0, len(b), chunk):
        inside = np.sqrt(nearest.squared_distances(b[start:start + chunk], a)) < radii[None, :]
        inside_count[start:start + chunk] = inside.sum(1)
        covered |= inside.any(0)
    return {"density": float(inside_count.mean() / k), "coverage": float(covered.mean())}


# --- class balance -------------------------------------------------------------------------

def class_shares(labels, num_classes: int = 10) -> np.ndarray:
    """Share of samples in each class (sums to 1)."""
    labels = np.asarray(labels).astype(int)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return np.bincount(labels, minlength=num_classes) / len(labels)


def classes_covered(labels, min_share: float = 0.05, num_classes: int = 10) -> int:
    """Number of classes holding at least ``min_share`` of the samples."""
    if not 0 <= min_share <= 1:
        raise ParameterError("min_share", min_share, "a share between 0 and 1")
    return int((class_shares(labels, num_classes) >= min_share).sum())


# --- memorisation --------------------------------------------------------------------------
# The image form of labkit.nearest's distance to closest record (DCR), in pixel space.

def _pixels(images):
    """Images of any size in [0, 1] -> pixel vectors (N, H*W), for :mod:`labkit.nearest`."""
    x = as_images(images, "images", size=None)
    return x.reshape(len(x), -1)


def _image_pair(samples, x_train):
    s = as_images(samples, "samples", size=None)
    t = as_images(x_train, "x_train", size=None)
    if s.shape[1:] != t.shape[1:]:
        raise ValueError(f"samples {s.shape[1:3]} and training images {t.shape[1:3]} differ in size")
    return s, t


def nearest_training(samples, x_train, chunk: int = 1000):
    """Index of, and pixel-space distance to (the DCR), the nearest training image of each sample.

    Images of any size (digits, 32x32 faces …), as long as samples and training images match.
    See :mod:`labkit.nearest` for the idea and its variants.
    """
    s, t = _image_pair(samples, x_train)
    index, distance = nearest.nearest_neighbours(s, t, k=1, feature_map=_pixels, chunk=chunk)
    return index[:, 0], distance[:, 0]


def near_copy_threshold(x_holdout, x_train, quantile: float = 0.01) -> float:
    """The near-copy distance: the ``quantile`` of held-out real images' distance to the closest
    training image (:func:`labkit.nearest.near_copy_threshold` in pixel space).

    Held-out images are not copies by construction, so with the default only 1% of real new
    images would be called near-copies; a generator far above that share is memorising.
    """
    h, t = _image_pair(x_holdout, x_train)
    return nearest.near_copy_threshold(h, t, quantile, feature_map=_pixels)


def near_copy_share(samples, x_train, threshold: float) -> float:
    """Near-copy share: samples whose nearest training image is closer than ``threshold`` (pixel L2)."""
    s, t = _image_pair(samples, x_train)
    return nearest.near_copy_share(s, t, threshold, feature_map=_pixels)


# --- everything at once --------------------------------------------------------------------

def sample_report(model, x_real, samples, x_train=None, threshold=None, f_real=None,
                  k: int = 5, kid_subsets: int = 20, seed: int = 0) -> dict:
    """FID, KID, density, coverage, class shares and (with ``x_train``/``threshold``) near-copies.

    ``x_real`` is the real reference set (held-out digits); pass ``f_real`` to reuse its features.
    """
    f_real = features(model, x_real) if f_real is None else f_real
    f_fake = features(model, samples)
    labels = predict_labels(model, samples)
    report = {"fid": fid(f_real, f_fake),
              "kid": kid(f_real, f_fake, subsets=kid_subsets, seed=seed),
              **density_coverage(f_real, f_fake, k=k),
              "class_shares": class_shares(labels),
              "classes_covered": classes_covered(labels)}
    if x_train is not None and threshold is not None:
        report["near_copy_share"] = near_copy_share(samples, x_train, threshold)
    return report
