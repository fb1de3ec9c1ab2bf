"""Notebook 09 — quality, privacy and responsible use: exercises, the notebook's DP-SGD step and
membership attacks (executed from the .ipynb's own cells), and the smoke run."""
import ast
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from labkit.exercises import nb09

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
from conftest import assert_same_training  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_privacy.ipynb"


# --- the notebook's own code, executed from its cells --------------------------------------------

def _cell(marker):
    """The source of the one code cell of notebook 09 that contains ``marker``."""
    cells = [c.source for c in nbformat.read(str(NOTEBOOK), as_version=4).cells
             if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"{len(cells)} cells contain {marker!r}"
    return cells[0]


def _definitions(source, namespace):
    """Execute only the imports, functions and classes of a cell (not its demonstration lines)."""
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
    exec(compile(tree, "<a cell of 09_privacy.ipynb>", "exec"), namespace)


@pytest.fixture(scope="module")
def nb():
    """What the notebook's cells define: CVAE, DPCVAE, per_example_gradients, the attacks, auc_bound."""
    from labkit import privacy, vae

    namespace = {"np": np, "keras": keras, "vae": vae, "privacy": privacy, "seed": 0, "__name__": "nb09_cells"}
    for marker in ("class CVAE(", "def per_example_gradients(", "class DPCVAE(", "def candidates(",
                   "def auc_bound("):
        _definitions(_cell(marker), namespace)
    return namespace


def _digits(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 28, 28, 1)) < 0.2).astype("float32")
    return x, np.eye(10, dtype="float32")[np.arange(n) % 10]


def _cvae(hidden=8, latent_dim=2):
    from labkit import vae

    keras.utils.set_random_seed(0)
    return vae.build_cvae(latent_dim=latent_dim, hidden=hidden)


def _dp(nb, clip_fn=nb09.clip_per_example, sigma=1.1, clip_norm=1.0, n=40, batch_size=8):
    return nb["DPCVAE"](*_cvae(), n=n, batch_size=batch_size, learning_rate=1e-3, clip_norm=clip_norm,
                        noise_multiplier=sigma, clip_fn=clip_fn)


def test_per_example_gradients_match_one_at_a_time(nb):
    model = nb["CVAE"](*_cvae(), n=40, batch_size=8, learning_rate=1e-3)
    x, y = _digits(6)
    eps = np.random.default_rng(1).normal(size=(6, 2)).astype("float32")
    grads = nb["per_example_gradients"](model.negative_elbo, model.trainable_variables, (x, y, eps))
    for i in (0, 3, 5):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model.negative_elbo(x[i:i + 1], y[i:i + 1], eps[i:i + 1]))
        for g_all, g_one in zip(grads, tape.gradient(loss, model.trainable_variables)):
            np.testing.assert_allclose(g_all[i].numpy(), g_one.numpy(), rtol=1e-4, atol=1e-4)


def test_reference_clipping_bounds_every_examples_norm():
    rng = np.random.default_rng(0)
    grads = [tf.constant(rng.normal(size=(16, 3, 4)) * 3, tf.float32), tf.constant(rng.normal(size=(16, 5)), tf.float32)]
    before = np.sqrt(sum(np.sum(g.numpy().reshape(16, -1) ** 2, axis=1) for g in grads))
    for clip in (0.1, 1.0, 5.0):
        after = np.sqrt(sum(np.sum(g.numpy().reshape(16, -1) ** 2, axis=1)
                            for g in nb09.clip_per_example(grads, clip)))
        small = before <= clip                                   # short gradients are left alone
        np.testing.assert_allclose(after[small], before[small], rtol=1e-5)
        np.testing.assert_allclose(after[~small], clip, rtol=1e-5)
        assert (~small).any()


