"""Notebook 07 — StyleGAN-style faces and the four-step case.

The notebook builds the generator, the discriminator and the training step in its own cells
(tagged ``model``). These tests execute those cells from the .ipynb: the learner's demodulation
is what trains when it passes, the copy in :mod:`labkit.stylegan` builds the same architecture,
every exercise rejects a typical wrong answer; and one smoke run of the whole notebook.
"""
import nbformat
import numpy as np
import pytest

from conftest import NOTEBOOKS, architecture
from labkit import exercises, files
from labkit.exercises import nb07

NOTEBOOK = NOTEBOOKS / "07_faces.ipynb"


def _model_cells():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    return [c.source for c in nb.cells if "model" in c.metadata.get("tags", [])]


def _namespace():
    """The notebook's model cells executed as the notebook does (after its set-up imports)."""
    import labkit
    from labkit import training
    from labkit.augment import diff_augment

    namespace = {"np": np, "labkit": labkit, "training": training, "diff_augment": diff_augment}
    for source in _model_cells():
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    return namespace


def test_notebook_builds_its_models_in_tagged_cells():
    sources = "\n".join(_model_cells())
    for name in ("class ModulatedConv2D", "class NoiseInput", "class StyleGenerator", "def make_discriminator",
                 "class StyleGAN(training.Model)", "def train_step", "tf.GradientTape", "diff_augment"):
        assert name in sources, name
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "stylegan.build" not in code and "stylegan.StyleGAN" not in code and "show_source(stylegan" not in code
    assert 'ex.q1.use(demodulation' in code and 'ex.q2.use(truncate' in code


def test_labkit_copy_builds_the_same_architecture_as_the_notebook():
    import keras

    from labkit import stylegan

    ns = _namespace()
    keras.utils.set_random_seed(0)
    mine = ns["StyleGenerator"](demodulation=nb07.demodulation)
    theirs = stylegan.StyleGenerator()
    assert architecture(mine) == architecture(theirs)
    assert mine.num_ws == theirs.num_ws and mine.count_params() == theirs.count_params()
    d_mine, d_theirs = ns["make_discriminator"](), stylegan.discriminator()
    assert [(type(layer).__name__, layer.count_params()) for layer in d_mine.layers] == \
        [(type(layer).__name__, layer.count_params()) for layer in d_theirs.layers]
    # and the same function: with the labkit copy's weights, the notebook's generator makes the same images
    import re

    def key(v):
        return re.sub(r"^style_generator(_\d+)?/", "", v.path)

    by_name = {key(v): v for v in theirs.weights}
    assert sorted(by_name) == sorted(key(v) for v in mine.weights)
    for v in mine.weights:
        v.assign(by_name[key(v)])
    z = np.random.default_rng(0).normal(size=(3, 64)).astype("float32")
    noise = [np.random.default_rng(i).normal(size=s).astype("float32") for i, s in enumerate(mine.noise_shapes(3))]
    ws = np.asarray(theirs.broadcast(theirs.map(z)))
    assert np.allclose(np.asarray(mine.map(z)), np.asarray(theirs.map(z)), atol=1e-5)
    assert np.allclose(np.asarray(mine.synthesize(ws, noise)), np.asarray(theirs.synthesize(ws, noise)), atol=1e-4)


def test_the_learners_demodulation_is_what_trains(tmp_path):
    """A correct demodulation passed through ``ex.q1.use`` is called by the training step."""
    import keras
    from keras import ops

    from labkit import training

    ns = _namespace()
    calls = []

    def demodulation(kernel, styles, eps=1e-8):
        calls.append(tuple(kernel.shape))
        modulated = kernel[None] * styles[:, None, None, :, None]
        return 1 / ops.sqrt(ops.sum(modulated ** 2, axis=(1, 2, 3)) + eps)

    ex = exercises.load("07_faces")
    used = ex.q1.use(demodulation, "demodulation")
    assert used is demodulation
    calls.clear()
    keras.utils.set_random_seed(0)
    generator = ns["StyleGenerator"](latent_dim=8, w_dim=8, mapping_layers=1, channels=(4, 4, 4, 4), demodulation=used)
    gan = ns["StyleGAN"](generator, ns["make_discriminator"]((4, 4, 4)))
    assert all(conv.demodulation is demodulation for conv in generator.convs)
    faces = np.random.default_rng(0).uniform(size=(8, 32, 32)).astype("float32")
    history = training.fit(gan, faces, steps=2, batch_size=4, seed=0, checkpoint_dir=tmp_path / "a")
    assert calls and np.isfinite(history["d_loss"]).all()
    # a blank answer falls back to the reference, which then trains instead
    assert ex.q1.use(lambda k, s, eps=1e-8: exercises.____) is nb07.demodulation


def test_the_learners_truncation_is_what_samples():
    from labkit import stylegan

    ns = _namespace()
    generator = ns["StyleGenerator"](latent_dim=8, w_dim=8, mapping_layers=1, channels=(4, 4, 4, 4),
                                     demodulation=nb07.demodulation)
    calls = []

    def truncate(w, w_avg, psi):
        calls.append(psi)
        return w_avg + psi * (w - w_avg)

    used = exercises.load("07_faces").q2.use(truncate, "truncation")
    assert used is truncate
    calls.clear()
    z = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")
    images = stylegan.images_from_z(generator, z, psi=0.5, truncate=used, shared_noise=True)
    assert calls == [0.5] and images.shape == (3, 32, 32)


