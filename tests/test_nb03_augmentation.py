"""Notebook 03 — data augmentation: labkit.augment, labkit.augment_text, labkit.audio, exercises."""
import numpy as np
import pytest

import labkit
from labkit import audio, augment, augment_text
from labkit.exercises import load

SR = audio.SAMPLE_RATE


def tone(freq=1000.0, seconds=0.5, amplitude=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def digits():
    return labkit.data.load_digits().x[::250]  # 20 digits, two of each class


# -- images -------------------------------------------------------------------------------------
ALL_OPS = dict(rotation=20.0, zoom=0.2, translation=0.1, crop=3, contrast=0.4, flip=True)


@pytest.mark.parametrize("op", list(ALL_OPS))
def test_image_op_keeps_shape_dtype_range(digits, op):
    out = augment.augment_images(digits, augment.image_layers(**{op: ALL_OPS[op]}), seed=1)
    assert out.shape == digits.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, digits)  # it did something


def test_fused_affine_keeps_shape_and_range(digits):
    out = augment.augment_images(digits[..., None], augment.image_layers(rotation=30, zoom=0.2,
                                                                         translation=0.1, fused=True))
    assert out.shape == digits[..., None].shape and 0.0 <= out.min() and out.max() <= 1.0


def test_image_pipeline_reproducible_in_parallel(digits):
    def batches(seed):
        ds = augment.augment_dataset(digits, np.arange(len(digits)), augment.image_layers(**ALL_OPS),
                                     batch_size=4, seed=seed, parallel=True)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    first, again, other = batches(3), batches(3), batches(4)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))


def test_fused_affine_matches_scipy_for_a_pure_rotation():
    """Independent reference: the fused Keras layer and SciPy agree on a known rotation."""
    import tensorflow as tf
    from scipy import ndimage

    image = np.zeros((28, 28), np.float32)
    image[6:22, 12:16] = 1.0  # a vertical bar
    layer = augment.random_affine_layer(rotation=0.0)
    transform = {"angle": tf.constant([np.pi / 2]), "scale": tf.constant([1.0]),
                 "shift_x": tf.constant([0.0]), "shift_y": tf.constant([0.0])}
    ours = layer.transform_images(tf.constant(image[None, ..., None]), transform).numpy()[0, ..., 0]
    ref = ndimage.rotate(image, 90, reshape=False, order=1)
    assert np.abs(ours - ref).mean() < 0.02


def test_loop_fused_equals_unfused_for_rotation_only(digits):
    a = augment.loop_augment(digits, rotation=30, seed=2)
    b = augment.loop_augment(digits, rotation=30, seed=2, fused=True)
    assert np.allclose(a, b, atol=1e-5)
    assert np.array_equal(a, augment.loop_augment(digits, rotation=30, seed=2))


def test_throughput_reports_rates(digits):
    kw = dict(rotation=10.0, zoom=0.1)
    result = augment.throughput(digits, augment.image_layers(**kw, fused=True), dict(kw, fused=True),
                                batch_size=8, repeats=1)
    assert set(result) == {"pipeline", "loop", "speedup"} and min(result.values()) > 0
    assert result["speedup"] == pytest.approx(result["pipeline"] / result["loop"])


def test_throughput_table_names_every_run(digits):
    table = augment.throughput_table(digits, {"pipe": augment.image_layers(rotation=10.0)},
                                     {"loop": dict(rotation=10.0)}, batch_size=8, repeats=1)
    assert set(table) == {"pipe", "loop"} and min(table.values()) > 0


def test_image_bad_input():
    with pytest.raises(labkit.ParameterError, match="rotation"):
        augment.image_layers(rotation=-5)
    with pytest.raises(labkit.ParameterError, match="flip"):
        augment.image_layers(flip="yes")
    with pytest.raises(ValueError, match="shape"):
        augment.augment_images(np.zeros(5), [])
    with pytest.raises(ValueError, match="labels"):
        augment.augment_dataset(np.zeros((4, 28, 28)), np.zeros(3), [])


# -- text ---------------------------------------------------------------------------------------
SENTENCE = "The courier left the parcel at the wrong address, and nobody rang the bell."


def test_corpus_and_lexicon_load():
    corpus = augment_text.load_corpus().frame
    assert len(corpus) >= 200 and corpus.label.nunique() == 4
    assert corpus.text.str.len().min() > 10
    lexicon = augment_text.load_lexicon()
    assert "parcel" in lexicon and "package" in lexicon["parcel"] and "parcel" in lexicon["package"]
    assert all(" " not in w for syns in lexicon.values() for w in syns)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_synonym_replacement_changes_exactly_n_words(n):
    before = augment_text.tokenize(SENTENCE)
    after = augment_text.tokenize(augment_text.synonym_replacement(SENTENCE, n, np.random.default_rng(n),
                                                                   augment_text.load_lexicon()))
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after)) == n


