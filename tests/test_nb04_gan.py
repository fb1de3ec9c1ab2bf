"""Notebook 04 (GANs on digits): image metrics, the notebook's models and GAN step, exercises, smoke run."""
import numpy as np
import pytest
from pathlib import Path

from scipy import linalg

import labkit
from labkit import image_metrics as im
from labkit.exercises import nb04 as _nb04  # noqa: F401  (makes labkit.exercises.nb04 available)
from labkit.training import Callback, Evaluate, fit

from conftest import assert_same_training


# --- FID ---------------------------------------------------------------------------------

def _numpy_fid(a, b):
    """Direct textbook computation with scipy.linalg.sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
    assert im.fid(f, f) == pytest.approx(0.0, abs=1e-6)
    values = [im.fid(f, f + rng.normal(scale=s, size=f.shape)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in zip(values, values[1:]))


def test_fid_matches_closed_form_for_gaussians():
    # Diagonal Gaussians: FID = |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = |dmu|^2 + sum (sd1 - sd2)^2
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 1.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    closed = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()
    assert im.frechet_distance(mu1, np.diag(sd1 ** 2), mu2, np.diag(sd2 ** 2)) == pytest.approx(closed)
    # full covariances: against scipy's sqrtm
    rng = np.random.default_rng(1)
    a1, a2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a1 @ a1.T + np.eye(5), a2 @ a2.T + np.eye(5)
    direct = 1.0 + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert im.frechet_distance(np.zeros(5), s1, np.eye(5)[0], s2) == pytest.approx(direct, rel=1e-6)
    # sampled data: the estimate matches the direct NumPy computation and approaches the closed form
    x = rng.normal(mu1, sd1, size=(20000, 3))
    y = rng.normal(mu2, sd2, size=(20000, 3))
    assert im.fid(x, y) == pytest.approx(_numpy_fid(x, y), rel=1e-6)
    assert im.fid(x, y) == pytest.approx(closed, rel=0.05)


def test_fid_rejects_bad_input():
    with pytest.raises(ValueError, match="same number of features"):
        im.fid(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="2-D"):
        im.fid(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        im.fid(np.full((10, 2), np.nan), np.zeros((10, 2)))


# --- KID ---------------------------------------------------------------------------------

def test_kid_is_unbiased_on_equal_distributions():
    rng = np.random.default_rng(2)
    estimates = [im.mmd2_unbiased(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)))
                 for _ in range(300)]
    mean, se = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
    assert abs(mean) < 3 * se + 1e-12
    assert min(estimates) < 0  # an unbiased estimate of 0 must go negative sometimes
    shifted = im.kid(rng.normal(size=(500, 8)), rng.normal(0.5, size=(500, 8)), subsets=5, subset_size=200)
    same = im.kid(rng.normal(size=(500, 8)), rng.normal(size=(500, 8)), subsets=5, subset_size=200)
    assert shifted > 10 * abs(same)


def test_mmd_matches_brute_force():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(9, 3))
    k = lambda x, y: (x @ y / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(a[i], a[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(b[i], b[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(a[i], b[j]) for i in range(7) for j in range(9)) / (7 * 9)
    assert im.mmd2_unbiased(a, b) == pytest.approx(xx + yy - 2 * xy)


# --- density and coverage --------------------------------------------------------------------

def _brute_density_coverage(real, fake, k):
    radii = []
    for i, r in enumerate(real):
        d = sorted(np.linalg.norm(r - o) for j, o in enumerate(real) if j != i)
        radii.append(d[k - 1])
    inside = np.array([[np.linalg.norm(f - r) < rad for r, rad in zip(real, radii)] for f in fake])
    return inside.sum() / (k * len(fake)), inside.any(0).mean()


def test_density_coverage_match_brute_force():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(60, 4)), rng.normal(0.3, 1.2, size=(50, 4))
    got = im.density_coverage(real, fake, k=3, chunk=7)
    density, coverage = _brute_density_coverage(real, fake, 3)
    assert got["density"] == pytest.approx(density)
    assert got["coverage"] == pytest.approx(coverage)


def test_density_coverage_behave():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(1000, 5))
    same = im.density_coverage(real, rng.normal(size=(1000, 5)))
    collapsed = im.density_coverage(real, rng.normal(scale=0.1, size=(1000, 5)))
    assert 0.8 < same["density"] < 1.2 and same["coverage"] > 0.9
    assert collapsed["coverage"] < 0.3 and collapsed["density"] > same["density"]
    with pytest.raises(ValueError, match="at least"):
        im.density_coverage(real[:3], real[:3], k=5)


# --- class balance and memorisation ---------------------------------------------------------

def test_class_balance():
    labels = np.r_[np.zeros(50), np.ones(46), np.full(4, 2)].astype(int)
    assert im.class_shares(labels, 3) == pytest.approx([0.5, 0.46, 0.04])
    assert im.classes_covered(labels, 0.05, 3) == 2
    with pytest.raises(ValueError, match="0..2"):
        im.class_shares([0, 3], 3)


def test_memorisation_check_finds_planted_copies():
    rng = np.random.default_rng(6)
    train = rng.random((300, 28, 28)).astype(np.float32)
    holdout = rng.random((100, 28, 28)).astype(np.float32)
    fresh = rng.random((90, 28, 28)).astype(np.float32)
    planted = np.clip(train[[5, 17, 42, 99, 250, 7, 8, 9, 10, 11]] + rng.normal(0, 0.01, (10, 28, 28)), 0, 1)
    samples = np.concatenate([fresh, planted])
    index, distance = im.nearest_training(samples, train, chunk=13)
    assert list(index[90:]) == [5, 17, 42, 99, 250, 7, 8, 9, 10, 11]
    threshold = im.near_copy_threshold(holdout, train)
    assert distance[90:].max() < threshold < distance[:90].min()
    assert im.near_copy_share(samples, train, threshold) == pytest.approx(0.10)


def test_images_are_validated():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        im.as_images(np.full((2, 28, 28), -1.0))
    with pytest.raises(ValueError, match="shape"):
        im.as_images(np.zeros((2, 32, 32)))
    with pytest.raises(labkit.ParameterError, match="threshold"):
        im.near_copy_share(np.zeros((2, 28, 28)), np.zeros((2, 28, 28)), -1)


def test_reference_classifier_is_cached(tmp_path):
    digits = labkit.data.load_digits()
    x, y = digits.x[::10], digits.y[::10]
    model = im.reference_classifier(tmp_path, x, y, epochs=1)
    assert not model.was_cached and model.cache_path.exists()
    again = im.reference_classifier(tmp_path, x, y, epochs=1)
    assert again.was_cached
    f = im.features(again, x[:20])
    assert f.shape == (20, 128)
    np.testing.assert_allclose(f, im.features(model, x[:20]), rtol=1e-5, atol=1e-5)
    assert im.predict_labels(again, x[:20]).shape == (20,)
    with pytest.raises(ValueError, match="y_train"):
        im.reference_classifier(tmp_path, x, y.astype(float))



@pytest.mark.filterwarnings("error::UserWarning")
def test_reference_classifier_is_reused_from_another_notebook(tmp_path):
    """05 and 10 load 04's classifier (with its checksum) instead of training it again."""
    digits = labkit.data.load_digits()
    x, y = digits.x[::10], digits.y[::10]
    first = im.reference_classifier(tmp_path / "04_gan", x, y, epochs=1)
    reused = im.reference_classifier(tmp_path / "05_vae", x, y, epochs=1, reuse_from=tmp_path / "04_gan")
    assert reused.was_cached and reused.cache_path.parent == tmp_path / "05_vae"
    assert (tmp_path / "05_vae" / (first.cache_path.name + ".sha256")).is_file()
    np.testing.assert_allclose(im.features(reused, x[:20]), im.features(first, x[:20]), rtol=1e-5, atol=1e-5)
    other = im.reference_classifier(tmp_path / "10", x, y, epochs=2, reuse_from=tmp_path / "04_gan")
    assert not other.was_cached                                  # other settings: trained here