@pytest.mark.parametrize("name, wrong, says", [
    ("q1", lambda k, s, eps=1e-8: 1 / np.sqrt((k ** 2).sum(axis=(0, 1, 2)))[None].repeat(len(s), 0), "modulated"),
    ("q1", lambda k, s, eps=1e-8: 1 / ((k[None] * s[:, None, None, :, None]) ** 2).sum(axis=(1, 2, 3)), "sqrt"),
    ("q1", lambda k, s, eps=1e-8: np.sqrt(((k[None] * s[:, None, None, :, None]) ** 2).sum(axis=(1, 2, 3))), "divides"),
    ("q1", lambda k, s, eps=1e-8: 1 / np.sqrt(((k[None] * s[:, None, None, :, None]) ** 2).sum(axis=(1, 2, 3)) + eps),
     "compiled"),
    ("q1", lambda k, s, eps=1e-8: 1 / np.sqrt(((k * s[0][None, None, :, None]) ** 2).sum(axis=(0, 1, 2))), "shape"),
    ("q2", lambda w, w_avg, psi: psi * w, "towards the *mean*"),
    ("q2", lambda w, w_avg, psi: w_avg + (1 - psi) * (w - w_avg), "kept"),
    ("q3", "c", "style-mixing"),
    ("q3", "z", "one letter"),
    ("q4", lambda d, h, q=0.01: float((np.asarray(d) < np.median(h)).mean()), "median"),
    ("q4", lambda d, h, q=0.01: float((np.asarray(d) < np.min(h)).mean()), "smallest"),
])
def test_every_exercise_rejects_a_typical_wrong_answer(name, wrong, says):
    result = getattr(exercises.load("07_faces"), name).check(wrong)
    assert result.status == "incorrect", (name, result)
    assert says in result.message, (name, result.message)


def test_reference_answers_pass_and_blanks_are_not_attempted():
    ex = exercises.load("07_faces")
    for item, answer in [(ex.q1, nb07.demodulation), (ex.q2, nb07.truncate),
                         (ex.q3, "a"), (ex.q4, nb07.copy_share)]:
        assert item.check(answer).status == "correct", item.name
    assert ex.q1.check(lambda k, s, eps=1e-8: exercises.____).status == "not attempted"


@pytest.mark.notebook
def test_smoke_run_records_contract_metrics(smoke_run):
    metrics, outdir = smoke_run("07_faces")
    m = metrics["metrics"]
    for key in ["kid_generated", "kid_real_floor", "kid_untrained", "face_score_generated", "near_copy_share",
                "case_acc_real_only", "case_acc_real_plus_generated", "case_acc_real_plus_augmented",
                "case_acc_real_only_sd", "case_acc_real_plus_generated_sd",
                "case_acc_real_plus_augmented_sd", "ablation_kid_no_diffaug",
                "ablation_near_copy_no_diffaug", "train_seconds"]:
        assert key in m, key
    for key in ["face_score_generated", "near_copy_share", "case_acc_real_only",
                "case_acc_real_plus_generated", "case_acc_real_plus_augmented",
                "ablation_near_copy_no_diffaug"]:
        assert 0.0 <= m[key] <= 1.0, key
    assert m["train_seconds"] > 0 and m["reference_accuracy"] > 0.5
    assert set(m["ablation_curves"]) == {"DiffAugment", "no augmentation"}
    assert metrics["targets"]["kid_generated"] == {"op": "<=", "value": 0.03}
    assert metrics["targets"]["near_copy_share"] == {"op": "<=", "value": 0.05}
    assert "face_score_generated" not in metrics["targets"]
    images = files.read_npz(outdir / "samples.npz")["images"]
    assert images.shape[1:] == (32, 32) and len(images) >= 1000
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0
    for name in ["generator.keras", "ablation_curves.png", "samples.png", "style_mixing.png",
                 "truncation.png", "noise.png", "nearest_training.png", "case_extra_faces.png"]:
        assert (outdir / name).exists(), name


def test_shown_solutions_pass_with_the_notebooks_imports():
    from keras import ops

    ex = exercises.load("07_faces")
    for item, name in [(ex.q1, "demodulation"), (ex.q2, "truncate"), (ex.q4, "copy_share")]:
        namespace = {"np": np, "ops": ops}
        exec(item.solution_code, namespace)
        assert item.check(namespace[name]).status == "correct", item.name


def test_the_few_faces_study_result_is_a_real_run():
    """The committed result of experiments/07_few_faces.py (its smoke run is in test_experiments)."""
    import json

    from conftest import ROOT

    committed = json.loads((ROOT / "experiments" / "results" / "07_few_faces.json").read_text())
    assert not committed["smoke"] and committed["draws"] >= 4
    assert set(committed["summary"]) == {"real_only", "real_plus_generated", "real_plus_augmented"}
