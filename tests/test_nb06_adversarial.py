"""Notebook 06 — adversarial attacks and defences: labkit.attacks, labkit.defences, exercises, smoke run."""
import ast
import itertools
import linecache
from pathlib import Path

import numpy as np
import pytest

from labkit import attacks, defences
from labkit.exercises import nb06

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from labkit import training  # noqa: E402  (imports TensorFlow)
from conftest import assert_same_training  # noqa: E402


def linear_model(w, b=0.0):
    """Two-class linear model on (N, d) inputs: logits [0, w.x + b]."""
    d = len(w)
    inputs = keras.Input((d,))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(inputs))
    kernel = np.zeros((d, 2), "float32")
    kernel[:, 1] = w
    dense.set_weights([kernel, np.array([0.0, b], "float32")])
    return model


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    rng = np.random.default_rng(0)
    x = rng.random((12, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 12)
    return model, x, y


# --- FGSM -------------------------------------------------------------------------------------

def test_fgsm_linear_model_equals_closed_form():
    rng = np.random.default_rng(0)
    w = rng.normal(size=20).astype("float32")
    model = linear_model(w)
    x = np.full((6, 20), 0.5, "float32")
    eps = 0.1
    # true class 0: the loss -log p0 grows with w.x, so the step is +eps*sign(w); class 1: -eps*sign(w)
    y0, y1 = np.zeros(6, "int64"), np.ones(6, "int64")
    np.testing.assert_allclose(attacks.fgsm(model, x, y0, eps) - x, np.tile(eps * np.sign(w), (6, 1)),
                               atol=1e-6)
    np.testing.assert_allclose(attacks.fgsm(model, x, y1, eps) - x, np.tile(-eps * np.sign(w), (6, 1)),
                               atol=1e-6)
    # targeted towards class 1 descends the loss of class 1: the same direction as untargeted from 0
    np.testing.assert_allclose(attacks.fgsm(model, x, y0, eps, target=y1), attacks.fgsm(model, x, y0, eps),
                               atol=1e-6)


def test_fgsm_probabilities_output_matches_logits():
    rng = np.random.default_rng(1)
    w = rng.normal(size=10).astype("float32")
    logits = linear_model(w)
    probs = keras.Model(logits.input, keras.layers.Softmax()(logits.output))
    x = rng.random((5, 10)).astype("float32")
    y = rng.integers(0, 2, 5)
    np.testing.assert_allclose(attacks.fgsm(logits, x, y, 0.05),
                               attacks.fgsm(probs, x, y, 0.05, from_logits=False), atol=1e-6)


def test_fgsm_gradient_against_finite_differences(small_cnn):
    model, x, y = small_cnn
    grad, _ = attacks.loss_gradient(model, x[:1], y[:1])
    grad = np.asarray(grad)[0]
    h = 1e-3
    for idx in [(2, 3, 0), (5, 5, 0), (0, 7, 0)]:
        plus, minus = x[:1].copy(), x[:1].copy()
        plus[(0,) + idx] += h
        minus[(0,) + idx] -= h
        loss = lambda z: float(keras.losses.sparse_categorical_crossentropy(  # noqa: E731
            y[:1], model(z), from_logits=True)[0])
        assert grad[idx] == pytest.approx((loss(plus) - loss(minus)) / (2 * h), abs=2e-3)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_perturbation_stays_in_ball_and_range(small_cnn, attack):
    model, x, y = small_cnn
    for eps in (0.0, 0.05, 0.3):
        if attack == "fgsm":
            adv = attacks.fgsm(model, x, y, eps)
        else:
            adv = attacks.pgd(model, x, y, eps, steps=5, restarts=2)
        assert adv.shape == x.shape
        assert np.abs(adv - x).max() <= eps + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0


def test_pgd_one_step_no_random_start_equals_fgsm(small_cnn):
    model, x, y = small_cnn
    np.testing.assert_allclose(
        attacks.pgd(model, x, y, 0.1, steps=1, step_size=0.1, random_start=False),
        attacks.fgsm(model, x, y, 0.1), atol=1e-6)


def test_pgd_at_least_as_strong_as_fgsm():
    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(32, activation="tanh")(inputs)))
    x = rng.random((200, 16)).astype("float32")
    y = attacks.predict(model, x)                       # start from 100% accuracy
    for eps in (0.05, 0.1, 0.2):
        loss = lambda z: keras.losses.sparse_categorical_crossentropy(y, model(z), from_logits=True)  # noqa
        fgsm_x = attacks.fgsm(model, x, y, eps)
        pgd_x = attacks.pgd(model, x, y, eps, steps=20, restarts=2)
        assert attacks.accuracy(model, pgd_x, y) <= attacks.accuracy(model, fgsm_x, y)
        assert float(np.mean(loss(pgd_x))) >= float(np.mean(loss(fgsm_x))) - 1e-6


