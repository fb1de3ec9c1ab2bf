"""labkit.training: the one training contract (exact resume, re-run, safe checkpoints, callbacks)."""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a resume must not set anything aside

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from labkit import training  # noqa: E402
from conftest import assert_same_training  # noqa: E402


class Noisy(training.Model):
    """A tiny regression with every kind of randomness: host rows, stateless noise, dropout."""

    def __init__(self, seed=0):
        super().__init__()
        keras.utils.set_random_seed(seed)
        self.net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                                     keras.layers.Dropout(0.3), keras.layers.Dense(1)])
        self.opt = keras.optimizers.Adam(1e-2)
        self.opt.build(self.net.trainable_variables)

    def train_step(self, batch):
        x, y = batch
        x = x + 0.1 * tf.random.stateless_normal(tf.shape(x), seed=self.random_seed(1))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.net(x, training=True) - y))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.update_optimizer().apply_gradients(zip(grads, self.net.trainable_variables))
        return {"loss": loss}

    def update_optimizer(self):
        return self.opt


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")


def _evaluate(model):
    x, y = _data()
    return {"mse": float(np.mean((model.net(x, training=False).numpy() - y) ** 2))}


def _run(folder, steps, **kw):
    model = Noisy()
    cbs = [training.Evaluate(_evaluate, every=10), training.Snapshot(lambda m: m.net.get_weights()[0], every=5)]
    history = training.fit(model, _data(), steps, batch_size=16, seed=3, checkpoint_dir=folder,
                           checkpoint_every=7, callbacks=cbs, show_progress=False, **kw)
    return model, history


def _same(a, b, exact=False):
    """Two runs agree: variables, losses, evaluations and snapshots, to round-off (a resumed run,
    see conftest.assert_same_training) or exactly (a finished run restored without training)."""
    def check(x, y, what):
        assert_same_training(x, y, what, exact=exact)

    (ma, ha), (mb, hb) = a, b
    for va, vb in zip(training.state_variables(ma), training.state_variables(mb)):
        check(va, vb, va.path)
    check(ha["loss"], hb["loss"], "loss")
    assert [e["step"] for e in ha["evaluations"]] == [e["step"] for e in hb["evaluations"]]
    check([e["mse"] for e in ha["evaluations"]], [e["mse"] for e in hb["evaluations"]], "evaluations")
    assert ha["snapshot_steps"] == hb["snapshot_steps"]
    for sa, sb in zip(ha["snapshots"], hb["snapshots"]):
        check(sa, sb, "snapshot")


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    whole = _run(tmp_path / "whole", 30)
    _run(tmp_path / "parts", 12)                       # "interrupted" after 12 steps
    resumed = _run(tmp_path / "parts", 30)
    assert resumed[1]["steps"] == 30 and len(resumed[1]["loss"]) == 30
    _same(whole, resumed)
    assert len(whole[1]["evaluations"]) == 3 and whole[1]["snapshot_steps"] == [0, 5, 10, 15, 20, 25, 30]


def test_a_different_seed_changes_the_run(tmp_path):
    """The comparison above can fail: a run with other random streams differs."""
    a = _run(tmp_path / "a", 10)
    model = Noisy()
    b = training.fit(model, _data(), 10, batch_size=16, seed=4, show_progress=False)
    with pytest.raises(AssertionError):
        assert_same_training(a[1]["loss"], b["loss"])


def test_time_budget_stops_and_the_next_run_resumes(tmp_path):
    _, stopped = _run(tmp_path / "t", 30, max_seconds=0.0)
    assert stopped["steps"] == 0 and "loss" not in stopped
    resumed = _run(tmp_path / "t", 30)
    _same(_run(tmp_path / "whole", 30), resumed)


def test_rerunning_a_finished_run_restores_weights_and_history(tmp_path):
    first = _run(tmp_path / "r", 20)
    again = _run(tmp_path / "r", 20)
    _same(first, again, exact=True)
    assert again[1]["seconds"] == first[1]["seconds"] > 0


