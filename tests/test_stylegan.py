"""labkit.stylegan: each StyleGAN mechanism, DiffAugment, the training step, saving and resuming."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from labkit import augment, stylegan  # noqa: E402
from labkit.params import ParameterError  # noqa: E402
from labkit.training import fit  # noqa: E402


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    return stylegan.StyleGenerator(latent_dim=16, w_dim=16, mapping_layers=2, channels=(8, 8, 4, 4))


def _modulated(filters=24, in_channels=16, kernel_size=3, demodulate=True, seed=0):
    keras.utils.set_random_seed(seed)
    layer = stylegan.ModulatedConv2D(filters, kernel_size, demodulate=demodulate)
    layer.build(((None, 40, 40, in_channels), (None, 8)))
    # a style far from 1 (not just the initial bias), so modulation really changes the scale
    layer.affine.set_weights([np.random.default_rng(seed).normal(size=(8, in_channels)).astype("float32"),
                              np.full(in_channels, 2.0, "float32")])
    return layer


def test_demodulation_keeps_unit_variance_and_modulation_alone_does_not():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 40, 40, 16)).astype("float32")
    w = rng.standard_normal((4, 8)).astype("float32")
    inner = (slice(None), slice(1, -1), slice(1, -1))            # away from the zero padding
    y = np.asarray(_modulated()([x, w]))[inner]
    per_channel = y.reshape(-1, y.shape[-1]).var(axis=0)
    assert per_channel.mean() == pytest.approx(1.0, abs=0.05)
    assert np.all(np.abs(per_channel - 1) < 0.25)
    y_plain = np.asarray(_modulated(demodulate=False)([x, w]))[inner]
    assert abs(y_plain.var() - 1.0) > 0.5                        # the style's scale leaks through


def test_modulated_conv_equals_per_sample_modulated_weights():
    """Reference: StyleGAN2's fused form, one convolution per sample with W'_kio = W_kio s_i / ||.||."""
    rng = np.random.default_rng(1)
    layer = _modulated(filters=5, in_channels=3, seed=1)
    x = rng.standard_normal((3, 7, 7, 3)).astype("float32")
    w = rng.standard_normal((3, 8)).astype("float32")
    got = np.asarray(layer([x, w]))
    kernel = layer.kernel.numpy() / np.sqrt(3 * 3 * 3)
    styles = np.asarray(layer.styles(w))
    for n in range(3):
        modulated = kernel * styles[n][None, None, :, None]
        modulated /= np.sqrt((modulated ** 2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        want = tf.nn.conv2d(x[n:n + 1], modulated, 1, "SAME").numpy()[0]
        np.testing.assert_allclose(got[n], want, atol=1e-4)


def test_truncation_psi_zero_is_mean_and_one_is_identity(generator):
    generator.w_avg.assign(np.linspace(-1, 1, 16).astype("float32"))
    w = generator.map(np.random.default_rng(2).normal(size=(5, 16)).astype("float32"))
    np.testing.assert_allclose(generator.truncate(w, 0.0), np.tile(generator.w_avg.numpy(), (5, 1)), atol=1e-6)
    np.testing.assert_allclose(generator.truncate(w, 1.0), w, atol=1e-6)
    half = np.asarray(generator.truncate(w, 0.5))
    np.testing.assert_allclose(half, (np.asarray(w) + generator.w_avg.numpy()) / 2, atol=1e-6)


def test_w_avg_tracks_the_mean_w(generator):
    generator.w_avg.assign(np.zeros(16, "float32"))
    w = tf.ones((4, 16))
    for _ in range(3):
        generator.update_w_avg(w)
    beta = generator.w_avg_beta
    np.testing.assert_allclose(generator.w_avg.numpy(), 1 - beta ** 3, rtol=1e-5)


@pytest.mark.parametrize("switch", [0, 1, 2, 4, 5])
def test_style_mixing_switches_at_the_requested_layer(generator, switch):
    rng = np.random.default_rng(3)
    w_a, w_b = (generator.map(rng.normal(size=(2, 16)).astype("float32")) for _ in range(2))
    ws = np.asarray(generator.mix(w_a, w_b, switch))
    assert ws.shape == (2, generator.num_ws, 16)
    for layer in range(generator.num_ws):
        np.testing.assert_array_equal(ws[:, layer], np.asarray(w_a if layer < switch else w_b))


def test_style_mixing_changes_only_layers_from_the_switch_on(generator):
    """Images: switch = num_ws is face A, switch = 0 is face B; a mid switch is neither."""
    rng = np.random.default_rng(4)
    w_a, w_b = (generator.map(rng.normal(size=(1, 16)).astype("float32")) for _ in range(2))
    noise = [np.zeros(s, "float32") for s in generator.noise_shapes(1)]
    image = lambda ws: np.asarray(generator.synthesize(ws, noise))  # noqa: E731
    np.testing.assert_allclose(image(generator.mix(w_a, w_b, generator.num_ws)), image(w_a), atol=1e-6)
    np.testing.assert_allclose(image(generator.mix(w_a, w_b, 0)), image(w_b), atol=1e-6)
    mid = image(generator.mix(w_a, w_b, 2))
    assert not np.allclose(mid, image(w_a), atol=1e-4) and not np.allclose(mid, image(w_b), atol=1e-4)


def test_noise_changes_the_image_but_not_the_mapping(generator):
    for layer in generator.noises:
        layer.scale.assign(np.full(layer.scale.shape, 0.5, "float32"))
    z = np.random.default_rng(5).normal(size=(2, 16)).astype("float32")
    rng = np.random.default_rng(6)
    noise_1 = [rng.standard_normal(s).astype("float32") for s in generator.noise_shapes(2)]
    noise_2 = [rng.standard_normal(s).astype("float32") for s in generator.noise_shapes(2)]
    w_1, w_2 = generator.map(z), generator.map(z)
    np.testing.assert_array_equal(np.asarray(w_1), np.asarray(w_2))
    a, b = np.asarray(generator.synthesize(w_1, noise_1)), np.asarray(generator.synthesize(w_2, noise_2))
    assert np.abs(a - b).max() > 1e-3
    np.testing.assert_array_equal(a, np.asarray(generator.synthesize(w_1, noise_1)))
    for layer in generator.noises:
        layer.scale.assign(np.zeros(layer.scale.shape, "float32"))
    np.testing.assert_allclose(np.asarray(generator.synthesize(w_1, noise_1)),
                               np.asarray(generator.synthesize(w_1, noise_2)), atol=1e-6)


def test_generator_shapes_and_bad_channels(generator):
    assert generator(np.zeros((3, 16), "float32")).shape == (3, 32, 32, 1)
    assert generator.num_ws == 5
    with pytest.raises(ParameterError, match="channels"):
        stylegan.StyleGenerator(channels=(8, 8, 8))


def test_save_and_load_keras_gives_the_same_images(generator, tmp_path):
    from labkit import files

    path = files.save_keras(generator, tmp_path / "g.keras")
    loaded = keras.models.load_model(path)
    z = np.random.default_rng(7).normal(size=(3, 16)).astype("float32")
    noise = [np.ones(s, "float32") for s in generator.noise_shapes(3)]
    np.testing.assert_allclose(np.asarray(loaded.synthesize(loaded.map(z), noise)),
                               np.asarray(generator.synthesize(generator.map(z), noise)), atol=1e-6)
    np.testing.assert_array_equal(loaded.w_avg.numpy(), generator.w_avg.numpy())


# --- DiffAugment -------------------------------------------------------------------------------

def test_diff_augment_translation_is_an_integer_shift_with_zero_fill():
    x = np.random.default_rng(8).uniform(0.1, 1, size=(6, 16, 16, 1)).astype("float32")
    y = augment.diff_augment(x, "translation", translation=0.125).numpy()
    for xi, yi in zip(x, y):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = np.zeros_like(xi)
                src = xi[max(0, -dy):16 - max(0, dy), max(0, -dx):16 - max(0, dx)]
                shifted[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
                matches.append(np.allclose(shifted, yi))
        assert any(matches)


def test_diff_augment_cutout_brightness_contrast_and_gradients():
    x = tf.constant(np.random.default_rng(9).uniform(0.1, 1, size=(64, 32, 32, 1)).astype("float32"))
    cut = augment.diff_augment(x, "cutout", cutout=0.5).numpy()
    zero_share = (cut == 0).mean(axis=(1, 2, 3))
    assert zero_share.max() == pytest.approx(0.25)                # a 16x16 square when fully inside
    assert 0.05 < zero_share.mean() < 0.25
    bright = augment.diff_augment(x, "brightness").numpy() - x.numpy()
    offsets = bright.reshape(64, -1)
    np.testing.assert_allclose(offsets.max(1), offsets.min(1), atol=1e-5)   # one offset per image
    assert np.abs(offsets).max() <= 0.5 and offsets.std() > 0.1
    contrast = augment.diff_augment(x, "contrast").numpy()
    np.testing.assert_allclose(contrast.mean(axis=(1, 2, 3)), x.numpy().mean(axis=(1, 2, 3)), atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(augment.diff_augment(x, "translation,cutout,brightness,contrast"))
    grad = tape.gradient(y, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_diff_augment_policy_checks():
    assert augment.check_diff_augment(None) == () and augment.check_diff_augment("") == ()
    assert augment.check_diff_augment("cutout, translation") == ("cutout", "translation")
    with pytest.raises(ParameterError, match="diffaugment"):
        augment.check_diff_augment("flip")
    with pytest.raises(ValueError, match="N, H, W, C"):
        augment.diff_augment(np.zeros((4, 8, 8)), "cutout")


# --- training ------------------------------------------------------------------------------------

def _tiny_gan(seed=0, **kwargs):
    return stylegan.build(latent_dim=8, w_dim=8, channels=(8, 8, 4, 4), d_channels=(4, 8, 8), seed=seed, **kwargs)


def test_training_runs_moves_w_avg_and_resumes(tmp_path):
    faces = np.random.default_rng(10).uniform(size=(16, 32, 32)).astype("float32")
    gan = _tiny_gan()
    history = fit(gan, faces, steps=3, batch_size=4, checkpoint_dir=tmp_path / "ck", show_progress=False)
    assert history["steps"] == 3 and np.isfinite(history["d_loss"]).all() and np.isfinite(history["g_loss"]).all()
    assert np.abs(gan.generator.w_avg.numpy()).max() > 0
    resumed = _tiny_gan(seed=1)                               # other initial weights: all must be restored
    again = fit(resumed, faces, steps=3, batch_size=4, checkpoint_dir=tmp_path / "ck", show_progress=False)
    assert again["steps"] == 3 and len(again["d_loss"]) == 3
    for model in ("generator", "ema_generator", "discriminator"):
        restored, original = getattr(resumed, model), getattr(gan, model)
        assert len(restored.weights) == len(original.weights)
        for a, b in zip(restored.weights, original.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{model} {a.path}")
    samples = resumed.sample(5, seed=1)
    assert samples.shape == (5, 32, 32) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, resumed.sample(5, seed=1))         # seeded noise
    assert resumed.discriminate(faces).shape == (16,)


def test_training_without_diffaugment_and_bad_arguments():
    gan = _tiny_gan(diffaugment=None, r1_gamma=0.0)
    assert gan.diffaugment == ()
    losses = gan.train_step({"images": tf.zeros((4, 32, 32, 1)), "noise": tf.random.normal((4, 8))})
    assert np.isfinite(float(losses["d_loss"])) and np.isfinite(float(losses["g_loss"]))
    with pytest.raises(ParameterError, match="mixing"):
        _tiny_gan(mixing=1.5)
    with pytest.raises(ParameterError, match="diffaugment"):
        _tiny_gan(diffaugment="rotation")