def test_attacks_reject_bad_input(small_cnn):
    model, x, y = small_cnn
    with pytest.raises(ValueError, match="eps"):
        attacks.fgsm(model, x, y, -0.1)
    with pytest.raises(ValueError, match="valid range"):
        attacks.fgsm(model, x * 3, y, 0.1)
    with pytest.raises(ValueError, match="one integer class"):
        attacks.pgd(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="steps"):
        attacks.pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="max_pixels_fraction"):
        attacks.jsma(model, x, y, max_pixels_fraction=0)


# --- JSMA -------------------------------------------------------------------------------------

def test_saliency_map_matches_bruteforce():
    rng = np.random.default_rng(3)
    alpha, beta = rng.normal(size=(1, 6)), rng.normal(size=(1, 6))
    domain = np.array([[True, True, False, True, True, True]])
    scores = attacks.saliency_map(alpha, beta, domain)[0]
    for p in range(6):
        for q in range(6):
            a, b = alpha[0, p] + alpha[0, q], beta[0, p] + beta[0, q]
            if p == q or not (domain[0, p] and domain[0, q]):
                assert scores[p, q] == -np.inf
            else:
                assert scores[p, q] == pytest.approx(a * abs(b) if (a > 0 and b < 0) else 0.0, rel=1e-5)


def test_jsma_respects_budget_and_reports_true_success(small_cnn):
    model, x, _ = small_cnn
    target = (attacks.predict(model, x) + 1) % 3
    for fraction in (0.05, 0.3):
        result = attacks.jsma(model, x, target, max_pixels_fraction=fraction)
        budget = int(np.floor(fraction * 64))
        changed = (np.abs(result.x_adv - x).reshape(len(x), -1) > 0).sum(1)
        assert (changed <= budget).all() and (result.pixels_changed == changed).all()
        assert (result.x_adv >= x - 1e-7).all() and result.x_adv.max() <= 1.0   # increasing only
        np.testing.assert_array_equal(result.success, attacks.predict(model, result.x_adv) == target)


def test_jsma_on_linear_model_flips_with_few_pixels():
    w = np.linspace(-1, 1, 20).astype("float32")
    model = linear_model(w, b=-2.0)
    x = np.zeros((1, 20), "float32")
    result = attacks.jsma(model, x, np.array([1]), max_pixels_fraction=0.5)
    assert result.success[0]
    assert result.pixels_changed[0] <= 4                  # the largest weights come first
    assert set(np.flatnonzero(result.x_adv[0])) <= set(range(16, 20))


# --- defences ---------------------------------------------------------------------------------