def test_changed_train_step_does_not_resume_old_weights(tmp_path):
    _run(tmp_path / "c", 10)

    class Changed(Noisy):
        def train_step(self, batch):
            return super().train_step(batch)

    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        history = training.fit(Changed(), _data(), 10, batch_size=16, seed=3, checkpoint_dir=tmp_path / "c",
                               show_progress=False)
    assert len(history["loss"]) == 10                   # trained afresh
    assert list((tmp_path / "c").glob("state.stale-*"))


def test_changed_params_do_not_resume(tmp_path):
    _run(tmp_path / "p", 10, params={"weight": 1})
    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        _, history = _run(tmp_path / "p", 10, params={"weight": 2})
    assert len(history["loss"]) == 10


@pytest.mark.parametrize("damage", ["truncate_variables", "garbage_meta", "drop_history"])
def test_damaged_checkpoint_is_set_aside_with_a_warning_naming_it(tmp_path, damage):
    _run(tmp_path / "d", 10)
    state = tmp_path / "d" / "state"
    if damage == "truncate_variables":
        data = (state / "variables.npz").read_bytes()
        (state / "variables.npz").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_meta":
        (state / "meta.json").write_bytes(b"\xff\xfe garbage")
    else:
        (state / "history.json").unlink()
    with pytest.warns(RuntimeWarning, match=str(state)):
        model, history = _run(tmp_path / "d", 10)
    assert len(history["loss"]) == 10
    _same((model, history), _run(tmp_path / "fresh", 10))


def test_checkpoint_writes_are_atomic_folders(tmp_path):
    _run(tmp_path / "w", 10)
    names = sorted(p.name for p in (tmp_path / "w").iterdir())
    assert names == ["state"]
    assert sorted(p.name for p in (tmp_path / "w" / "state").iterdir()) == \
        ["arrays.npz", "history.json", "meta.json", "variables.npz"]


def test_unbuilt_optimizer_gives_a_clear_error(tmp_path):
    class Lazy(Noisy):
        def __init__(self):
            super().__init__()
            self.other = keras.optimizers.SGD()

    with pytest.raises(ValueError, match="'other'.*not built"):
        training.fit(Lazy(), _data(), 2, checkpoint_dir=tmp_path / "u", show_progress=False)


def test_dropout_seed_state_is_checkpointed():
    names = [v.path for v in training.state_variables(Noisy())]
    assert any("seed_generator" in n for n in names), names


def test_code_fingerprint_sees_a_changed_method():
    class A(training.Model):
        def train_step(self, batch):
            return {"loss": tf.constant(0.0)}

    class B(training.Model):
        def train_step(self, batch):
            return {"loss": tf.constant(1.0)}

    assert training.code_fingerprint(A()) != training.code_fingerprint(B())


# --- the course's trainers: interrupt after k steps, resume, compare with an uninterrupted run ------

def _resume_matches(make, data, steps, k, tmp_path, batch_size=8, **kw):
    """Train ``steps`` at once, and ``k`` + the rest in one folder; assert they agree to round-off."""
    whole_model = make()
    whole = training.fit(whole_model, data, steps, batch_size=batch_size, show_progress=False, **kw)
    training.fit(make(), data, k, batch_size=batch_size, checkpoint_dir=tmp_path, show_progress=False, **kw)
    resumed_model = make()
    resumed = training.fit(resumed_model, data, steps, batch_size=batch_size, checkpoint_dir=tmp_path,
                           show_progress=False, **kw)
    losses = [k for k, v in whole.items() if isinstance(v, list) and v and isinstance(v[0], float)]
    assert losses
    for name in losses:
        assert_same_training(whole[name], resumed[name], name)
    for a, b in zip(training.state_variables(whole_model), training.state_variables(resumed_model)):
        assert_same_training(a, b, a.path)
    return whole, resumed


def test_gan_resumes_exactly(tmp_path):
    from labkit import gan as G

    def make():
        keras.utils.set_random_seed(0)
        return G.GAN(G.dcgan_generator(8, width=4, num_classes=10), G.dcgan_discriminator(4, num_classes=10),
                     latent_dim=8, num_classes=10, r1_gamma=1.0)

    rng = np.random.default_rng(0)
    data = (rng.uniform(size=(40, 28, 28)).astype("float32"), rng.integers(0, 10, 40))
    _resume_matches(make, data, 5, 2, tmp_path)