def test_synonym_replacement_caps_at_available_words():
    after = augment_text.synonym_replacement("the parcel", 5, 0, {"parcel": ["box"]})
    assert after == "the box"


def test_text_ops_are_reproducible_and_keep_words():
    lex = augment_text.load_lexicon()
    for op in (lambda r: augment_text.random_insertion(SENTENCE, 2, r, lex),
               lambda r: augment_text.random_swap(SENTENCE, 2, r),
               lambda r: augment_text.random_deletion(SENTENCE, 0.3, r),
               lambda r: augment_text.reorder_clauses(SENTENCE, r)):
        assert op(np.random.default_rng(5)) == op(np.random.default_rng(5))
    words = sorted(augment_text.tokenize(SENTENCE))
    assert sorted(augment_text.tokenize(augment_text.random_swap(SENTENCE, 3, 1))) == words
    assert sorted(augment_text.tokenize(augment_text.reorder_clauses(SENTENCE, 1))) == words
    inserted = augment_text.tokenize(augment_text.random_insertion(SENTENCE, 2, 1, lex))
    assert len(inserted) == len(words) + 2
    assert augment_text.random_deletion("parcel", 1.0, 0) == "parcel"  # one word always survives


def test_reorder_clauses_moves_clauses():
    out = augment_text.reorder_clauses("I paid cash on delivery but got a bill anyway.", 0)
    assert out == "got a bill anyway but i paid cash on delivery."


def test_eda_and_augment_corpus_sizes():
    texts, labels = augment_text.augment_corpus([SENTENCE, "my card was charged twice."], ["a", "b"],
                                                n_aug=3, rng=0)
    assert len(texts) == 8 and labels == ["a", "b"] + ["a"] * 3 + ["b"] * 3


def test_ngram_lm_generates_from_training_vocabulary():
    train = ["my parcel is late.", "my parcel is lost.", "the parcel is late again."]
    lm = augment_text.NgramLM(3).fit(train)
    vocab = {w for t in train for w in augment_text.tokenize(t)}
    rng = np.random.default_rng(0)
    for _ in range(20):
        sentence = lm.generate(rng)
        assert set(augment_text.tokenize(sentence)) <= vocab
    gen, labels = augment_text.generate_corpus(train + ["pay me back.", "refund me now."],
                                               ["d", "d", "d", "b", "b"], 2, rng=1)
    assert set(labels) <= {"d", "b"} and not set(gen) & set(train)


def test_text_bad_input():
    with pytest.raises(labkit.ParameterError, match="'p'"):
        augment_text.random_deletion(SENTENCE, 1.5)
    with pytest.raises(labkit.ParameterError, match="'n'"):
        augment_text.synonym_replacement(SENTENCE, -1)
    with pytest.raises(TypeError):
        augment_text.tokenize(3)
    with pytest.raises(ValueError):
        augment_text.NgramLM().fit([])


# -- audio --------------------------------------------------------------------------------------
@pytest.mark.parametrize("snr", [-10.0, 0.0, 6.0, 20.0])
def test_add_noise_hits_requested_snr(snr):
    clean = tone()
    noisy = audio.add_noise(clean, snr, 0)
    assert noisy.shape == clean.shape and noisy.dtype == clean.dtype
    assert abs(audio.snr_db(clean, noisy) - snr) < 0.5
    assert np.array_equal(noisy, audio.add_noise(clean, snr, 0))


@pytest.mark.parametrize("semitones", [-5.0, -2.0, 3.0, 7.0])
def test_pitch_shift_keeps_duration_moves_frequency(semitones):
    clean = tone(800.0)
    shifted = audio.pitch_shift(clean, semitones)
    assert shifted.shape == clean.shape and shifted.dtype == clean.dtype
    ratio = audio.dominant_frequency(shifted) / audio.dominant_frequency(clean)
    assert abs(ratio / 2 ** (semitones / 12) - 1) < 0.03


def test_change_speed_and_time_shift():
    clean = tone(1000.0)
    fast = audio.change_speed(clean, 1.25)
    assert len(fast) == 3200 and abs(audio.dominant_frequency(fast) - 1250) < 15
    moved = audio.time_shift(clean, 100)
    assert moved.shape == clean.shape and np.all(moved[:100] == 0) and np.array_equal(moved[100:], clean[:-100])
    assert np.array_equal(audio.time_shift(clean, -50)[:-50], clean[50:])


def test_dominant_frequency_against_known_tone():
    assert abs(audio.dominant_frequency(tone(523.25)) - 523.25) < 2


