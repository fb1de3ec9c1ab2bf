"""A defence against adversarial examples that is not a training step: the feature-squeezing detector.

:class:`FeatureSqueezing` (Xu et al. 2018): an input whose prediction moves a lot when it is
squeezed (fewer grey levels, a median filter) is flagged as adversarial. Its adaptive attacker
(:meth:`FeatureSqueezing.adaptive_target`) differentiates through the rounding with a
straight-through gradient (BPDA, Athalye et al. 2018).

Adversarial training and the input-gradient penalty are training steps, written in notebook 06.
"""
from __future__ import annotations

import numpy as np


def _tf():
    import tensorflow as tf

    return tf


# --- detection -----------------------------------------------------------------------------

def reduce_bit_depth(x, bits: int = 1, straight_through: bool = False):
    """Round [0, 1] inputs to ``2**bits`` grey levels. With ``straight_through`` the gradient passes
    as if the rounding were the identity (BPDA, Athalye et al. 2018), for an attacker."""
    tf = _tf()
    levels = 2 ** bits - 1
    squeezed = tf.round(x * levels) / levels
    return x + tf.stop_gradient(squeezed - x) if straight_through else squeezed


def median_filter(x, size: int = 2):
    """Median over a ``size`` x ``size`` window (even sizes take the mean of the two middle values),
    'same' output size, for a (N, H, W, 1) batch. Differentiable almost everywhere (it selects)."""
    tf = _tf()
    x = tf.convert_to_tensor(x, tf.float32)
    before, after = (size - 1) // 2, size // 2
    padded = tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], mode="REFLECT")
    patches = tf.image.extract_patches(padded, [1, size, size, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    ordered = tf.sort(patches, axis=-1)
    k = size * size
    middle = ordered[..., (k - 1) // 2:k // 2 + 1]
    return tf.reduce_mean(middle, axis=-1, keepdims=True)


class FeatureSqueezing:
    """Feature-squeezing detector (Xu et al. 2018) for a classifier of (N, H, W, 1) images in [0, 1].

    score(x) = max over squeezers of || softmax(f(x)) - softmax(f(squeeze(x))) ||_1 ; inputs whose
    score exceeds a threshold (set on clean data for a chosen false-positive rate) are flagged.
    """

    def __init__(self, model, bits: int = 1, median_size: int = 2, from_logits: bool = True):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
            raise ValueError(f"bits = {bits!r} must be an integer from 1 to 8")
        if isinstance(median_size, bool) or not isinstance(median_size, int) or median_size < 1:
            raise ValueError(f"median_size = {median_size!r} must be an integer >= 1")
        self.model, self.bits, self.median_size, self.from_logits = model, bits, median_size, from_logits
        self.threshold = None

    def _probs(self, x):
        tf = _tf()
        scores = self.model(x, training=False)
        return tf.nn.softmax(scores) if self.from_logits else scores

    def squeezers(self, straight_through: bool = False):
        return [lambda x: reduce_bit_depth(x, self.bits, straight_through),
                lambda x: median_filter(x, self.median_size)]

    def score(self, x, batch_size: int = 512) -> np.ndarray:
        """The detection score of every input (0 = squeezing changes nothing, up to 2)."""
        tf = _tf()
        x = np.asarray(x, dtype="float32")
        out = []
        for start in range(0, len(x), batch_size):
            xb = tf.constant(x[start:start + batch_size])
            p = self._probs(xb)
            dists = [tf.reduce_sum(tf.abs(p - self._probs(sq(xb))), axis=-1) for sq in self.squeezers()]
            out.append(tf.reduce_max(tf.stack(dists), axis=0).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def fit_threshold(self, x_clean, false_positive_rate: float = 0.05) -> float:
        """Set the threshold to the (1 - fpr) quantile of the scores of clean inputs."""
        if not 0 < false_positive_rate < 1:
            raise ValueError(f"false_positive_rate = {false_positive_rate!r} must lie in (0, 1)")
        self.threshold = float(np.quantile(self.score(x_clean), 1 - false_positive_rate))
        return self.threshold

    def detect(self, x) -> np.ndarray:
        """True for inputs flagged as adversarial."""
        if self.threshold is None:
            raise RuntimeError("call fit_threshold(clean_inputs) before detect()")
        return self.score(x) > self.threshold

    def adaptive_target(self):
        """A model for an attacker who knows the detector: the average logits of f(x) and of f on
        every squeezed x (bit depth through a straight-through gradient). Attacking it with PGD
        pushes the plain and the squeezed predictions to the same wrong class, so the detector
        sees little disagreement."""
        tf = _tf()
        model, squeezers = self.model, self.squeezers(straight_through=True)

        class _Ensemble:
            @tf.autograph.experimental.do_not_convert
            def __call__(self, x, training=False):
                logits = [model(x, training=False)] + [model(sq(x), training=False) for sq in squeezers]
                if not self_from_logits:
                    logits = [tf.math.log(tf.maximum(p, 1e-12)) for p in logits]
                return tf.add_n(logits) / len(logits)

        self_from_logits = self.from_logits
        return _Ensemble()