def test_stylegan_resumes_exactly(tmp_path):
    from labkit import stylegan

    def make():
        return stylegan.build(latent_dim=8, w_dim=8, channels=(4, 4, 4, 4), d_channels=(4, 4, 4), seed=0,
                              r1_every=2)

    faces = np.random.default_rng(0).uniform(size=(16, 32, 32)).astype("float32")
    _resume_matches(make, faces, 5, 3, tmp_path, batch_size=4)


def test_code_fingerprint_sees_a_changed_function_attribute():
    """A learner's loss handed to a model joins the key: another loss never resumes old weights."""
    def loss_a(x):
        return x * 2

    def loss_b(x):
        return x * 3

    class M(training.Model):
        def __init__(self, loss):
            super().__init__()
            self.loss_fn = loss

    assert training.code_fingerprint(M(loss_a)) != training.code_fingerprint(M(loss_b))
    assert training.code_fingerprint(M(loss_a)) == training.code_fingerprint(M(loss_a))


class Compiled(Noisy):
    """Noisy with a single optimiser given to ``compile`` (not built by hand)."""

    def __init__(self):
        super().__init__()
        del self.opt

    def update_optimizer(self):
        return self.optimizer


def test_a_compiled_optimizer_is_built_checkpointed_and_resumed(tmp_path):
    def run(folder, steps):
        model = Compiled()
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = training.fit(model, _data(), steps, batch_size=16, seed=3, checkpoint_dir=folder,
                               checkpoint_every=7, show_progress=False)
        return model, history

    whole = run(tmp_path / "a", 20)
    assert whole[0].optimizer.built
    names = [v.path for v in training.state_variables(whole[0])]
    assert any("adam" in n and "momentum" in n for n in names), names
    run(tmp_path / "b", 9)
    resumed = run(tmp_path / "b", 20)
    for va, vb in zip(training.state_variables(whole[0]), training.state_variables(resumed[0])):
        assert_same_training(va, vb, va.path)
    assert_same_training(whole[1]["loss"], resumed[1]["loss"])


def test_fit_called_again_on_the_same_model_reuses_its_compiled_step(tmp_path):
    model = Noisy()
    for steps in (6, 13, 20):  # a notebook training in chunks: resume, no retrace
        history = training.fit(model, _data(), steps, batch_size=16, seed=3,
                               checkpoint_dir=tmp_path / "a", checkpoint_every=7, show_progress=False)
    assert model._labkit_compiled_step[1].experimental_get_tracing_count() == 1
    model.beta = 2.0  # a changed setting declared in checkpoint_params traces anew
    model.checkpoint_params = lambda: {"beta": model.beta}
    first = model._labkit_compiled_step[1]
    training._compiled_step(model, False)
    assert model._labkit_compiled_step[1] is not first
    whole = Noisy()
    history_whole = training.fit(whole, _data(), 20, batch_size=16, seed=3, checkpoint_dir=tmp_path / "b",
                                 checkpoint_every=7, show_progress=False)
    for va, vb in zip(training.state_variables(model), training.state_variables(whole)):
        assert_same_training(va, vb, va.path)
    assert_same_training(history["loss"], history_whole["loss"], "loss")


def test_code_fingerprint_sees_a_changed_layer_setting_but_not_instance_names():
    """An edited activation is new code (no stale resume); re-building the same model is not."""
    import keras

    def build(activation):
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation=activation)])

    class M(training.Model):
        def __init__(self, net):
            super().__init__()
            self.net = net

    first, again = training.code_fingerprint(M(build("relu"))), training.code_fingerprint(M(build("relu")))
    assert first == again
    assert training.code_fingerprint(M(build("tanh"))) != first


# --- KerasCheckpoint: the same checkpoint for Keras' own fit --------------------------------------