def test_a_tampered_classifier_in_the_other_folder_is_not_reused(tmp_path):
    digits = labkit.data.load_digits()
    x, y = digits.x[::10], digits.y[::10]
    first = im.reference_classifier(tmp_path / "04_gan", x, y, epochs=1)
    first.cache_path.write_bytes(first.cache_path.read_bytes() + b"x")   # checksum no longer matches
    with pytest.warns(UserWarning, match="SHA-256"):
        again = im.reference_classifier(tmp_path / "05_vae", x, y, epochs=1, reuse_from=tmp_path / "04_gan")
    assert not again.was_cached

# --- the notebook's models and training step ---------------------------------------------------
# The models and the GAN class live in notebook cells; the tests exec those cells' source.

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_gan.ipynb"


def _cell(marker):
    import nbformat

    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells
             if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"expected one code cell containing {marker!r}, found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def nb():
    """The notebook's model builders and GAN class, exec'd from its cells (small sizes)."""
    import types

    import keras
    import tensorflow as tf

    from labkit import training

    ns = {"np": np, "labkit": labkit, "training": training, "keras": keras, "tf": tf,
          "cfg": types.SimpleNamespace(latent_dim=8, width=4)}
    for marker in ("def dense_generator(", "class GAN(training.Model)", "def dcgan_generator(",
                   "def cgan_generator("):
        exec(compile(_cell(marker), f"04_gan.ipynb:{marker}", "exec"), ns)
    return types.SimpleNamespace(**ns)


