"""Defences against adversarial examples: adversarial training, input-gradient regularisation and a
feature-squeezing detector.

* :func:`adversarial_training` — train on attacked inputs, the min-max game of Madry et al. (2018):
  ``min_theta E[max_{||delta||_inf <= eps} L(f(x + delta), y)]``; the inner max is approximated by
  PGD with a random start (``attack="pgd"``) or by one FGSM step (``attack="fgsm"``, Goodfellow
  et al. 2015, which is cheap and prone to gradient masking).
* :func:`gradient_regularisation_training` — the loss plus ``weight * ||grad_x L||^2`` (input-gradient
  regularisation, Ross & Doshi-Velez 2018; "double backpropagation", Drucker & LeCun 1992).
* :class:`FeatureSqueezing` — a detector (Xu et al. 2018): an input whose prediction moves a lot when
  it is squeezed (fewer grey levels, a median filter) is flagged as adversarial.

Both trainers are :class:`labkit.training.Model` s trained by :func:`labkit.training.fit`: a checkpoint
in ``checkpoint_dir`` after every epoch; a run that is interrupted resumes from it exactly (batches
from ``(seed, epoch)``, PGD's random starts from ``(seed, step)``), and the checkpoint is removed
when training completes.
"""
from __future__ import annotations

import shutil

import numpy as np

from . import attacks
from .training import Model


def _tf():
    import tensorflow as tf

    return tf


def _check_training_args(x, y, epochs, batch_size, eps=None):
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold one integer class per example: x has {len(x)} examples, "
                         f"y has shape {y.shape} and dtype {y.dtype}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs = {epochs!r} must be an integer >= 0")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size = {batch_size!r} must be an integer >= 1")
    if eps is not None and not (np.isscalar(eps) and 0 <= eps <= 1):
        raise ValueError(f"eps = {eps!r} must be a number in [0, 1]")
    return x, y.astype("int64")


class _ClassifierTraining:
    """Shared parts of the defences' trainers: a classifier, its Adam optimiser, epoch-wise batches."""

    def _setup(self, model, learning_rate):
        import keras

        self.model = model
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(model.trainable_variables)
        self.steps_per_epoch, self._order = 1, (None, None)

    def draw_batch(self, data, rng, batch_size):
        """The next batch of epoch ``e``'s shuffle (an order drawn from ``(seed, e)``)."""
        x, y = data
        epoch, i = divmod(int(self.step.numpy()), self.steps_per_epoch)
        if self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.run_seed, epoch]).permutation(len(x)))
        index = self._order[1][i * batch_size:(i + 1) * batch_size]
        return x[index], y[index]