def _keras_classifier(units=8):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _keras_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_keras_checkpoint_resumes_after_the_last_finished_epoch(tmp_path):
    x, y = _keras_data()
    first = _keras_classifier()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0,
              callbacks=[training.KerasCheckpoint(tmp_path, data=(x, y))])
    saved = [w.copy() for w in first.get_weights()]
    resumed, counter, checkpoint = _keras_classifier(), _CountEpochs(), training.KerasCheckpoint(tmp_path, data=(x, y))
    resumed.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[checkpoint, counter])
    assert counter.epochs == [2, 3, 4]                 # the two finished epochs are not trained again
    assert len(checkpoint.history["loss"]) == 5        # the history covers every epoch
    assert resumed.optimizer.iterations.numpy() == 5 * 4
    assert not any(np.array_equal(a, b) for a, b in zip(saved, resumed.get_weights()))
    assert resumed._initial_epoch is None              # a later fit of the model starts where it asks


def test_keras_checkpoint_restores_a_finished_run_without_training(tmp_path):
    x, y = _keras_data()
    done = _keras_classifier()
    done.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[training.KerasCheckpoint(tmp_path, data=(x, y))])
    again, counter, checkpoint = _keras_classifier(), _CountEpochs(), training.KerasCheckpoint(tmp_path, data=(x, y))
    again.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[checkpoint, counter])
    assert counter.epochs == []
    for a, b in zip(done.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(checkpoint.history["loss"]) == 3


def test_keras_checkpoint_sets_aside_other_code_and_damage(tmp_path):
    x, y = _keras_data()
    _keras_classifier().fit(x, y, epochs=2, batch_size=16, verbose=0,
                            callbacks=[training.KerasCheckpoint(tmp_path, data=(x, y))])
    counter = _CountEpochs()
    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        _keras_classifier(units=16).fit(x, y, epochs=2, batch_size=16, verbose=0,
                                        callbacks=[training.KerasCheckpoint(tmp_path, data=(x, y)), counter])
    assert counter.epochs == [0, 1]                    # a wider layer trains afresh
    (tmp_path / "state" / "variables.npz").write_bytes(b"truncated")
    counter = _CountEpochs()
    with pytest.warns(RuntimeWarning, match=str(tmp_path / "state")):
        _keras_classifier(units=16).fit(x, y, epochs=2, batch_size=16, verbose=0,
                                        callbacks=[training.KerasCheckpoint(tmp_path, data=(x, y)), counter])
    assert counter.epochs == [0, 1]


def test_keras_checkpoint_key_covers_pipeline_layers(tmp_path):
    x, y = _keras_data()
    _keras_classifier().fit(x, y, epochs=1, batch_size=16, verbose=0,
                            callbacks=[training.KerasCheckpoint(tmp_path, layers=[keras.layers.GaussianNoise(0.1)])])
    counter = _CountEpochs()    # the same layer, another instance: resumes (a finished run: no epoch)
    _keras_classifier().fit(x, y, epochs=1, batch_size=16, verbose=0,
                            callbacks=[training.KerasCheckpoint(tmp_path, layers=[keras.layers.GaussianNoise(0.1)]), counter])
    assert counter.epochs == []
    with pytest.warns(RuntimeWarning, match="other code or parameters"):
        _keras_classifier().fit(x, y, epochs=1, batch_size=16, verbose=0,
                                callbacks=[training.KerasCheckpoint(tmp_path, layers=[keras.layers.GaussianNoise(0.3)]), counter])
    assert counter.epochs == [0]


def test_keras_progress_starts_at_the_restored_epochs(tmp_path):
    import labkit

    x, y = _keras_data()
    _keras_classifier().fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[training.KerasCheckpoint(tmp_path)])
    bar = labkit.keras_progress(3, "resumed")
    _keras_classifier().fit(x, y, epochs=3, batch_size=16, verbose=0,
                            callbacks=[training.KerasCheckpoint(tmp_path), bar])
    assert bar.bar.n == 3 and bar.bar.total == 3     # 2 restored + 1 trained


def test_a_notebook_bar_keeps_its_description_on_one_line(monkeypatch):
    """In Jupyter the bar is a widget row; a long description ("WGAN-GP (S&P 500)") wrapped onto two lines."""
    import importlib

    from tqdm.notebook import tqdm as notebook_tqdm

    module = importlib.import_module("labkit.progress")    # labkit.progress is also the function's name
    monkeypatch.setattr(module, "_tqdm", lambda: notebook_tqdm)
    bar = module.progress(total=2, desc="WGAN-GP (S&P 500)")
    assert bar.container.children[0].layout.flex == "0 0 auto"
    bar.close()
