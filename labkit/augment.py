"""Image augmentation (11.1.3): Keras preprocessing layers in a reproducible ``tf.data`` pipeline.

Each operation changes *how* a digit looks while keeping *which* digit it is — within limits:

========================  =========================================  ===================================
operation                 what it preserves                          where it breaks
========================  =========================================  ===================================
rotation (small angles)   shape, stroke order, label                 ~±90°: a 6 becomes a 9
zoom / scaling            shape up to size, label                    strong zoom-in cuts strokes off
translation / crop        everything but the position                 shifting the digit out of frame
contrast                  geometry, label                            contrast 0 erases the image
horizontal flip           nothing for digits: 2, 3, 4, 7 … mirror     always (label-changing for text/digits)
                          into shapes that are not digits
========================  =========================================  ===================================

Text augmentation lives in :mod:`labkit.augment_text`, audio in :mod:`labkit.audio`.

The pipeline batches first and then maps the layers over whole batches in parallel
(``num_parallel_calls=AUTOTUNE``): one vectorised call per batch instead of one per image. Every
batch gets its own *stateless* seed derived from ``(seed, batch index)``, so two runs with the same
seed give the same augmented images even though batches are processed in parallel, in any order.
"""
from __future__ import annotations

import numpy as np

from .params import ParameterError, check_float, check_int

IMAGE_OPS = ("rotation", "zoom", "translation", "crop", "contrast", "flip")


def _check_images(images, name="images"):
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    return images


def image_layers(rotation: float = 0.0, zoom: float = 0.0, translation: float = 0.0,
                 crop: int = 0, contrast: float = 0.0, flip: bool = False, image_size: int = 28,
                 fused: bool = False):
    """Keras preprocessing layers for the requested strengths (0 = switched off).

    With ``fused=True`` rotation, zoom and translation become one :class:`RandomAffine` layer: one
    resampling per batch instead of three (faster, and the image is interpolated once, not three
    times).

    ``rotation`` is the largest angle in degrees, ``zoom`` the largest relative scale change
    (0.2 = 80 %…120 %), ``translation`` the largest shift as a fraction of the side, ``crop`` a
    number of pixels: pad by ``crop`` and cut a random ``image_size`` window back out, ``contrast``
    the largest relative contrast change, ``flip`` a random left-right mirror.
    """
    import keras

    rotation = check_float("rotation", rotation, 0.0, 180.0)
    zoom = check_float("zoom", zoom, 0.0, 0.9)
    translation = check_float("translation", translation, 0.0, 0.5)
    crop = check_int("crop", crop, 0, image_size)
    contrast = check_float("contrast", contrast, 0.0, 1.0)
    if not isinstance(flip, bool):
        raise ParameterError("flip", flip, "True or False")
    layers = []
    fill = dict(fill_mode="constant", fill_value=0.0)
    if fused and (rotation or zoom or translation):
        layers.append(random_affine_layer(rotation, zoom, translation))
        rotation = zoom = translation = 0.0
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation / 360.0, **fill))
    if zoom:
        layers.append(keras.layers.RandomZoom((-zoom, zoom), **fill))
    if translation:
        layers.append(keras.layers.RandomTranslation(translation, translation, **fill))
    if crop:
        layers.append(keras.layers.ZeroPadding2D(crop))
        layers.append(keras.layers.RandomCrop(image_size, image_size))
    if contrast:
        layers.append(keras.layers.RandomContrast(contrast, value_range=(0.0, 1.0)))
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    return layers