def test_dp_step_without_noise_and_clipping_is_the_plain_step(nb):
    """With σ = 0, a huge C and a batch of exactly the expected size, DP-SGD's update is the plain one."""
    x, y = _digits(8)
    eps = np.random.default_rng(2).normal(size=(8, 2)).astype("float32")
    plain = nb["CVAE"](*_cvae(), n=40, batch_size=8, learning_rate=1e-3)
    private = _dp(nb, sigma=0.0, clip_norm=1e9)
    for model in (plain, private):
        model.train_step((tf.constant(x), tf.constant(y), tf.constant(eps)))
    for a, b in zip(plain.trainable_variables, private.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_dp_noise_has_the_calibrated_scale_and_differs_per_step(nb):
    """Zero clipped gradients: the update is the noise alone, N(0, (σC)²) / expected batch size."""
    model = _dp(nb, clip_fn=lambda grads, c: [tf.zeros_like(g) for g in grads], sigma=1.5, clip_norm=2.0)
    model.adam = keras.optimizers.SGD(1.0)                       # weight change = -(the gradient)
    model.adam.build(model.trainable_variables)
    x, y = _digits(8)
    batch = (tf.constant(x), tf.constant(y), tf.zeros((8, 2)))
    steps = []
    for step in range(2):
        start = [v.numpy().copy() for v in model.trainable_variables]
        model.step.assign(step)
        model.train_step(batch)
        steps.append(np.concatenate([(s - v.numpy()).ravel() for s, v in zip(start, model.trainable_variables)]))
    expected_batch = 8
    assert steps[0].std() * expected_batch == pytest.approx(1.5 * 2.0, rel=0.03)
    assert abs(steps[0].mean()) < 0.01
    assert not np.allclose(steps[0], steps[1])                   # new noise every step


def test_dp_batches_are_poisson_sampled(nb):
    model = _dp(nb, n=400, batch_size=40)
    data = _digits(400)
    sizes = []
    for step in range(200):
        model.step.assign(step)
        sizes.append(len(model.draw_batch(data, np.random.default_rng([0, step]), 40)[0]))
    assert np.mean(sizes) == pytest.approx(40, rel=0.05) and np.std(sizes) > 3     # q = 0.1, sizes vary


def test_dp_training_interrupted_and_resumed_equals_uninterrupted(nb, tmp_path):
    from labkit import training

    data = _digits(40)

    def run(folder, steps):
        model = _dp(nb)
        history = training.fit(model, data, steps, batch_size=8, seed=5, checkpoint_dir=folder,
                               checkpoint_every=4, show_progress=False)
        return model, history

    whole, h_whole = run(tmp_path / "whole", 9)
    run(tmp_path / "split", 6)                                   # interrupted after 6 steps
    resumed, h_resumed = run(tmp_path / "split", 9)
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        assert_same_training(a, b, "weights")
    assert_same_training(h_resumed["loss"], h_whole["loss"], "loss")
    assert len(h_whole["loss"]) == 9
    again, h_again = run(tmp_path / "whole", 9)                  # a re-run restores, does not train
    assert h_again["loss"] == h_whole["loss"] and h_again["seconds"] == h_whole["seconds"]


def test_the_learners_clipping_is_what_trains(nb, tmp_path):
    """Exercise 3 passed through ``use`` as in the notebook: the DP-SGD step calls the learner's function."""
    from labkit import training

    calls = tf.Variable(0, dtype=tf.int64, trainable=False)

    def clip_per_example(grads, clip_norm):                      # a correct answer that counts its calls
        calls.assign_add(1)
        squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in grads]
        scale = tf.minimum(1.0, clip_norm / tf.maximum(tf.sqrt(tf.add_n(squares)), 1e-12))
        return [g * tf.reshape(scale, [-1] + [1] * (len(g.shape) - 1)) for g in grads]

    clip_fn = nb09.EXERCISES[2].use(clip_per_example, "per-example clipping")
    assert clip_fn is clip_per_example
    calls.assign(0)                                              # check() ran it too
    model = _dp(nb, clip_fn=clip_fn)
    training.fit(model, _digits(40), 3, batch_size=8, seed=0, checkpoint_dir=tmp_path / "mine", show_progress=False)
    assert int(calls.numpy()) == 3
    # a blank answer trains with the reference, and the checkpoint key tells the two apart
    from labkit.exercises import ____
    reference = nb09.EXERCISES[2].use(lambda grads, clip_norm: ____, "per-example clipping")
    assert reference is nb09.clip_per_example
    assert training.checkpoint_key(_dp(nb, clip_fn=reference), _digits(40), 0, 8) != \
        training.checkpoint_key(_dp(nb, clip_fn=clip_fn), _digits(40), 0, 8)