def test_make_signals_and_wav_folder(tmp_path):
    from scipy.io import wavfile

    signals, labels = audio.make_signals(3, rng=0)
    assert signals.shape == (15, 4000) and signals.dtype == np.float32 and np.abs(signals).max() <= 1
    assert np.array_equal(signals, audio.make_signals(3, rng=0)[0])
    for name, freq in (("high", 1500.0), ("low", 300.0)):
        (tmp_path / name).mkdir()
        wave = (tone(freq, 0.3, 0.8) * 32767).astype(np.int16)
        wavfile.write(tmp_path / name / "a.wav", 16000, np.repeat(wave, 2)[:len(wave)])
        wavfile.write(tmp_path / name / "b.wav", SR, np.stack([wave, wave], axis=1))
    x, y, names = audio.load_wav_folder(tmp_path)
    assert names == ["high", "low"] and x.shape == (4, 4000) and list(y) == [0, 0, 1, 1]
    assert np.abs(x).max() <= 1.0 and np.all(x[:, 2400:] == 0)  # padded to 0.5 s
    with pytest.raises(FileNotFoundError):
        audio.load_wav_folder(tmp_path / "missing")


def test_audio_bad_input():
    with pytest.raises(ValueError):
        audio.add_noise(np.zeros(100), 10.0)
    with pytest.raises(labkit.ParameterError, match="semitones"):
        audio.pitch_shift(tone(), 40.0)
    with pytest.raises(TypeError):
        audio.add_noise(np.arange(10), 10.0)
    with pytest.raises(labkit.ParameterError, match="shift"):
        audio.time_shift(tone(), 1.5)


# -- exercises ----------------------------------------------------------------------------------
# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook


def _cell(text):
    from conftest import code_cell

    return code_cell("03_augmentation", text)


def test_q1_and_q3_reject_a_wrong_label_and_their_cells_hold_no_answer():
    from labkit.exercises import nb03

    ex = load("03")
    wrong = dict(ex.q1.reference, **{"mirror left-right (horizontal flip)": "keeps"})
    assert ex.q1.check(wrong).status == "incorrect"
    assert ex.q1.check(dict.fromkeys(nb03.DIGIT_AUGMENTATIONS, "keeps")).status == "incorrect"
    wrong = dict(ex.q3.reference, **{"speaker is a child or an adult: pitch shift by 7 semitones": "keeps"})
    assert ex.q3.check(wrong).status == "incorrect"
    assert ex.q3.check(dict.fromkeys(nb03.TASK_AUGMENTATIONS, "keeps")).status == "incorrect"
    for text, items in (("ex.q1.check(answer)", nb03.DIGIT_AUGMENTATIONS),
                        ("ex.q3.check(answer)", nb03.TASK_AUGMENTATIONS)):
        cell = _cell(text)
        assert all(item in cell for item in items)
        assert ': "keeps"' not in cell and ': "changes"' not in cell and "AUGMENTATIONS" not in cell
    assert isinstance(nb03.DIGIT_AUGMENTATIONS, tuple) and isinstance(nb03.TASK_AUGMENTATIONS, tuple)


def test_q2_rejects_one_blind_operation_and_an_order_dependent_one():
    ex = load("03")
    assert ex.q2.check(["random_swap"]).status == "incorrect"
    assert ex.q2.check(["random_swap", "reorder_clauses", "synonym_replacement"]).status == "incorrect"
    assert ex.q2.check("random_swap").status == "incorrect"


def test_q4_rejects_unscaled_noise_a_power_ratio_without_root_and_new_noise():
    ex = load("03")
    assert ex.q4.check(lambda s, n, snr: n).status == "incorrect"
    no_root = lambda s, n, snr: n * np.mean(s ** 2) / (np.mean(n ** 2) * 10 ** (snr / 10))
    assert ex.q4.check(no_root).status == "incorrect"
    amplitude_db = lambda s, n, snr: n * np.sqrt(np.mean(s ** 2) / np.mean(n ** 2)) / 10 ** (snr / 10)
    assert ex.q4.check(amplitude_db).status == "incorrect"
    fresh = lambda s, n, snr: load("03").q4.reference(s, np.random.default_rng(9).standard_normal(len(n)), snr)
    assert ex.q4.check(fresh).status == "incorrect"
    assert ex.q4.check(lambda s, n, snr: labkit.____).status == "not attempted"