def _architecture(model):
    return [(type(layer).__name__, str(layer.output.shape) if hasattr(layer, "output") else "",
             layer.count_params()) for layer in model.layers]


def test_labkit_dcgan_builders_match_the_notebook_cells(nb):
    from labkit import gan as G

    pairs = [(G.dcgan_generator(8, 4), nb.dcgan_generator(8, 4)),
             (G.dcgan_discriminator(4), nb.dcgan_discriminator(4)),
             (G.dcgan_generator(8, 4, num_classes=10), nb.cgan_generator(8, 4)),
             (G.dcgan_discriminator(4, num_classes=10), nb.cgan_discriminator(4))]
    for library, notebook in pairs:
        assert library.name == notebook.name
        assert _architecture(library) == _architecture(notebook)
        assert library.count_params() == notebook.count_params()


def test_notebook_models_have_the_right_shapes(nb):
    z = np.zeros((3, 8), np.float32)
    labels = np.array([0, 4, 9], np.int32)
    assert nb.dense_generator(8)(z).shape == (3, 28, 28, 1)
    assert nb.dense_discriminator()(np.zeros((3, 28, 28, 1))).shape == (3, 1)
    assert nb.dcgan_generator(8, 8)(z).shape == (3, 28, 28, 1)
    assert nb.cgan_generator(8, 8)([z, labels]).shape == (3, 28, 28, 1)
    assert nb.cgan_discriminator(8)([np.zeros((3, 28, 28, 1)), labels]).shape == (3, 1)