def test_black_box_attack_is_the_reports_attack(nb):
    """The notebook's visible attack, on the same candidates, gives the report's AUC exactly."""
    from types import SimpleNamespace

    from labkit import privacy, quality

    rng = np.random.default_rng(3)
    x_train, x_hold, synthetic = rng.random((150, 28, 28)), rng.random((120, 28, 28)), rng.random((300, 28, 28))
    nb.update(x_hold=x_hold, y_hold=np.zeros(120, int), cfg=SimpleNamespace(members=80), seed=0)
    x, _, k = nb["candidates"](x_train, np.zeros(150, int))
    scores = nb["black_box_scores"](x, synthetic)
    mine = privacy.membership_auc(scores[:k], scores[k:])
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    _, attack, _, _ = quality._privacy_section(flat(x_train), flat(x_hold), flat(synthetic), 80, 0)  # image_report's
    assert (mine.auc, mine.low, mine.high) == (attack.auc, attack.low, attack.high)


def test_auc_bound_of_the_dp_guarantee(nb):
    bound = nb["auc_bound"]
    assert bound(0.0, 0.0) == pytest.approx(0.5, abs=1e-4)        # ε = 0: no attack beats guessing
    assert bound(1.0, 0.0) == pytest.approx(0.731, abs=2e-3)     # worked out by hand in the notebook's terms
    assert bound(1.0, 1e-5) > bound(1.0, 0.0)
    assert bound(1000.0, 1e-5) == pytest.approx(1.0, abs=1e-3)


# --- exercises: a typical wrong answer is rejected (the reference passing is in test_exercises.py) ---

def test_exercise_wrong_answers_are_incorrect():
    q1, q2, q3, q4 = nb09.EXERCISES
    assert q1.check(lambda m, n: float(np.mean(m) - np.mean(n))).status == "incorrect"
    assert q1.check(lambda m, n: 1 - nb09.attack_auc(m, n)).status == "incorrect"
    assert q1.check(lambda m, n: float(np.mean(np.asarray(m)[:, None] > np.asarray(n)[None, :]))).status == "incorrect"
    assert q2.check(lambda s, h: np.median(h) / np.median(s)).status == "incorrect"
    assert q2.check(lambda s, h: np.mean(s) / np.mean(h)).status == "incorrect"
    per_variable = lambda grads, c: [tf.clip_by_norm(g, c, axes=list(range(1, len(g.shape)))) for g in grads]  # noqa: E731
    assert "all its variables together" in q3.check(per_variable).message
    assert "whole batch" in q3.check(lambda grads, c: tf.clip_by_global_norm(grads, c)[0]).message
    assert "direction" in q3.check(lambda grads, c: [tf.clip_by_value(g, -c, c) for g in grads]).message

    def numpy_answer(grads, c):                                  # right numbers, but not a graph
        norms = np.sqrt(sum(np.sum(np.reshape(np.asarray(g), (len(g), -1)) ** 2, axis=1) for g in grads))
        return [np.asarray(g) * np.minimum(1, c / norms).reshape([-1] + [1] * (np.ndim(g) - 1)) for g in grads]

    assert "TensorFlow operations" in q3.check(numpy_answer).message
    use_everything = lambda card: all(c["passed"] for c in card["checks"])  # noqa: E731
    assert q4.check(use_everything).status == "incorrect"
    attack_only = lambda card: card["checks"][0]["passed"]                  # noqa: E731
    assert q4.check(attack_only).status == "incorrect"
    no_dcr = lambda card: all(c["passed"] for c in card["checks"]          # noqa: E731
                              if c["check"] not in ("useful for training models",
                                                    "not closer to training data than fresh data"))
    assert q4.check(no_dcr).status == "incorrect"