def random_affine_layer(rotation: float = 0.0, zoom: float = 0.0, translation: float = 0.0,
                        seed=None):
    """A Keras layer: random rotation (degrees), zoom and translation as ONE affine resampling."""
    import keras
    from keras import ops

    class RandomAffine(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.rotation, self.zoom, self.translation = rotation, zoom, translation
            self.generator = keras.random.SeedGenerator(seed)

        def get_random_transformation(self, images, training=True, seed=None):
            seed = self.generator if seed is None else seed
            n = ops.shape(images)[0]
            uniform = lambda bound: keras.random.uniform((n,), -bound, bound, seed=seed)  # noqa: E731
            return {"angle": uniform(self.rotation) * (np.pi / 180.0),
                    "scale": 1.0 + uniform(self.zoom),
                    "shift_x": uniform(self.translation), "shift_y": uniform(self.translation)}

        def transform_images(self, images, transformation, training=True):
            height, width = ops.shape(images)[1], ops.shape(images)[2]
            t = transformation
            cos, sin = ops.cos(t["angle"]) / t["scale"], ops.sin(t["angle"]) / t["scale"]
            cx, cy = (ops.cast(width, "float32") - 1) / 2, (ops.cast(height, "float32") - 1) / 2
            tx, ty = t["shift_x"] * ops.cast(width, "float32"), t["shift_y"] * ops.cast(height, "float32")
            # output pixel p reads the input at M (p - c - t) + c, M = rotation / scale
            ox, oy = cx + tx, cy + ty
            zero = ops.zeros_like(cos)
            matrix = ops.stack([cos, sin, cx - cos * ox - sin * oy,
                                -sin, cos, cy + sin * ox - cos * oy, zero, zero], axis=1)
            return ops.image.affine_transform(images, matrix, interpolation="bilinear",
                                              fill_mode="constant", fill_value=0.0)

        def call(self, images, training=True):
            if not training:
                return images
            return self.transform_images(images, self.get_random_transformation(images))

    return RandomAffine()


def _stateless_seed_generator(seed_pair):
    """A Keras ``SeedGenerator`` stand-in whose draws come from a fixed (traced) seed tensor."""
    import keras
    import tensorflow as tf

    class _BatchSeed(keras.random.SeedGenerator):
        def __init__(self, pair):  # no variable: all state is in the seed tensor
            self._pair, self._draws = pair, 0

        def next(self, ordered=True):
            self._draws += 1  # distinct, deterministic sub-seed for every random draw in the graph
            return tf.random.experimental.stateless_fold_in(self._pair, self._draws)

    return _BatchSeed(seed_pair)


def apply_layers(layers, images, seed_pair=None):
    """Apply preprocessing layers to a batch ``(N, H, W, C)``; with ``seed_pair`` (a (2,) int tensor)
    every random draw is stateless, so the result depends only on the images and the seed."""
    for layer in layers:
        if not hasattr(layer, "get_random_transformation"):
            images = layer(images)
            continue
        seed = None if seed_pair is None else _stateless_seed_generator(seed_pair)
        transformation = layer.get_random_transformation(images, training=True, seed=seed)
        images = layer.transform_images(images, transformation, training=True)
    return images


def augment_dataset(images, labels, layers, batch_size: int = 128, seed: int = 0,
                    shuffle: bool = True, repeat: bool = False, parallel: bool = True):
    """A ``tf.data`` pipeline: shuffle → (repeat) → batch → map(gather + augment, parallel) → prefetch.

    Images are (N, H, W) or (N, H, W, C) floats in [0, 1]; the output keeps shape, dtype float32 and
    range [0, 1]. The same ``seed`` gives the same batches, whether ``parallel`` or not.
    """
    import tensorflow as tf

    images = _check_images(images).astype("float32")
    if images.ndim == 3:
        images = images[..., None]
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed, 0, 2**31 - 1)
    images_t, labels_t = tf.constant(images), tf.constant(labels)
    # shuffle and batch *indices*, then gather whole batches: far cheaper than slicing single images
    order = tf.data.Dataset.range(len(images))
    if shuffle:
        order = order.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        order = order.repeat()
    ds = order.batch(batch_size).enumerate()

    def augment(index, batch):
        x, y = tf.gather(images_t, batch), tf.gather(labels_t, batch)
        pair = tf.stack([tf.constant(seed, tf.int64), index])
        x = apply_layers(layers, x, pair)
        return tf.clip_by_value(tf.cast(x, tf.float32), 0.0, 1.0), y

    calls = tf.data.AUTOTUNE if parallel else None
    return ds.map(augment, num_parallel_calls=calls, deterministic=True).prefetch(tf.data.AUTOTUNE)


def augment_images(images, layers, seed: int = 0, batch_size: int = 256):
    """Augment a NumPy array of images once (same shape and dtype as given, values in [0, 1])."""
    images = _check_images(images)
    squeeze = images.ndim == 3
    ds = augment_dataset(images, np.zeros(len(images)), layers, batch_size=batch_size, seed=seed,
                         shuffle=False)
    out = np.concatenate([x.numpy() for x, _ in ds]) if len(images) else images[..., None]
    out = out[..., 0] if squeeze else out
    return out.astype(images.dtype if images.dtype.kind == "f" else np.float32)


# -- the plain loop the pipeline is compared with ---------------------------------------------
def _affine_about_centre(image, angle_deg, scale, shift_yx, order=1):
    from scipy import ndimage

    image = ndimage.rotate(image, angle_deg, reshape=False, order=order, mode="constant")
    centre = (np.array(image.shape) - 1) / 2.0
    image = ndimage.affine_transform(image, np.eye(2) / scale, offset=centre - centre / scale,
                                     order=order, mode="constant")
    return ndimage.shift(image, shift_yx, order=order, mode="constant")