def _fit(trainer, x, y, epochs, batch_size, checkpoint_dir, seed, desc, keep_checkpoint=False):
    """Train ``trainer`` (a :class:`labkit.training.Model`) for ``epochs`` with :func:`labkit.training.fit`.

    Returns the per-epoch history: ``loss`` (mean per example) and ``accuracy`` on the training
    batches, ``seconds`` (training time). Unless ``keep_checkpoint``, the checkpoint is removed once
    training completes (like ``keras.callbacks.BackupAndRestore``), so it only holds an interrupted run.
    """
    from . import training

    trainer.steps_per_epoch = -(-len(x) // batch_size)
    history = training.fit(trainer, (x, y), epochs * trainer.steps_per_epoch, batch_size=batch_size,
                           seed=seed, checkpoint_dir=checkpoint_dir, checkpoint_every=trainer.steps_per_epoch,
                           desc=desc)
    sizes = np.diff(np.minimum(np.arange(trainer.steps_per_epoch + 1) * batch_size, len(x)))
    out = {"loss": [], "accuracy": []}
    for e in range(history["steps"] // trainer.steps_per_epoch):
        part = slice(e * trainer.steps_per_epoch, (e + 1) * trainer.steps_per_epoch)
        out["loss"].append(float(np.dot(history["loss"][part], sizes) / len(x)))
        out["accuracy"].append(float(np.sum(history["hits"][part]) / len(x)))
    out["seconds"] = history["seconds"]
    if checkpoint_dir is not None and not keep_checkpoint:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return out


def _ce(y, scores, from_logits):
    tf = _tf()
    return tf.keras.losses.sparse_categorical_crossentropy(y, scores, from_logits=from_logits)


def pgd_perturb(model, x, y, eps, steps, step_size, random_start=True, from_logits=True, seed=None):
    """PGD inside a compiled training step (tensors in, tensors out; no restarts).

    The same projection and clipping as :func:`labkit.attacks.pgd`, written with TensorFlow ops so
    it runs inside ``tf.function``. Inputs live in [0, 1]. ``seed`` (a stateless seed) keys the
    random start, so a resumed training run draws the same starts.
    """
    tf = _tf()
    lo, hi = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)
    adv = x
    if random_start:
        noise = (tf.random.uniform(tf.shape(x), -eps, eps) if seed is None
                 else tf.random.stateless_uniform(tf.shape(x), seed, -eps, eps))
        adv = tf.clip_by_value(x + noise, lo, hi)
    for _ in tf.range(steps):
        grad, _ = attacks.loss_gradient(model, adv, y, from_logits)
        adv = tf.clip_by_value(adv + step_size * tf.sign(grad), lo, hi)
    return tf.stop_gradient(adv)


def adversarial_training(model, x, y, eps: float = 0.3, epochs: int = 10, attack: str = "pgd",
                         steps: int = 7, step_size: float | None = None, ramp_epochs: int = 0,
                         clean_weight: float = 0.0, batch_size: int = 64,
                         learning_rate: float = 1e-3, from_logits: bool = True,
                         checkpoint_dir=None, seed: int = 0, keep_checkpoint: bool = False) -> dict:
    """Train ``model`` on adversarial examples made on the fly (Madry et al. 2018).

    ``attack="pgd"``: ``steps`` PGD steps with a random start, step size ``step_size`` (default
    ``2.5 * eps / steps``). ``attack="fgsm"``: one FGSM step of size ``eps`` from the clean input
    (Goodfellow et al. 2015). ``ramp_epochs`` > 0 grows eps linearly over the first epochs (a
    curriculum that helps small models start learning). The loss is
    ``clean_weight * L(x) + (1 - clean_weight) * L(x_adv)``. Returns a history dict.
    """
    x, y = _check_training_args(x, y, epochs, batch_size, eps)
    if attack not in ("pgd", "fgsm"):
        raise ValueError(f"attack = {attack!r} must be 'pgd' or 'fgsm'")
    if not 0 <= clean_weight <= 1:
        raise ValueError(f"clean_weight = {clean_weight!r} must lie in [0, 1]")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps = {steps!r} must be an integer >= 1")
    if attack == "fgsm":
        steps, ratio, random_start = 1, 1.0, False
    else:
        ratio = 2.5 / steps if step_size is None else step_size / eps if eps else 0.0
        random_start = True

    trainer = AdversarialTrainer(model, learning_rate, eps, steps, ratio, random_start, ramp_epochs,
                                  clean_weight, from_logits)
    return _fit(trainer, x, y, epochs, batch_size, checkpoint_dir, seed,
                f"{attack.upper()} adversarial training", keep_checkpoint)


class AdversarialTrainer(_ClassifierTraining, Model):
    """Adversarial training as a training contract: one PGD/FGSM attack and one Adam step per batch."""

    def __init__(self, model, learning_rate, eps, steps, ratio, random_start, ramp_epochs,
                 clean_weight, from_logits):
        Model.__init__(self)
        self._setup(model, learning_rate)
        self.eps, self.attack_steps, self.ratio = float(eps), int(steps), float(ratio)
        self.random_start, self.ramp_epochs = bool(random_start), int(ramp_epochs)
        self.clean_weight, self.from_logits = float(clean_weight), bool(from_logits)

    def checkpoint_params(self):
        return {k: getattr(self, k) for k in ("eps", "attack_steps", "ratio", "random_start",
                                              "ramp_epochs", "clean_weight", "from_logits",
                                              "steps_per_epoch")}

    def train_step(self, batch):
        tf = _tf()
        xb, yb = batch
        epoch = tf.cast(self.step // self.steps_per_epoch, tf.float32)
        eps_now = (self.eps * tf.minimum(1.0, (epoch + 1.0) / self.ramp_epochs) if self.ramp_epochs
                   else tf.constant(self.eps))                # the ramp: eps grows over the first epochs
        adv = pgd_perturb(self.model, xb, yb, eps_now, self.attack_steps, self.ratio * eps_now,
                          self.random_start, self.from_logits, seed=self.random_seed())
        with tf.GradientTape() as tape:
            adv_scores = self.model(adv, training=True)
            loss = (1 - self.clean_weight) * tf.reduce_mean(_ce(yb, adv_scores, self.from_logits))
            if self.clean_weight > 0:
                loss += self.clean_weight * tf.reduce_mean(
                    _ce(yb, self.model(xb, training=True), self.from_logits))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        hits = tf.reduce_sum(tf.cast(tf.argmax(adv_scores, -1) == yb, tf.int32))
        return {"loss": loss, "hits": hits}


def gradient_regularisation_training(model, x, y, weight: float = 1.0, epochs: int = 10,
                                     batch_size: int = 64, learning_rate: float = 1e-3,
                                     from_logits: bool = True, checkpoint_dir=None,
                                     seed: int = 0, keep_checkpoint: bool = False) -> dict:
    """Train with the loss ``L(x, y) + weight * mean_i ||grad_x L(x_i, y_i)||_2^2``.

    A small input gradient means a small first-order change of the loss for any small perturbation;
    nothing is said about large ones. Needs second derivatives (a tape inside a tape).
    """
    x, y = _check_training_args(x, y, epochs, batch_size)
    if not (np.isscalar(weight) and weight >= 0):
        raise ValueError(f"weight = {weight!r} must be a number >= 0")

    trainer = GradientRegularisedTrainer(model, learning_rate, float(weight), bool(from_logits))
    return _fit(trainer, x, y, epochs, batch_size, checkpoint_dir, seed, "gradient-regularised training",
                keep_checkpoint)


class GradientRegularisedTrainer(_ClassifierTraining, Model):
    """Input-gradient regularisation as a training contract (a tape inside a tape)."""

    def __init__(self, model, learning_rate, weight, from_logits):
        Model.__init__(self)
        self._setup(model, learning_rate)
        self.weight, self.from_logits = weight, from_logits

    def checkpoint_params(self):
        return {"weight": self.weight, "from_logits": self.from_logits,
                "steps_per_epoch": self.steps_per_epoch}

    def train_step(self, batch):
        tf = _tf()
        xb, yb = batch
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(xb)
                scores = self.model(xb, training=True)
                per_example = _ce(yb, scores, self.from_logits)
                total = tf.reduce_sum(per_example)
            input_grad = inner.gradient(total, xb)
            penalty = tf.reduce_mean(tf.reduce_sum(tf.square(input_grad), axis=[1, 2, 3]))
            loss = tf.reduce_mean(per_example) + self.weight * penalty
        grads = outer.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        hits = tf.reduce_sum(tf.cast(tf.argmax(scores, -1) == yb, tf.int32))
        return {"loss": loss, "hits": hits}


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