def test_may_share_reference_agrees_with_the_release_checks():
    """q4's card names are the ones labkit.quality writes."""
    from labkit import quality

    names = [c["check"] for c in nb09._card(True, True, True, True, True)["checks"]]

    class Report:
        measures = {"privacy": {"near_copy_share_synthetic": 0.01, "near_copy_share_holdout": 0.05,
                                "dcr_ratio": 1.0},
                    "utility": {"tstr": 0.5, "trtr": 0.8, "tstr_over_trtr": 0.6}}
        attack = type("A", (), {"auc": 0.5, "low": 0.45, "high": 0.55, "members": 500})()

    assert [c[0] for c in quality.release_checks(Report(), epsilon=1.0)] == names
    assert quality.release_decision(quality.release_checks(Report(), epsilon=1.0)) == "share"
    assert quality.release_decision(quality.release_checks(Report(), epsilon=8.0)) == "do not share"
    Report.attack.high = 0.65                                    # too few candidates: a wide interval
    assert quality.release_decision(quality.release_checks(Report(), epsilon=1.0)) == "do not share"


# --- the smoke run ---------------------------------------------------------------------------

@pytest.mark.notebook
def test_smoke_run_records_contract_metrics(smoke_run):
    metrics, outdir = smoke_run("09_privacy")
    m = metrics["metrics"]
    for key in ["mia_auc_overfit", "mia_auc_regularised", "mia_auc_dp", "mia_auc_whitebox_dp", "dcr_ratio_overfit",
                "dcr_ratio_regularised", "dp_utility", "dp_epsilons", "dp_delta", "mia_auc_overfit_ci_low",
                "mia_auc_whitebox_overfit_ci_low", "mia_whitebox_dp_ci_low_minus_chance", "mia_whitebox_dp_drop",
                "mia_blackbox_dp_ci_low_minus_chance", "dp_utility_weakest_eps", "dp_utility_drop", "dp_auc_bound",
                "card_overfit_decision", "card_dp_decision"]:
        assert key in m, key
    assert m["dp_epsilons"] == [1000.0, 30.0, 1.0] and m["dp_delta"] == 1e-5
    keys = {"no DP", "clip only", "ε=1000", "ε=30", "ε=1"}
    assert set(m["mia_auc_dp"]) == set(m["dp_utility"]) == set(m["mia_auc_whitebox_dp"]) == keys
    assert m["mia_auc_dp"]["no DP"] == m["mia_auc_overfit"]     # the no-DP row is the over-fitted generator
    for value in [m["mia_auc_overfit"], m["mia_auc_regularised"], *m["mia_auc_dp"].values(),
                  *m["dp_utility"].values()]:
        assert 0.0 <= value <= 1.0
    assert m["dp_auc_bound"]["ε=1"] < m["dp_auc_bound"]["ε=30"] <= m["dp_auc_bound"]["no DP"] == pytest.approx(1.0, abs=1e-3)
    assert m["card_overfit_decision"] in ("share", "do not share")
    assert set(m["table_report"]) >= {"column_shapes", "tstr", "mia_auc", "exact_copy_share"}
    # the data card's numbers are the report's
    card = json.loads((outdir / "data_card_digits-cvae-dp-smallest-eps.json").read_text())
    assert card["measured"]["privacy"]["mia_auc"] == pytest.approx(m["mia_auc_dp"]["ε=1"])
    assert card["measured"]["utility"]["tstr"] == pytest.approx(m["dp_utility"]["ε=1"])
    for name in ["metrics.json", "mia_roc.png", "privacy_utility.png", "dp_samples.png", "traversals.png",
                 "ink_direction.png", "report_overfit.png", "samples.npz"]:
        assert (outdir / name).exists(), name
