"""Adversarial attacks on Keras classifiers: FGSM, PGD (iterative FGSM with random start) and JSMA.

Every attack works on any callable classifier that maps a batch of inputs to class scores, either
logits (``from_logits=True``, the default) or probabilities (``from_logits=False``). Inputs are
floats in ``[clip_min, clip_max]`` (``[0, 1]`` for the digits) of any shape; attacks run batch by
batch over the examples and return NumPy arrays.

Notebook 06 writes FGSM and PGD in its cells; :func:`fgsm` and :func:`pgd` here are the copies
that ``tests/test_crosschecks.py`` compares with the Adversarial Robustness Toolbox, and a test
checks that the notebook's cells give the same examples. JSMA lives only here.

The chapter's pseudo-code takes the sign of the gradient *of the model*; the attack takes the
sign of the gradient of the *loss* with respect to the input (Goodfellow et al. 2015):

    x_adv = clip(x + eps * sign(grad_x L(f(x), y)))            untargeted: climb the loss of y
    x_adv = clip(x - eps * sign(grad_x L(f(x), target)))       targeted: descend the loss of target
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np


def _tf():
    import tensorflow as tf

    return tf


def _check_eps(eps):
    if isinstance(eps, bool) or not np.isscalar(eps) or not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps = {eps!r} must be a number >= 0 (the L-infinity radius)")
    return float(eps)


def _check_inputs(x, labels, clip_min, clip_max, name="y"):
    x = np.asarray(x, dtype="float32")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch of examples (N, ...), got shape {x.shape}")
    if not clip_min < clip_max:
        raise ValueError(f"clip_min = {clip_min} must be below clip_max = {clip_max}")
    if x.size and (x.min() < clip_min - 1e-6 or x.max() > clip_max + 1e-6):
        raise ValueError(f"x has values in [{x.min():.3g}, {x.max():.3g}], outside the valid range "
                         f"[{clip_min}, {clip_max}]: scale the inputs first")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{name} must hold one integer class per example, shape ({len(x)},); "
                             f"got shape {labels.shape} and dtype {labels.dtype}")
        labels = labels.astype("int64")
    return x, labels


def loss_gradient(model, x, y, from_logits: bool = True):
    """Gradient of the cross-entropy loss of class ``y`` with respect to the input ``x`` (a tensor).

    Also returns the per-example loss. ``x`` and ``y`` are tensors (or arrays) of one batch.
    """
    tf = _tf()
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = model(x, training=False)
        loss = tf.keras.losses.sparse_categorical_crossentropy(y, scores, from_logits=from_logits)
    return tape.gradient(loss, x), loss


_COMPILED = weakref.WeakKeyDictionary()


def _compiled(model, name, build):
    """A tf.function built once per model (attacks call the same graph many times)."""
    try:
        cache = _COMPILED.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no cache
        return build()
    if name not in cache:
        cache[name] = build()
    return cache[name]


def _gradient_fn(model, from_logits):
    tf = _tf()
    return _compiled(model, ("grad", from_logits), lambda: tf.function(
        lambda x, y: loss_gradient(model, x, y, from_logits), reduce_retracing=True))


def _pgd_fn(model, from_logits):
    """``steps`` signed gradient steps up the loss, each projected onto the ball and the pixel range."""
    tf = _tf()

    def run(x, y, adv, eps, steps, step_size, clip_min, clip_max):
        for _ in tf.range(steps):
            grad, _ = loss_gradient(model, adv, y, from_logits)
            adv = tf.clip_by_value(tf.clip_by_value(adv + step_size * tf.sign(grad), x - eps, x + eps),
                                   clip_min, clip_max)
        return adv

    return _compiled(model, ("pgd", from_logits), lambda: tf.function(run, reduce_retracing=True))


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def predict(model, x, batch_size: int = 512) -> np.ndarray:
    """Predicted classes of a batch of inputs (argmax of the scores, logits or probabilities)."""
    x = np.asarray(x, dtype="float32")
    out = [np.asarray(model(x[s], training=False)).argmax(axis=-1) for s in _batches(len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype="int64")


def accuracy(model, x, y, batch_size: int = 512) -> float:
    """Share of examples classified as ``y``."""
    return float(np.mean(predict(model, x, batch_size) == np.asarray(y)))


def fgsm(model, x, y, eps: float, target=None, from_logits: bool = True,
         clip_min: float = 0.0, clip_max: float = 1.0, batch_size: int = 256) -> np.ndarray:
    """Fast gradient sign method (Goodfellow et al. 2015), one step of size ``eps``.

    Untargeted (``target=None``): move each pixel by ``eps`` in the direction that *increases* the
    loss of the true class ``y``. Targeted: move it in the direction that *decreases* the loss of
    ``target`` (one class per example). The result is clipped to ``[clip_min, clip_max]``.
    """
    eps = _check_eps(eps)
    x, y = _check_inputs(x, y, clip_min, clip_max)
    if target is not None:
        _, target = _check_inputs(x, target, clip_min, clip_max, name="target")
    out = np.empty_like(x)
    for s in _batches(len(x), batch_size):
        labels, direction = (y[s], 1.0) if target is None else (target[s], -1.0)
        grad, _ = _gradient_fn(model, from_logits)(x[s], labels)
        out[s] = np.clip(x[s] + direction * eps * np.sign(np.asarray(grad)), clip_min, clip_max)
    return out


def pgd(model, x, y, eps: float, steps: int = 40, step_size: float | None = None, restarts: int = 1,
        random_start: bool = True, from_logits: bool = True, clip_min: float = 0.0,
        clip_max: float = 1.0, seed: int = 0) -> np.ndarray:
    """Projected gradient descent in the L-infinity ball (Madry et al. 2018); iterative FGSM.

    The copy of notebook 06's ``pgd`` (a test checks that both give the same examples), kept here
    for the cross-check against ART. Start at a uniform random point of the ``eps``-ball
    (``random_start``), take ``steps`` signed gradient steps of ``step_size`` (default
    ``2.5 * eps / steps``) up the loss of ``y``, and after each step project back onto the ball
    around ``x`` and the pixel range. With ``restarts > 1`` the digits that no earlier restart has
    fooled are attacked again from new random starts; per example the first result that fools the
    model is kept, else the last one. With one step, no random start and ``step_size = eps`` it is
    exactly FGSM.
    """
    tf = _tf()
    eps = _check_eps(eps)
    x, y = _check_inputs(x, y, clip_min, clip_max)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps = {steps!r} must be an integer >= 1")
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise ValueError(f"restarts = {restarts!r} must be an integer >= 1")
    step_size = 2.5 * eps / steps if step_size is None else _check_eps(step_size)
    rng = np.random.default_rng(seed)
    best, todo = x.copy(), np.arange(len(x))
    for _ in range(restarts):
        x0, y0 = x[todo], y[todo]
        start = x0
        if random_start:
            noise = rng.uniform(-eps, eps, x0.shape).astype("float32")
            start = np.clip(np.clip(x0 + noise, x0 - eps, x0 + eps), clip_min, clip_max)
        adv = _pgd_fn(model, from_logits)(
            tf.constant(x0), tf.constant(y0), tf.constant(start), tf.constant(eps, tf.float32),
            tf.constant(steps), tf.constant(step_size, tf.float32), tf.constant(clip_min, tf.float32),
            tf.constant(clip_max, tf.float32)).numpy()
        best[todo] = adv
        todo = todo[predict(model, adv) == y0]
        if len(todo) == 0:
            break
    return best


@dataclass
class JSMAResult:
    """What :func:`jsma` returns, one entry per example."""

    x_adv: np.ndarray          # the adversarial inputs
    success: np.ndarray        # bool: the model now predicts the target class
    pixels_changed: np.ndarray  # int: how many input features differ from the original
    n_features: int            # features per example (784 for a 28x28 digit)

    @property
    def success_rate(self) -> float:
        return float(self.success.mean()) if len(self.success) else float("nan")

    @property
    def pixels_changed_pct(self) -> float:
        """Mean share of features changed (in %) over the successful examples, as Papernot et al."""
        if not self.success.any():
            return float("nan")
        return float(100 * self.pixels_changed[self.success].mean() / self.n_features)


def saliency_map(alpha, beta, domain):
    """JSMA pair saliency (increasing variant) for a batch: scores (B, n, n), a NumPy reference.

    ``alpha[b, i]`` is d Z_target / d x_i and ``beta[b, i]`` the same for the sum of the other
    classes. A pair (p, q) is salient when raising both pixels raises the target
    (alpha_p + alpha_q > 0) and lowers the others (beta_p + beta_q < 0); its score is
    (alpha_p + alpha_q) * |beta_p + beta_q|, and 0 when a condition fails. Pairs outside the search
    ``domain`` (bool (B, n)), and p == q, score -inf.
    """
    alpha, beta = np.asarray(alpha, "float32"), np.asarray(beta, "float32")
    a = alpha[:, :, None] + alpha[:, None, :]
    b = beta[:, :, None] + beta[:, None, :]
    valid = domain[:, :, None] & domain[:, None, :] & ~np.eye(alpha.shape[1], dtype=bool)[None]
    score = np.where((a > 0) & (b < 0), a * np.abs(b), np.float32(0))
    return np.where(valid, score, np.float32(-np.inf))


def target_gradients(model, x, target, from_logits: bool = True):
    """JSMA's forward derivatives for a batch: ``alpha`` = d Z_target / dx and ``beta`` =
    d (sum of the other classes' Z) / dx, each shaped like ``x`` (Z = logits, or probabilities
    when ``from_logits=False``)."""
    tf = _tf()
    x = tf.convert_to_tensor(np.asarray(x, "float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        scores = model(x, training=False)
        onehot = tf.one_hot(np.asarray(target), tf.shape(scores)[-1], dtype=scores.dtype)
        z_target = tf.reduce_sum(scores * onehot)
        z_other = tf.reduce_sum(scores * (1.0 - onehot))
    return tape.gradient(z_target, x).numpy(), tape.gradient(z_other, x).numpy()


def _jsma_step_fn(model, from_logits, shape):
    """One JSMA iteration for a batch: the best pixel pair (flat index p * n + q) and predictions.

    Same scores as :func:`saliency_map`; when no pair in the domain meets both conditions, the pair
    with the largest alpha - beta is taken instead (otherwise the iteration would be wasted).
    """
    tf = _tf()
    n = int(np.prod(shape))

    def step(adv, target, domain):
        x = tf.reshape(adv, (-1,) + tuple(shape))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            scores = model(x, training=False)
            onehot = tf.one_hot(target, tf.shape(scores)[-1], dtype=scores.dtype)
            z_target = tf.reduce_sum(scores * onehot)
            z_other = tf.reduce_sum(scores * (1.0 - onehot))
        alpha = tf.reshape(tape.gradient(z_target, x), (-1, n))
        beta = tf.reshape(tape.gradient(z_other, x), (-1, n))
        a = alpha[:, :, None] + alpha[:, None, :]
        b = beta[:, :, None] + beta[:, None, :]
        valid = (domain[:, :, None] & domain[:, None, :]) & ~tf.eye(n, dtype=tf.bool)[None]
        strict = valid & (a > 0) & (b < 0)
        neg_inf = tf.constant(-np.inf, a.dtype)
        score = tf.where(strict, a * -b, neg_inf)
        relaxed = tf.where(valid, a - b, neg_inf)
        has_strict = tf.reduce_any(strict, axis=[1, 2])
        chosen = tf.where(has_strict[:, None, None], score, relaxed)
        best = tf.argmax(tf.reshape(chosen, (tf.shape(adv)[0], n * n)), axis=1)
        return best, tf.argmax(scores, axis=-1)

    return _compiled(model, ("jsma", from_logits, tuple(shape)),
                     lambda: tf.function(step, reduce_retracing=True))


def jsma(model, x, target, max_pixels_fraction: float = 0.145, theta: float = 1.0,
         from_logits: bool = True, clip_min: float = 0.0, clip_max: float = 1.0,
         batch_size: int = 32) -> JSMAResult:
    """Jacobian-based saliency map attack (Papernot et al. 2016), increasing-feature variant.

    Each iteration computes the forward derivative of the scores, picks the pair of pixels with the
    highest saliency (:func:`saliency_map`), raises both by ``theta`` (clipped; theta = 1 sets them to
    ``clip_max``) and removes them from the search domain. It stops, per example, when the model
    predicts ``target`` or when the next pair would exceed the budget of
    ``floor(max_pixels_fraction * n_features)`` changed pixels (Papernot et al. use 14.5%).
    ``success`` is measured afterwards on the returned inputs.
    """
    tf = _tf()
    x, target = _check_inputs(x, target, clip_min, clip_max, name="target")
    if not 0 < max_pixels_fraction <= 1:
        raise ValueError(f"max_pixels_fraction = {max_pixels_fraction!r} must lie in (0, 1]")
    if not theta > 0:
        raise ValueError(f"theta = {theta!r} must be > 0 (this is the increasing variant)")
    shape, n = x.shape[1:], int(np.prod(x.shape[1:]))
    budget = int(np.floor(max_pixels_fraction * n))
    step = _jsma_step_fn(model, from_logits, shape)
    flat = x.reshape(len(x), n).copy()
    for s in _batches(len(x), batch_size):
        adv, tgt = flat[s], target[s]                      # views into flat
        domain = adv < clip_max
        changed = np.zeros(len(adv), dtype=int)
        active = np.ones(len(adv), dtype=bool)
        while True:
            idx = np.flatnonzero(active)
            best, preds = step(tf.constant(adv[idx]), tf.constant(tgt[idx]), tf.constant(domain[idx]))
            active[idx] = ((preds.numpy() != tgt[idx]) & (changed[idx] + 2 <= budget)
                           & (domain[idx].sum(1) >= 2))
            keep = active[idx]
            if not keep.any():
                break
            rows = idx[keep]
            p, q = np.divmod(best.numpy()[keep], n)
            for cols in (p, q):
                adv[rows, cols] = np.minimum(adv[rows, cols] + theta, clip_max)
                domain[rows, cols] = False
            changed[rows] += 2
    x_adv = flat.reshape(x.shape)
    preds = predict(model, x_adv)
    pixels = (np.abs(x_adv - x).reshape(len(x), n) > 0).sum(1)
    return JSMAResult(x_adv=x_adv, success=preds == target, pixels_changed=pixels, n_features=n)