def test_median_filter_and_bit_depth_against_numpy():
    rng = np.random.default_rng(4)
    x = rng.random((2, 5, 5, 1)).astype("float32")
    np.testing.assert_allclose(defences.reduce_bit_depth(x, 1).numpy(), np.round(x))
    np.testing.assert_allclose(defences.reduce_bit_depth(x, 3).numpy(), np.round(x * 7) / 7, atol=1e-6)
    from scipy.ndimage import median_filter as scipy_median

    got = defences.median_filter(x, 3).numpy()
    want = scipy_median(x, size=(1, 3, 3, 1), mode="mirror")
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_straight_through_gradient_is_identity():
    x = tf.constant(np.linspace(0, 1, 8, dtype="float32").reshape(1, 2, 4, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(defences.reduce_bit_depth(x, 1, straight_through=True) * 3.0)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3.0)


def test_feature_squeezing_threshold_sets_false_positive_rate(small_cnn):
    model, x, _ = small_cnn
    rng = np.random.default_rng(5)
    clean = rng.random((200, 8, 8, 1)).astype("float32")
    detector = defences.FeatureSqueezing(model, bits=2, median_size=2)
    with pytest.raises(RuntimeError, match="fit_threshold"):
        detector.detect(clean)
    detector.fit_threshold(clean, 0.1)
    assert detector.detect(clean).mean() == pytest.approx(0.1, abs=0.02)
    assert detector.score(clean).min() >= 0 and detector.score(clean).max() <= 2 + 1e-6
    with pytest.raises(ValueError, match="bits"):
        defences.FeatureSqueezing(model, bits=0)


def _tiny_data():
    rng = np.random.default_rng(6)
    x = rng.random((64, 8, 8, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype("int64")
    return x, y


def _tiny_model():
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(h)))


# --- the notebook's own attacks and training steps -----------------------------------------------

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_adversarial.ipynb"


def notebook_code(fgsm_step=None, project=None):
    """The functions and classes that the notebook's cells define (only the ``def`` and ``class``
    statements, executed), with the FGSM step and the projection the exercises hand on."""
    import nbformat

    namespace = {"np": np, "tf": tf, "keras": keras, "training": training, "attacks": attacks,
                 "fgsm_step": fgsm_step or nb06.fgsm_step, "project": project or nb06.project}
    keep = []
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            keep += [node for node in ast.parse(cell.source).body
                     if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("my_")]
    source = ast.unparse(ast.Module(body=keep, type_ignores=[])) + "\n"
    name = f"<notebook 06 cells {next(_COUNTER)}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # AutoGraph reads it
    exec(compile(source, name, "exec"), namespace)
    return namespace


_COUNTER = itertools.count()


def test_notebook_defines_the_attacks_and_training_steps():
    code = notebook_code()
    for name in ["loss_gradient", "fgsm", "pgd_steps", "pgd", "make_classifier",
                 "AdversarialTraining", "GradientPenaltyTraining"]:
        assert name in code, name
    assert issubclass(code["AdversarialTraining"], training.Model)
    assert issubclass(code["GradientPenaltyTraining"], training.Model)


def test_notebook_fgsm_equals_labkit_copy(small_cnn):
    model, x, y = small_cnn
    fgsm = notebook_code()["fgsm"]
    target = (y + 1) % 3
    for eps in (0.05, 0.2):
        np.testing.assert_allclose(fgsm(model, x, y, eps), attacks.fgsm(model, x, y, eps), atol=1e-6)
        np.testing.assert_allclose(fgsm(model, x, y, eps, target=target),
                                   attacks.fgsm(model, x, y, eps, target=target), atol=1e-6)


def test_notebook_pgd_equals_labkit_copy(small_cnn):
    model, x, y = small_cnn
    pgd = notebook_code()["pgd"]
    for eps, restarts in [(0.05, 1), (0.1, 3), (0.3, 2)]:
        ours = pgd(model, x, y, eps, steps=7, restarts=restarts, seed=3)
        np.testing.assert_allclose(ours, attacks.pgd(model, x, y, eps, steps=7, restarts=restarts, seed=3),
                                   atol=1e-6)
        assert np.abs(ours - x).max() <= eps + 1e-6 and 0 <= ours.min() and ours.max() <= 1


def test_notebook_adversarial_training_is_robust_where_plain_training_is_not():
    """A working training step must raise accuracy under PGD; a broken one (no attack) must not."""
    code = notebook_code()
    x, y = _tiny_data()
    keras.utils.set_random_seed(0)
    model = _tiny_model()
    trainer = code["AdversarialTraining"](model, eps=0.1, attack_steps=3)
    history = training.fit(trainer, (x, y), 4, batch_size=16, seed=0)
    assert np.isfinite(history["loss"]).all() and len(history["accuracy on attacked digits"]) == 4
    x_adv = code["pgd"](model, x, y, 0.1, steps=3)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6


def test_notebook_training_steps_resume_exactly(tmp_path):
    code = notebook_code()
    x, y = _tiny_data()

    def train(steps, folder=None):
        keras.utils.set_random_seed(0)
        model = _tiny_model()
        trainer = code["AdversarialTraining"](model, eps=0.1, attack_steps=2, ramp_steps=3)
        history = training.fit(trainer, (x, y), steps, batch_size=16, seed=0, checkpoint_dir=folder,
                               checkpoint_every=1, show_progress=False)
        return model, history

    whole_model, whole = train(4)
    train(2, tmp_path / "ck")
    resumed_model, resumed = train(4, tmp_path / "ck")
    assert_same_training(whole["loss"], resumed["loss"], "loss")
    for got, want in zip(resumed_model.get_weights(), whole_model.get_weights()):
        assert_same_training(got, want, "weights")
    keras.utils.set_random_seed(0)
    penalty = code["GradientPenaltyTraining"](_tiny_model(), weight=0.5)
    h = training.fit(penalty, (x, y), 2, batch_size=16, seed=0, show_progress=False)
    assert np.isfinite(h["loss"]).all() and min(h["penalty"]) > 0


def test_learners_projection_is_what_adversarial_training_uses(capsys):
    calls = []

    def my_project(x_adv, x, eps):                    # correct, and counts its calls
        calls.append(1)
        return tf.clip_by_value(tf.clip_by_value(x_adv, x - eps, x + eps), 0.0, 1.0)

    project = nb06.EXERCISES[2].use(my_project, "projection")
    assert project is my_project and "your projection" in capsys.readouterr().out
    code = notebook_code(project=project)
    x, y = _tiny_data()
    trainer = code["AdversarialTraining"](_tiny_model(), eps=0.1, attack_steps=2)
    assert trainer.project is my_project
    calls.clear()
    training.fit(trainer, (x, y), 2, batch_size=16, seed=0, show_progress=False)
    assert calls                                       # traced into the compiled training step
    calls.clear()
    code["pgd"](_tiny_model(), x, y, 0.1, steps=2)
    assert calls                                       # and used by the PGD evaluation
    # a projection that forgets the ball is rejected, and the reference trains instead
    fallback = nb06.EXERCISES[2].use(lambda a, x, e: tf.clip_by_value(a, 0.0, 1.0), "projection")
    assert fallback is nb06.project and "reference projection" in capsys.readouterr().out


def test_a_new_projection_starts_a_fresh_checkpoint():
    x, y = _tiny_data()

    def key(project):
        keras.utils.set_random_seed(0)
        trainer = notebook_code(project=project)["AdversarialTraining"](_tiny_model(), eps=0.1, attack_steps=2)
        return training.checkpoint_key(trainer, (x, y), 0, 16)

    other = lambda a, x, e: tf.minimum(tf.maximum(tf.minimum(tf.maximum(a, x - e), x + e), 0.0), 1.0)  # noqa: E731
    assert key(nb06.project) == key(nb06.project)
    assert key(other) != key(nb06.project)


def test_learners_fgsm_step_is_what_fgsm_uses(small_cnn):
    model, x, y = small_cnn
    calls = []

    def my_fgsm_step(x, grad, eps):
        calls.append(1)
        return np.clip(x + eps * np.sign(grad), 0.0, 1.0)

    step = nb06.EXERCISES[0].use(my_fgsm_step, "FGSM step")
    assert step is my_fgsm_step
    calls.clear()                                      # the check called it once
    fgsm = notebook_code(fgsm_step=step)["fgsm"]
    fgsm(model, x, y, 0.1)
    fgsm(model, x, y, 0.1, target=(y + 1) % 3)
    assert len(calls) == 2


# --- exercises --------------------------------------------------------------------------------

# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook


@pytest.mark.parametrize("index, wrong", [
    (0, lambda x, g, e: np.clip(x - e * np.sign(g), 0, 1)),          # against the gradient
    (0, lambda x, g, e: x + e * np.sign(g)),                           # no clipping
    (0, lambda x, g, e: np.clip(x + e * g, 0, 1)),                     # the gradient, not its sign
    (1, lambda w, e: e * np.linalg.norm(w)),                           # the L2 answer
    (1, lambda w, e: e * np.abs(w).max()),                             # one pixel only
    (2, lambda a, x, e: np.clip(a, 0, 1)),                             # forgets the ball
    (2, lambda a, x, e: np.clip(a, x - e, x + e)),                     # forgets the pixel range
    (2, lambda a, x, e: np.clip(np.clip(a, x - e, x + e), 0, 1)),      # NumPy: fails when compiled
    (3, lambda c, a, t: (np.mean(c > t), np.mean(a > t))),            # rates swapped
    (3, lambda c, a, t: (np.mean(a >= t), np.mean(c < t))),           # fpr from the wrong side
])
def test_exercise_wrong_answers_are_incorrect(index, wrong):
    result = nb06.EXERCISES[index].check(wrong)
    assert result.status == "incorrect", result


# --- the notebook -----------------------------------------------------------------------------

@pytest.mark.notebook
def test_smoke_run_records_contract_metrics(smoke_run):
    metrics, outdir = smoke_run("06_adversarial")
    m = metrics["metrics"]
    for key in ["clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "jsma_success_rate",
                "jsma_pixels_changed_pct", "at_clean_accuracy", "at_pgd_accuracy_eps03",
                "reg_pgd_accuracy_eps03", "detector_tpr", "detector_fpr", "train_seconds"]:
        assert key in m, key
    assert set(m["fgsm_accuracy"]) == set(m["pgd_accuracy"]) == {"0.05", "0.1", "0.2", "0.25", "0.3"}
    for key in ["clean_accuracy", "at_clean_accuracy", "jsma_success_rate", "detector_tpr",
                "detector_fpr", "reg_pgd_accuracy_eps03", "at_pgd_accuracy_eps03"]:
        assert 0.0 <= m[key] <= 1.0, key
    assert m["clean_accuracy"] > 0.5
    assert m["pgd_accuracy"]["0.3"] <= m["fgsm_accuracy"]["0.3"] + 1e-9
    assert 0 < m["jsma_pixels_changed_pct"] <= 14.5
    assert m["model_outputs"] == "logits" and m["train_seconds"] > 0
    for name in ["classifier.keras", "classifier_at.keras", "accuracy_vs_eps.png", "jsma_grid.png",
                 "detector_scores.png", "samples.npz"]:
        assert (outdir / name).exists(), name