def _fused_affine(image, angle_deg, scale, shift_yx, order=1):
    from scipy import ndimage

    theta = np.deg2rad(angle_deg)
    matrix = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]]) / scale
    centre = (np.array(image.shape) - 1) / 2.0
    offset = centre - matrix @ (centre + np.asarray(shift_yx))
    return ndimage.affine_transform(image, matrix, offset=offset, order=order, mode="constant")


def loop_augment(images, rotation=0.0, zoom=0.0, translation=0.0, contrast=0.0, seed=0,
                 fused=False):
    """The same random rotation, zoom, translation and contrast, one image at a time with SciPy.

    This is the plain loop the ``tf.data`` pipeline is timed against (``fused=True``: one
    ``affine_transform`` per image instead of rotate, zoom and shift); it is also how the notebook
    makes its *shifted* test set (an implementation independent of the Keras layers).
    """
    images = _check_images(images)
    rng = np.random.default_rng(seed)
    out = np.empty(images.shape, dtype=np.float32)
    size = images.shape[1]
    for i, image in enumerate(images):
        angle = rng.uniform(-rotation, rotation)
        scale = 1.0 + rng.uniform(-zoom, zoom)
        shift = rng.uniform(-translation, translation, size=2) * size
        warp = _fused_affine if fused else _affine_about_centre
        warped = warp(image.astype(np.float32), angle, scale, shift)
        if contrast:
            mean = warped.mean()
            warped = (warped - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        out[i] = np.clip(warped, 0.0, 1.0)
    return out


def shifted_test_set(images, rotation=25.0, zoom=0.2, translation=0.12, seed=1):
    """Held-out images moved off the training distribution: rotated, scaled and translated."""
    return loop_augment(images, rotation=rotation, zoom=zoom, translation=translation, seed=seed)


def _best_rate(n, run, repeats):
    import time

    best = 0.0
    for _ in range(check_int("repeats", repeats, 1)):
        start = time.perf_counter()
        run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def _drain(ds):
    for _ in ds:
        pass


def pipeline_throughput(images, layers, batch_size: int = 256, repeats: int = 3, seed: int = 0):
    """Images per second through :func:`augment_dataset`: the best of ``repeats`` timed passes
    (like ``timeit``: the best pass is the one least disturbed by other programs), after one untimed
    pass that traces the graph."""
    images = _check_images(images)
    ds = augment_dataset(images, np.zeros(len(images)), layers, batch_size=batch_size, seed=seed,
                         shuffle=False)
    _drain(ds)  # trace the graph once
    return _best_rate(len(images), lambda: _drain(ds), repeats)


def loop_throughput(images, seed: int = 0, repeats: int = 3, **loop_kwargs):
    """Images per second of :func:`loop_augment` (one core, one image at a time), best of ``repeats``."""
    images = _check_images(images)
    return _best_rate(len(images), lambda: loop_augment(images, seed=seed, **loop_kwargs), repeats)


def throughput(images, layers, loop_kwargs, batch_size: int = 256, repeats: int = 3, seed: int = 0):
    """Images per second of the ``tf.data`` pipeline and of the per-image SciPy loop on the same
    images, timed in alternation (pipeline pass, loop pass, …) so both see the same machine load.

    Returns ``{"pipeline": ips, "loop": ips, "speedup": ratio}`` with the best pass of each.
    """
    images = _check_images(images)
    ds = augment_dataset(images, np.zeros(len(images)), layers, batch_size=batch_size, seed=seed,
                         shuffle=False)
    _drain(ds)  # trace the graph once
    pipeline = loop = 0.0
    for _ in range(check_int("repeats", repeats, 1)):
        pipeline = max(pipeline, _best_rate(len(images), lambda: _drain(ds), 1))
        loop = max(loop, _best_rate(len(images), lambda: loop_augment(images, seed=seed, **loop_kwargs), 1))
    return {"pipeline": pipeline, "loop": loop, "speedup": pipeline / loop}


def throughput_table(images, pipelines: dict, loops: dict, batch_size: int = 256, repeats: int = 5,
                     seed: int = 0) -> dict:
    """Images per second of several pipelines (name → layers) and loops (name → ``loop_augment``
    keyword arguments) on the same images, timed round-robin (one pass of each, ``repeats`` times)
    so all see the same machine load; the best pass of each counts. Returns name → images/s."""
    images = _check_images(images)
    runs = {}
    for name, layers in pipelines.items():
        ds = augment_dataset(images, np.zeros(len(images)), layers, batch_size=batch_size, seed=seed,
                             shuffle=False)
        _drain(ds)  # trace the graph once
        runs[name] = (lambda ds=ds: _drain(ds))
    for name, kwargs in loops.items():
        runs[name] = (lambda kwargs=kwargs: loop_augment(images, seed=seed, **kwargs))
    best = dict.fromkeys(runs, 0.0)
    for _ in range(check_int("repeats", repeats, 1)):
        for name, run in runs.items():
            best[name] = max(best[name], _best_rate(len(images), run, 1))
    return best


# --- differentiable augmentation for GAN training (DiffAugment, Zhao et al. 2020) -------------

DIFF_AUGMENT_OPS = ("brightness", "contrast", "translation", "cutout")


def check_diff_augment(policy) -> tuple:
    """Parse a DiffAugment policy such as ``"translation,cutout"`` into a tuple of operations.

    ``None`` or ``""`` means no augmentation (an empty tuple). Unknown names raise a
    :class:`~labkit.params.ParameterError` listing the allowed ones.
    """
    if policy is None or policy == "":
        return ()
    if isinstance(policy, str):
        policy = [p.strip() for p in policy.split(",") if p.strip()]
    ops = tuple(policy)
    for op in ops:
        if op not in DIFF_AUGMENT_OPS:
            raise ParameterError("diffaugment", op, "comma-separated names from " + ", ".join(DIFF_AUGMENT_OPS))
    return ops


def _shift_matrices(shifts, size):
    """(N, size, size) matrices M with (M @ v)[i] = v[i - shift]: an integer shift with zero fill."""
    import tensorflow as tf

    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    return tf.cast(tf.equal(cols, rows - shifts[:, None, None]), tf.float32)


def diff_augment(images, policy="translation,cutout,brightness,contrast", translation: float = 0.125,
                 cutout: float = 0.5, seed=None):
    """DiffAugment: random, *differentiable* transforms of a batch (N, H, W, C) in [-1, 1].

    Gradients flow through every operation to the images, so a GAN can apply the same kind of
    transform to real and generated images whenever the discriminator looks at them — D never
    sees an un-augmented image and cannot memorise the few real ones, while G still learns the
    un-augmented distribution (the transforms are applied *after* G). Each image gets its own draw:

    * ``brightness``: add U(-0.5, 0.5); ``contrast``: scale the deviation from the image mean by U(0.5, 1.5);
    * ``translation``: shift by up to ``translation`` × size pixels in each direction, filling with 0;
    * ``cutout``: set a square of side ``cutout`` × size at a random place to 0.

    Operations run in the order brightness, contrast, translation, cutout, whatever the policy's order.
    ``seed`` (a stateless seed, shape [2]) makes every draw a function of it (exact resume of training).
    """
    import tensorflow as tf

    draws = iter(range(6))

    def uniform(shape, low, high, dtype=tf.float32):
        if seed is None:
            return tf.random.uniform(shape, low, high, dtype=dtype)
        sub = tf.random.experimental.stateless_fold_in(seed, next(draws))
        return tf.random.stateless_uniform(shape, sub, low, high, dtype=dtype)

    ops = check_diff_augment(policy)
    translation = check_float("translation", translation, minimum=0.0, maximum=0.5)
    cutout = check_float("cutout", cutout, minimum=0.0, maximum=1.0)
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {x.shape}")
    n = tf.shape(x)[0]
    height, width = int(x.shape[1]), int(x.shape[2])
    if "brightness" in ops:
        x = x + uniform([n, 1, 1, 1], -0.5, 0.5)
    if "contrast" in ops:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * uniform([n, 1, 1, 1], 0.5, 1.5) + mean
    if "translation" in ops:
        dy_max, dx_max = int(height * translation + 0.5), int(width * translation + 0.5)
        dy = uniform([n], -dy_max, dy_max + 1, dtype=tf.int32)
        dx = uniform([n], -dx_max, dx_max + 1, dtype=tf.int32)
        x = tf.einsum("nij,njkc->nikc", _shift_matrices(dy, height), x)
        x = tf.einsum("nkl,nilc->nikc", _shift_matrices(dx, width), x)
    if "cutout" in ops:
        half_h, half_w = int(height * cutout + 0.5) // 2, int(width * cutout + 0.5) // 2
        cy = uniform([n, 1, 1], 0, height, dtype=tf.int32)
        cx = uniform([n, 1, 1], 0, width, dtype=tf.int32)
        dy = tf.range(height)[None, :, None] - cy
        dx = tf.range(width)[None, None, :] - cx
        inside = (dy >= -half_h) & (dy < half_h) & (dx >= -half_w) & (dx < half_w)
        x = x * (1.0 - tf.cast(inside, tf.float32))[..., None]
    return x