def _noisy_training_set(answer_source):
    """Run the notebook's q4 cell with ``answer_source`` as the learner's return line, then the cell that
    builds the noise-augmented training set; return (calls made while building, the set, the clean set)."""
    from labkit.exercises import nb03

    calls = []

    def counted(signal, noise, snr_db):
        calls.append(snr_db)
        return nb03.noise_for_snr(signal, noise, snr_db)

    a_train, a_y_train = audio.make_signals(2, rng=0)
    namespace = dict(ex=load("03"), counted=counted, np=np, a_train=a_train, a_y_train=a_y_train, seed=0)
    q4 = _cell('ex.q4.use(noise_for_snr, "noise scaling")')
    lines = q4.splitlines()
    assert lines[1].strip().startswith("return ____")
    exec("\n".join([lines[0], f"    return {answer_source}"] + lines[2:]), namespace)
    calls.clear()                                   # forget the checker's calls
    exec(_cell("a_train_aug = np.concatenate("), namespace)
    return calls, namespace["a_train_aug"], a_train


def test_the_learners_noise_scaling_builds_the_noisy_training_set(capsys):
    calls, augmented, clean = _noisy_training_set("counted(signal, noise, snr_db)")
    assert "your noise scaling" in capsys.readouterr().out
    assert len(calls) == 2 * len(clean) and all(-5 <= snr <= 20 for snr in calls)
    n = len(clean)
    for copy in (1, 2):
        got = [audio.snr_db(c, a) for c, a in zip(clean, augmented[copy * n:(copy + 1) * n])]
        assert np.allclose(got, calls[(copy - 1) * n:copy * n], atol=0.01)
    wrong_calls, _, _ = _noisy_training_set("counted(signal, noise, snr_db) * 0 + noise")
    assert "reference noise scaling" in capsys.readouterr().out and wrong_calls == []


def test_the_notebooks_pipeline_matches_labkits_augment_dataset(digits):
    """The pipeline written in the notebook and labkit.augment.augment_dataset (used to time it) agree."""
    import keras
    import tensorflow as tf

    source = _cell("def augmented_batches(").replace("labkit.show_source(augment.apply_layers)", "")
    namespace = dict(tf=tf, augment=augment)
    exec(source, namespace)
    labels = np.arange(len(digits))

    def layers():
        return [augment.random_affine_layer(20.0, 0.15, 0.1), keras.layers.RandomContrast(0.2, value_range=(0, 1))]

    ours = namespace["augmented_batches"](digits, labels, layers(), batch_size=8, seed=3)
    theirs = augment.augment_dataset(digits, labels, layers(), batch_size=8, seed=3, repeat=True)
    for (x1, y1), (x2, y2) in zip(ours.take(4), theirs.take(4)):
        assert np.array_equal(y1.numpy(), y2.numpy()) and np.allclose(x1.numpy(), x2.numpy(), atol=1e-6)


def test_the_notebooks_training_layers_are_labkits_fused_image_layers(digits):
    import keras

    namespace = dict(augment=augment, keras=keras, np=np, x_train=digits, seed=0)
    exec(_cell("def training_layers(").split("sliders = {")[0], namespace)
    kw = dict(rotation=20.0, zoom=0.15, translation=0.10, contrast=0.2)
    ours = augment.augment_images(digits, namespace["training_layers"](**kw), seed=5)
    theirs = augment.augment_images(digits, augment.image_layers(**kw, fused=True), seed=5)
    assert np.allclose(ours, theirs, atol=1e-6)


# -- the notebook -------------------------------------------------------------------------------
CONTRACT = ["image_acc_plain", "image_acc_aug", "image_shifted_acc_plain", "image_shifted_acc_aug",
            "text_acc_plain", "text_acc_aug", "text_acc_plain_sd", "text_acc_aug_sd",
            "audio_noisy_acc_plain", "audio_noisy_acc_aug", "aug_images_per_s", "aug_speedup_vs_loop"]


@pytest.mark.notebook
def test_smoke_run_records_contract(smoke_run):
    metrics, outdir = smoke_run("03_augmentation")
    values = metrics["metrics"]
    assert set(CONTRACT) <= set(values)
    for name in CONTRACT:
        if "acc" in name:
            assert 0.0 <= values[name] <= 1.0, name
    assert values["aug_images_per_s"] > 0 and values["aug_speedup_vs_loop"] > 0
    assert metrics["targets"]["image_shifted_gain"] == {"op": ">=", "value": 0.05}
    assert metrics["targets"]["aug_speedup_vs_loop"] == {"op": ">=", "value": 2.0}
    assert metrics["targets"]["audio_noisy_gain"] == {"op": ">=", "value": 0.3}
    for name in ("image_ops", "image_accuracy", "text_accuracy", "audio_accuracy", "throughput"):
        assert (outdir / f"{name}.png").exists(), name


def test_the_set_up_cell_is_at_most_six_lines():
    import nbformat

    from conftest import NOTEBOOKS

    cells = nbformat.read(NOTEBOOKS / "03_augmentation.ipynb", as_version=4).cells
    setup = cells[[i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])][0] + 1]
    assert 'labkit.start("03_augmentation", globals())' in setup.source and len(setup.source.splitlines()) <= 6