def _tiny_digits(n=64):
    digits = labkit.data.load_digits()
    return digits.x[::5000 // n][:n], digits.y[::5000 // n][:n]


def _losses():
    ex = labkit.exercises.nb04
    return dict(generator_loss=ex.generator_loss, discriminator_loss=ex.discriminator_loss)


class _ForgetOptimisers(Callback):
    """A broken resume: zero the optimisers' moments when a run starts from a checkpoint."""

    def on_train_begin(self, model, history, step):
        if step > 0:
            for opt in (model.g_optimizer, model.d_optimizer):
                for v in opt.variables[1:]:   # [0] is the step counter
                    v.assign(v * 0)


def test_training_resumes_exactly_from_a_checkpoint(nb, tmp_path):
    x, _ = _tiny_digits()

    def make():
        labkit.seed_everything(0)
        return nb.GAN(nb.dcgan_generator(8, 4), nb.dcgan_discriminator(4), 8, **_losses(),
                      r1_penalty=labkit.exercises.nb04.r1_penalty, r1_gamma=1.0)

    def interrupted_and_resumed(folder, callbacks=()):
        fit(make(), x, steps=3, batch_size=8, checkpoint_dir=folder, show_progress=False)
        resumed = make()  # a fresh process would rebuild the models, then find the checkpoint
        return resumed, fit(resumed, x, steps=6, batch_size=8, checkpoint_dir=folder, show_progress=False,
                            callbacks=list(callbacks))

    straight = make()
    h1 = fit(straight, x, steps=6, batch_size=8, show_progress=False)
    resumed, h2 = interrupted_and_resumed(tmp_path / "ok")
    assert h2["steps"] == 6 and len(h2["d_loss"]) == 6
    for name in ("d_loss", "g_loss"):
        assert_same_training(h1[name], h2[name], name)
    for a, b in zip(straight.ema_generator.get_weights(), resumed.ema_generator.get_weights()):
        assert_same_training(a, b, "EMA generator")
    _, broken = interrupted_and_resumed(tmp_path / "broken", [_ForgetOptimisers()])
    with pytest.raises(AssertionError):   # the tolerance is far below what a lost optimiser state does
        assert_same_training(h1["d_loss"], broken["d_loss"])


def test_conditional_training_evaluates_and_samples_images(nb):
    x, y = _tiny_digits()
    labkit.seed_everything(0)
    cgan = nb.GAN(nb.cgan_generator(8, 4), nb.cgan_discriminator(4), 8, **_losses(), num_classes=10)
    history = fit(cgan, (x, y), steps=2, batch_size=8, show_progress=False,
                  callbacks=[Evaluate(lambda g: {"mean": g.sample(10, labels=np.arange(10)).mean()},
                                      every=1)])
    assert [e["step"] for e in history["evaluations"]] == [1, 2]
    images = cgan.sample(20, labels=np.arange(20) % 10)
    assert images.shape == (20, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_time_budget_stops_training(nb):
    x, _ = _tiny_digits()
    gan = nb.GAN(nb.dense_generator(4, hidden=8), nb.dense_discriminator(8), 4, **_losses(), ema=None)
    history = fit(gan, x, steps=10_000, batch_size=8, max_seconds=0.5, show_progress=False)
    assert 0 < history["steps"] < 10_000 and history["seconds"] >= 0.5


def test_generator_step_does_not_touch_the_discriminator(nb):
    import tensorflow as tf

    labkit.seed_everything(0)
    gan = nb.GAN(nb.dense_generator(8, hidden=16), nb.dense_discriminator(16), 8, **_losses(), ema=None)
    batch = gan.draw_batch(np.zeros((4, 28, 28), np.float32), np.random.default_rng(0), 4)
    assert batch["images"].min() == -1.0   # [0, 1] pixels rescaled to the generator's [-1, 1]
    d_before = [w.copy() for w in gan.discriminator.get_weights()]
    g_before = [w.copy() for w in gan.generator.get_weights()]
    calls = []   # replace the discriminator's optimiser by one that records whether it was used
    original = gan.d_optimizer.apply_gradients
    gan.d_optimizer.apply_gradients = lambda pairs: calls.append(1) or original(pairs)
    gan.train_step({k: tf.constant(v) for k, v in batch.items()})
    assert len(calls) == 1  # one discriminator update per step, none during the generator's
    assert any(not np.allclose(a, b) for a, b in zip(g_before, gan.generator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(d_before, gan.discriminator.get_weights()))


def test_r1_on_a_sub_batch_is_the_same_step_in_the_notebook_and_in_labkit(nb):
    """``r1_batch``: the penalty sees the first r1_batch real images; labkit's GAN (07 builds on it)
    takes the same step as the notebook's class, and r1_batch joins the checkpoint key."""
    import tensorflow as tf

    from labkit import gan as G
    from labkit.training import checkpoint_key

    x, _ = _tiny_digits()
    seen = []

    def r1(discriminator, real_images, gamma):
        seen.append(int(real_images.shape[0]))
        return labkit.exercises.nb04.r1_penalty(discriminator, real_images, gamma)

    def pair(r1_batch):
        labkit.seed_everything(0)
        mine = nb.GAN(nb.dcgan_generator(8, 4), nb.dcgan_discriminator(4), 8, **_losses(),
                      r1_penalty=r1, r1_gamma=30, r1_batch=r1_batch)
        lib = G.GAN(G.dcgan_generator(8, 4), G.dcgan_discriminator(4), 8, r1_gamma=30, r1_batch=r1_batch)
        for a, b in [(mine.generator, lib.generator), (mine.discriminator, lib.discriminator),
                     (mine.ema_generator, lib.ema_generator)]:
            b.set_weights(a.get_weights())
        return mine, lib

    drawn = pair(None)[0].draw_batch(x, np.random.default_rng(0), 8)
    batch = {k: tf.constant(v) for k, v in drawn.items()}
    after = {}
    for r1_batch in (2, None):
        mine, lib = pair(r1_batch)
        seen.clear()
        out_mine, out_lib = mine.train_step(batch), lib.train_step(batch)
        assert seen == [2 if r1_batch else 8]
        for name in ("d_loss", "g_loss"):
            assert float(out_mine[name]) == pytest.approx(float(out_lib[name]), rel=1e-5)
        for a, b in zip(mine.discriminator.get_weights(), lib.discriminator.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        after[r1_batch] = mine.discriminator.get_weights()
        assert mine.checkpoint_params()["r1_batch"] == lib.checkpoint_params()["r1_batch"] == r1_batch
    assert any(not np.allclose(a, b) for a, b in zip(after[2], after[None]))   # the sub-batch matters
    keys = {checkpoint_key(m, x, 0, 8) for m in (pair(2)[0], pair(None)[0])}
    assert len(keys) == 2


def test_pixel_ranges():
    from labkit import gan as G

    np.testing.assert_allclose(G.to_unit(G.to_tanh(np.full((2, 28, 28), 0.25))), 0.25, atol=1e-6)


# --- exercises ---------------------------------------------------------------------------------

# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook

def _bce():
    import keras

    return keras.losses.BinaryCrossentropy(from_logits=True)


def test_q1_rejects_the_wrong_target_and_the_saturating_loss():
    import tensorflow as tf

    ex, bce = labkit.exercises.load("04"), _bce()
    wrong_target = ex.q1.check(lambda logits: bce(tf.zeros_like(logits), logits))
    assert wrong_target.status == "incorrect" and "real" in wrong_target.message
    minimax = ex.q1.check(lambda logits: -bce(tf.zeros_like(logits), logits))
    assert minimax.status == "incorrect" and "saturates" in minimax.message
    assert ex.q1.check(lambda logits: tf.reduce_mean(logits)).status == "incorrect"


def test_q2_rejects_two_sided_smoothing_and_a_hard_coded_label():
    import tensorflow as tf

    ex, bce = labkit.exercises.load("04"), _bce()
    two_sided = ex.q2.check(lambda r, f, real_label=0.9: bce(tf.fill(tf.shape(r), real_label), r)
                            + bce(tf.fill(tf.shape(f), 1 - real_label), f))
    assert two_sided.status == "incorrect" and "one-sided" in two_sided.message
    hard_coded = ex.q2.check(lambda r, f, real_label=0.9: bce(tf.fill(tf.shape(r), 0.9), r)
                             + bce(tf.zeros_like(f), f))
    assert hard_coded.status == "incorrect" and "real_label" in hard_coded.message
    unsmoothed = ex.q2.check(lambda r, f, real_label=0.9: bce(tf.ones_like(r), r) + bce(tf.zeros_like(f), f))
    assert unsmoothed.status == "incorrect"


def test_q3_q4_q5_reject_typical_wrong_answers():
    ex = labkit.exercises.load("04")
    assert ex.q3.check("a").status == "incorrect" and ex.q3.check("d").status == "incorrect"
    assert ex.q4.check(lambda m1, s1, m2, s2: (m1 - m2) ** 2).status == "incorrect"
    assert ex.q4.check(lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1 ** 2 - s2 ** 2) ** 2).status == "incorrect"
    r1 = labkit.exercises.nb04.r1_penalty
    twice = ex.q5.check(lambda d, x, gamma: 2 * r1(d, x, gamma))
    assert twice.status == "incorrect" and "gamma / 2" in twice.message
    per_pixel = ex.q5.check(lambda d, x, gamma: r1(d, x, gamma) / (28 * 28))
    assert per_pixel.status == "incorrect" and "sum" in per_pixel.message


def test_r1_reference_matches_closed_form_for_a_linear_discriminator():
    import keras
    import tensorflow as tf

    # D(x) = <w, x> + b: its gradient is w for every image, so R1 = gamma / 2 * ||w||^2 exactly
    rng = np.random.default_rng(0)
    w = rng.normal(size=(28 * 28, 1)).astype("float32")
    linear = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    linear.layers[-1].set_weights([w, np.array([0.3], "float32")])
    real = tf.constant(rng.uniform(-1, 1, size=(5, 28, 28, 1)).astype("float32"))
    expected = 0.5 * 2.5 * float(np.sum(w ** 2))
    assert float(labkit.exercises.nb04.r1_penalty(linear, real, 2.5)) == pytest.approx(expected, rel=1e-5)


def test_a_passing_learner_function_is_what_trains(nb, capsys):
    """The notebook's path: ex.qN.use(my_fn) → GAN(...) → fit; the learner's functions are called."""
    import tensorflow as tf

    from labkit.training import checkpoint_key

    ex, bce, calls = labkit.exercises.load("04"), _bce(), []

    def my_generator_loss(fake_logits):
        calls.append("g")
        return bce(tf.ones_like(fake_logits), fake_logits)

    def my_discriminator_loss(real_logits, fake_logits, real_label=0.9):
        calls.append("d")
        return bce(tf.fill(tf.shape(real_logits), real_label), real_logits) + bce(tf.zeros_like(fake_logits), fake_logits)

    def my_r1_penalty(discriminator, real_images, gamma):
        calls.append("r1")
        return labkit.exercises.nb04.r1_penalty(discriminator, real_images, gamma)

    generator_loss = ex.q1.use(my_generator_loss, "generator loss")
    discriminator_loss = ex.q2.use(my_discriminator_loss, "discriminator loss")
    r1_penalty = ex.q5.use(my_r1_penalty, "R1 penalty")
    assert capsys.readouterr().out.count("use your") == 3
    assert (generator_loss, discriminator_loss, r1_penalty) == (my_generator_loss, my_discriminator_loss,
                                                                my_r1_penalty)
    # a wrong answer is replaced by the reference, and the notebook says so
    assert ex.q1.use(lambda logits: logits, "generator loss") is labkit.exercises.nb04.generator_loss
    assert "reference" in capsys.readouterr().out

    x, _ = _tiny_digits()
    labkit.seed_everything(0)
    gan = nb.GAN(nb.dcgan_generator(8, 4), nb.dcgan_discriminator(4), 8, generator_loss=generator_loss,
                 discriminator_loss=discriminator_loss, r1_penalty=r1_penalty, r1_gamma=30)
    history = fit(gan, x, steps=2, batch_size=8, show_progress=False)
    assert history["steps"] == 2 and {"g", "d", "r1"} <= set(calls)
    # the learner's functions join the checkpoint key: another function, another key
    other = nb.GAN(nb.dcgan_generator(8, 4), nb.dcgan_discriminator(4), 8, **_losses(),
                   r1_penalty=labkit.exercises.nb04.r1_penalty, r1_gamma=30)
    assert checkpoint_key(gan, x, 0, 8) != checkpoint_key(other, x, 0, 8)


# --- the notebook, smoke profile ------------------------------------------------------------------

CONTRACT = ["fid_dense", "fid_dcgan", "fid_cgan", "fid_real_floor", "kid_dcgan", "density_dcgan",
            "coverage_dcgan", "classes_covered_dcgan", "near_copy_share", "near_copy_share_cgan",
            "tstr_accuracy", "trtr_accuracy", "small_real_plus_synthetic_accuracy", "small_real_accuracy",
            "train_seconds_dcgan", "samples_per_s", "cgan_label_agreement", "fid_dcgan_tutorial_settings"]


@pytest.mark.notebook
def test_notebook_smoke(smoke_run):
    from labkit import files

    metrics, outdir = smoke_run("04_gan")
    m = metrics["metrics"]
    assert set(CONTRACT) <= set(m)
    for name in ("fid_dense", "fid_dcgan", "fid_cgan", "fid_real_floor"):
        assert m[name] >= 0
    assert m["fid_real_floor"] < m["fid_dcgan"]
    assert 0 <= m["coverage_dcgan"] <= 1 and m["density_dcgan"] >= 0
    assert 0 <= m["classes_covered_dcgan"] <= 10
    for name in ("near_copy_share", "tstr_accuracy", "trtr_accuracy", "small_real_accuracy",
                 "small_real_plus_synthetic_accuracy"):
        assert 0 <= m[name] <= 1
    assert m["train_seconds_dcgan"] > 0 and m["samples_per_s"] > 0
    for name in ("fid_dcgan", "tstr_accuracy", "classes_covered_dcgan", "near_copy_share",
                 "cgan_label_agreement", "fid_dcgan_tutorial_settings"):
        assert name in metrics["targets"]
    samples = files.read_npz(outdir / "samples.npz")["images"]
    assert samples.shape == (5000, 28, 28) and samples.min() >= 0 and samples.max() <= 1
    conditional = files.read_npz(outdir / "conditional_samples.npz")
    assert conditional["images"].shape[1:] == (28, 28) and len(conditional["labels"]) == len(conditional["images"])
    for name in ("dense_generator", "dcgan_generator", "cgan_generator"):
        assert (outdir / f"{name}.keras").exists()


def test_notebook_builds_its_models_in_cells_and_feeds_the_exercises():
    import nbformat

    code = "\n".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")
    assert "GradientTape" in code and "def train_step" in code
    assert "G.GAN" not in code and "dcgan_generator(" in code and "show_source(G." not in code
    for q in ("q1", "q2", "q5"):
        assert f"ex.{q}.use(" in code


# --- labkit.gan.GAN (the copy StyleGAN of notebook 07 builds on) ------------------------------

def test_labkit_gan_r1_penalty_matches_the_exercise_reference():
    import tensorflow as tf

    from labkit import gan as G

    labkit.seed_everything(0)
    discriminator = G.dcgan_discriminator(4)
    gan = G.GAN(G.dcgan_generator(8, 4), discriminator, latent_dim=8, r1_gamma=2.5, ema=None)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, size=(5, 28, 28, 1)).astype("float32"))
    want = float(labkit.exercises.nb04.r1_penalty(discriminator, real, 2.5))
    assert float(gan.r1_penalty(real)) == pytest.approx(want, rel=1e-5)
    with pytest.raises(Exception):
        G.GAN(G.dcgan_generator(8, 4), discriminator, latent_dim=8, r1_gamma=-1.0)
    with pytest.raises(labkit.ParameterError, match="real_label"):
        G.GAN(G.dcgan_generator(8, 4), discriminator, latent_dim=8, real_label=0.2)
