"""Notebook 08 — synthetic market series and credit records: labkit.timeseries, labkit.tabular,
labkit.table_metrics, exercises."""
import numpy as np
import pandas as pd
import pytest

import labkit
from labkit import table_metrics as tm
from labkit import tabular as tb
from labkit import timeseries as ts

CONTRACT = [
    "disc_score_gan", "disc_score_garch", "disc_score_bootstrap", "strong_disc_score_gan",
    "strong_disc_score_garch", "strong_disc_score_bootstrap", "pred_score_gan", "pred_score_real",
    "stylized_facts", "table_column_shapes", "table_pair_trends", "table_quality", "table_tstr_score",
    "table_trtr_score", "dcr_synth_to_train_median", "dcr_holdout_to_train_median", "exact_copy_share",
    "rebalance_recall_before", "rebalance_recall_after", "train_seconds",
]


def _ohlcv(n=300, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opening = np.r_[100, close[:-1]] * np.exp(rng.normal(0, 0.002, n))
    high = np.maximum(opening, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(opening, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    volume = 1e6 * np.exp(rng.normal(0, 0.2, n))
    return np.stack([opening, high, low, close, close, volume], axis=1)


# --- timeseries -----------------------------------------------------------------------

def test_windows_and_scaler():
    x = _ohlcv()
    scaled = ts.MinMaxScaler().fit(x).transform(x)
    assert scaled.min() >= 0 and scaled.max() <= 1
    w = ts.sliding_windows(scaled, 24)
    assert w.shape == (277, 24, 6)
    np.testing.assert_array_equal(w[5], scaled[5:29])
    with pytest.raises(ValueError, match="no window"):
        ts.sliding_windows(scaled[:10], 24)


def test_daily_features_round_trip_and_bounds():
    w = ts.sliding_windows(_ohlcv(), 24)
    f = ts.daily_features(w)
    assert f.shape == (len(w), 23, 5)
    np.testing.assert_allclose(ts.decode_paths(w[:, 0], f), w, rtol=1e-10)
    noisy = ts.decode_paths(w[:, 0], np.random.default_rng(1).normal(0, 0.05, f.shape))
    assert (noisy[..., 1] >= np.maximum(noisy[..., 0], noisy[..., 3]) - 1e-9).all()
    assert (noisy[..., 2] <= np.minimum(noisy[..., 0], noisy[..., 3]) + 1e-9).all()
    assert (noisy[..., 2] > 0).all()
    with pytest.raises(ValueError, match="positive"):
        ts.daily_features(-w)


def test_discriminative_score_halves_and_constant():
    rng = np.random.default_rng(0)
    w = ts.sliding_windows(ts.MinMaxScaler().fit(_ohlcv(1400)).transform(_ohlcv(1400)), 24).astype(np.float32)
    w = w[rng.permutation(len(w))]
    half = len(w) // 2
    scores = ts.discriminative_score(w[:half], {"other half": w[half:], "constant": np.full_like(w[half:], 0.5)},
                                     repeats=1, iterations=1500, progress_desc=None)
    assert scores["other half"][0] < 0.08
    assert scores["constant"][0] > 0.4
    with pytest.raises(ValueError, match="shape"):
        ts.discriminative_score(w, {"bad": w[:, :, :3]}, progress_desc=None)


def test_predictive_score_runs_and_validates():
    w = ts.sliding_windows(ts.MinMaxScaler().fit(_ohlcv()).transform(_ohlcv()), 24).astype(np.float32)
    out = ts.predictive_score(w, {"real": w}, repeats=2, iterations=20, progress_desc=None)
    mean, sd, values = out["real"]
    assert len(values) == 2 and 0 <= mean <= 1
    with pytest.raises(ValueError, match="NaN"):
        ts.predictive_score(w, {"nan": np.full_like(w, np.nan)}, progress_desc=None)


def test_protocol_repeats_start_from_different_weights():
    import tensorflow as tf
    p = ts._gru_params(tf, 4, 5, 3, 1, seed=0)
    wx = p["wx"].numpy()
    assert wx.shape == (4, 5, 9) and len({w.tobytes() for w in wx}) == 4
    limit = np.sqrt(6 / (5 + 9))                                     # Glorot uniform bound
    assert np.abs(wx).max() <= limit and np.abs(wx).max() > 0.8 * limit
    again = ts._gru_params(tf, 4, 5, 3, 1, seed=0)["wx"].numpy()
    np.testing.assert_array_equal(wx, again)                         # reproducible from the seed


def test_constant_predictive_score_is_the_best_constant_guess():
    w = ts.sliding_windows(ts.MinMaxScaler().fit(_ohlcv()).transform(_ohlcv()), 24).astype(np.float32)
    target = w[:, 1:, -1]
    grid = np.linspace(0, 1, 2001)
    brute = min(np.mean(np.abs(target - c)) for c in grid)          # the median minimises the MAE
    assert ts.constant_predictive_score(w) == pytest.approx(brute, abs=1e-3)
    assert ts.constant_predictive_score(w) <= np.mean(np.abs(target - target.mean()))


def test_protocol_sets_build_every_generator_on_one_series():
    raw = labkit.data.load_market("google").frame[list(ts.FEATURES)].to_numpy(float)[:400]
    sets = ts.protocol_sets(raw, gan_iterations=2, seed=0, progress_desc=None)
    assert set(sets) == {"real", "gan", "garch", "bootstrap", "scaler", "train_seconds"}
    assert sets["train_seconds"] > 0
    for name in ("real", "gan", "garch", "bootstrap"):
        assert sets[name].shape == (400 - 23, 24, 6) and np.isfinite(sets[name]).all()
    back = sets["scaler"].inverse_transform(sets["gan"].reshape(-1, 6)).reshape(-1, 24, 6)
    assert (back[..., 1] >= np.maximum(back[..., 0], back[..., 3]) - 1e-3).all()    # High >= Open, Close (float32)
    with pytest.raises(ValueError, match="positive"):
        ts.protocol_sets(-raw, gan_iterations=1, progress_desc=None)


def test_autocorrelation_matches_statsmodels():
    from statsmodels.tsa.stattools import acf

    x = np.random.default_rng(2).standard_t(4, 2000)
    np.testing.assert_allclose(ts.autocorrelation(x, 20), acf(x, nlags=20, fft=False)[1:], atol=1e-12)


def test_hill_tail_index_monte_carlo():
    x = np.random.default_rng(3).pareto(3.0, 200_000) + 1.0
    assert ts.hill_tail_index(x, 0.02) == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="tail_fraction"):
        ts.hill_tail_index(x[:10], 0.05)


def test_stylized_facts_garch_vs_iid():
    from arch.univariate import GARCH, ConstantMean, Normal

    sim = ConstantMean(None, volatility=GARCH(1, 0, 1), distribution=Normal(seed=np.random.default_rng(4)))
    r = sim.simulate([0.0, 0.05, 0.1, 0.85], 5000)["data"].to_numpy() / 100
    iid = np.random.default_rng(5).normal(0, 0.01, 5000)
    f_garch, f_iid = ts.stylized_facts(r), ts.stylized_facts(iid)
    assert f_garch["acf_abs_lag1"] > 0.05 and abs(f_iid["acf_abs_lag1"]) < 0.05
    assert f_garch["excess_kurtosis"] > 0.3 and abs(f_iid["excess_kurtosis"]) < 0.3
    assert abs(f_garch["acf_r_lag1"]) < 0.05
    res = ts.fit_garch(r)
    assert res.params["alpha[1]"] + res.params["beta[1]"] == pytest.approx(0.95, abs=0.05)
    assert ts.garch_returns(res, 300, seed=1).shape == (300,)


def test_block_bootstrap_blocks_are_real_runs():
    daily = np.arange(100, dtype=float)[:, None].repeat(5, axis=1)
    out = ts.block_bootstrap(daily, 4, 23, block=5, seed=0)
    assert out.shape == (4, 23, 5)
    steps = np.diff(out[:, :20, 0].reshape(4, 4, 5), axis=2)
    assert (steps == 1).all()
    with pytest.raises(ValueError, match="block"):
        ts.block_bootstrap(daily, 1, 10, block=0)


# --- tabular --------------------------------------------------------------------------

def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    amount = np.where(rng.random(n) < 0.5, rng.normal(10_000, 500, n), rng.normal(30_000, 2_000, n)).round()
    income = rng.lognormal(11, 0.5, n)
    months = np.where(rng.random(n) < 0.4, np.nan, rng.integers(0, 100, n)).astype(float)
    grade = rng.choice(list("ABCD"), n, p=[0.4, 0.3, 0.2, 0.1])
    home = np.where(rng.random(n) < 0.1, None, rng.choice(["RENT", "OWN"], n)).astype(object)
    return pd.DataFrame({"amount": amount, "income": income, "months": months, "grade": grade, "home": home})


SPEC = tb.TableSpec(numeric=["amount", "income", "months"], categorical=["grade", "home"],
                    integer=["amount", "months"])


def test_mode_normalizer_round_trip():
    x = _table()["income"].to_numpy()
    norm = tb.ModeNormalizer(seed=0).fit(x)
    alpha, mode = norm.transform(x)
    back = norm.inverse_transform(alpha, mode)
    assert np.max(np.abs(back - x) / np.abs(x)) < 1e-6
    amounts = _table()["amount"].to_numpy()
    assert tb.ModeNormalizer(seed=0).fit(amounts).n_modes >= 2       # the two loan-size modes
    with pytest.raises(ValueError, match="finite"):
        tb.ModeNormalizer().fit([1.0, np.nan])


def test_transformer_round_trip_with_missing_values():
    frame = _table()
    t = tb.TableTransformer(SPEC).fit(frame)
    back = t.inverse_transform(t.transform(frame))
    pd.testing.assert_series_equal(back["grade"], frame["grade"].reset_index(drop=True), check_names=False)
    assert back["months"].isna().sum() == frame["months"].isna().sum()
    np.testing.assert_allclose(back["income"], frame["income"], rtol=1e-6)
    with pytest.raises(ValueError, match="lacks columns"):
        t.transform(frame.drop(columns="grade"))


def test_generated_tables_respect_types_and_bounds():
    frame = _table()
    gan = tb.ConditionalTabularGAN(SPEC, width=32, seed=0).fit(frame, epochs=2, batch_size=100,
                                                               progress_desc=None)
    for synth in (gan.sample(300), tb.GaussianCopula(SPEC).fit(frame).sample(300),
                  tb.independent_marginals(frame, 300)):
        assert list(synth.columns) == SPEC.columns
        for c in SPEC.numeric:
            x = synth[c].dropna()
            assert x.min() >= frame[c].min() and x.max() <= frame[c].max()
        for c in SPEC.integer:
            np.testing.assert_array_equal(synth[c].dropna(), synth[c].dropna().round())
        assert set(synth["grade"]) <= set(frame["grade"])
        assert set(synth["home"].dropna()) <= set(frame["home"].dropna())
    rows = gan.sample(20, condition={"grade": "D"}, max_tries=200)
    assert (rows["grade"] == "D").all()
    with pytest.raises(ValueError, match="no category"):
        gan.sample(5, condition={"grade": "Z"})


def test_tabular_gan_checkpoints_every_few_epochs(tmp_path):
    """Exact resume is tested in tests/test_training_ports.py; here the cadence and the arguments."""
    frame = _table()
    first = tb.ConditionalTabularGAN(SPEC, width=32, seed=0)
    first.fit(frame, epochs=3, batch_size=100, checkpoint_dir=tmp_path, checkpoint_every=2, progress_desc=None)
    assert (tmp_path / "state").is_dir() and len(first.history["critic_loss"]) == 3     # one value per epoch
    again = tb.ConditionalTabularGAN(SPEC, width=32, seed=0)
    again.fit(frame, epochs=5, batch_size=100, checkpoint_dir=tmp_path, checkpoint_every=2, progress_desc=None)
    assert again.history["critic_loss"][:3] == first.history["critic_loss"]          # epochs 1-3 restored
    assert len(again.history["critic_loss"]) == 5
    with pytest.raises(labkit.ParameterError, match="checkpoint_every"):
        tb.ConditionalTabularGAN(SPEC, width=32).fit(frame, epochs=1, checkpoint_dir=tmp_path, checkpoint_every=0)


def test_gaussian_copula_keeps_correlation():
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], 3000)
    frame = pd.DataFrame({"a": z[:, 0], "b": np.exp(z[:, 1]), "c": rng.choice(["x", "y"], 3000)})
    spec = tb.TableSpec(numeric=["a", "b"], categorical=["c"])
    synth = tb.GaussianCopula(spec, seed=0).fit(frame).sample(3000)
    rho = lambda f: f[["a", "b"]].corr(method="spearman").iloc[0, 1]  # noqa: E731
    assert rho(synth) == pytest.approx(rho(frame), abs=0.05)


def test_ks_and_tv_complements_match_references():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=500), rng.normal(0.3, 1, size=400)
    assert tm.ks_complement(a, b) == pytest.approx(1 - ks_2samp(a, b).statistic)
    assert tm.ks_complement(np.r_[a, np.nan], b) == pytest.approx(1 - ks_2samp(a, b).statistic)
    real = ["A"] * 5 + ["B"] * 3 + [None] * 2
    synth = ["A"] * 3 + ["B"] * 5 + ["C"] * 2
    # by hand: |.5-.3| + |.3-.5| + |.2-0| (missing) + |0-.2| (C) = .8, TV = .4
    assert tm.tv_complement(real, synth) == pytest.approx(0.6)


def test_quality_scores_are_one_for_identical_tables():
    frame = _table()
    assert tm.column_shapes(frame, frame, SPEC)[0] == pytest.approx(1.0)
    assert tm.column_pair_trends(frame, frame, SPEC)[0] == pytest.approx(1.0)
    frame["income"] = 3 * frame["amount"] + np.random.default_rng(1).normal(0, 1000, len(frame))
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame({c: frame[c].to_numpy()[rng.permutation(len(frame))] for c in frame})
    assert tm.column_shapes(frame, shuffled, SPEC)[0] == pytest.approx(1.0)
    assert tm.column_pair_trends(frame, shuffled, SPEC)[0] < 0.99


def test_privacy_metrics_and_utility():
    frame = _table()
    train, other = frame.iloc[:400], frame.iloc[400:]
    assert tm.exact_copy_share(train.iloc[:50], train, SPEC) == 1.0
    assert tm.exact_copy_share(other, train, SPEC) == 0.0
    np.testing.assert_allclose(tm.distance_to_closest_record(train.iloc[:30], train, SPEC), 0, atol=1e-9)
    assert (tm.distance_to_closest_record(other, train, SPEC) > 0).all()
    auc = tm.utility_auc(train, other, SPEC, "grade", ["D"])
    assert 0 <= auc <= 1
    with pytest.raises(ValueError, match="one class"):
        tm.utility_auc(train, other, SPEC, "grade", ["Z"])


# --- exercises ------------------------------------------------------------------------

# reference-passes / blank-is-not-attempted: tests/test_exercises.py covers every notebook


def test_exercise_wrong_answers_are_incorrect():
    ex = labkit.exercises.load("08")
    assert ex.q1.check("heavy tails").status == "incorrect"
    assert ex.q3.check(lambda r, s: 0.4).status == "incorrect"
    assert ex.q4.check({"a", "c"}).status == "incorrect"


# --- the notebook ------------------------------------------------------------------------

@pytest.mark.notebook
def test_notebook_smoke(smoke_run):
    metrics, outdir = smoke_run("08_finance")
    m = metrics["metrics"]
    for key in CONTRACT:
        assert key in m, key
    for key in ("disc_score_gan", "disc_score_garch", "disc_score_bootstrap", "strong_disc_score_gan"):
        assert 0 <= m[key] <= 0.5 and 0 <= m[key + "_sd"]
    assert 0 < m["pred_score_real"] < 1 and 0 < m["pred_score_gan"] < 1
    assert set(m["stylized_facts"]["excess_kurtosis"]) == {"real", "gan", "garch", "bootstrap"}
    assert m["stylized_facts"]["excess_kurtosis"]["real"] > 3           # heavy tails of the S&P 500
    assert 0 <= m["table_quality"] <= 1 and 0.5 < m["table_trtr_score"] <= 1
    assert m["exact_copy_share"] == 0
    with np.load(outdir / "market_samples.npz", allow_pickle=False) as npz:
        assert npz["windows"].shape[1:] == (24, 6)
        assert npz["scaler_min"].shape == (6,)
    synth = pd.read_csv(outdir / "table_samples.csv")
    assert {"grade", "loan_amount", "annual_income"} <= set(synth.columns)
    assert (synth["loan_amount"] > 0).all()
    for name in ("table_train.csv", "table_holdout.csv", "stylized_facts.png", "table_quality.png"):
        assert (outdir / name).exists()


def test_pacgan_packing_and_penalty_on_packed_input():
    import tensorflow as tf

    from labkit.gan import wgan_gp_critic_loss

    rows = tf.reshape(tf.range(24, dtype=tf.float32), (6, 4))
    packed = tb.pack(rows, 3)
    assert packed.shape == (2, 12)
    np.testing.assert_array_equal(packed.numpy()[1], np.arange(12, 24))   # rows 3, 4, 5 side by side
    assert tb.pack(rows, 1) is rows
    # a linear critic on the packed input has gradient w everywhere: penalty = 10 (||w|| - 1)^2
    w = tf.constant(np.linspace(-1, 1, 12)[:, None], tf.float32)
    critic = lambda x, training=False: tf.matmul(x, w)  # noqa: E731
    real, fake = tb.pack(rows, 3), tb.pack(rows + 1.0, 3)
    loss, wdist = wgan_gp_critic_loss(critic, real, fake, gp_weight=10.0)
    penalty = 10.0 * (np.linalg.norm(w.numpy()) - 1.0) ** 2
    assert float(loss) == pytest.approx(-float(wdist) + penalty, rel=1e-5)


def test_tabular_gan_with_pac_and_target_share():
    frame = _table()
    gan = tb.ConditionalTabularGAN(SPEC, width=32, seed=0, pac=10, target="grade", target_share=0.5)
    gan.fit(frame, epochs=1, batch_size=100, progress_desc=None)
    assert gan.critic.input_shape[-1] == 10 * (gan.transformer.width + gan.cond_width)
    _, mask, _ = gan._sample_condition(4000)
    share = mask[:, [s[0] for s in gan.cond_spans].index("grade")].mean()
    assert share == pytest.approx(0.5 + 0.5 / len(gan.cond_spans), abs=0.03)
    _, mask, _ = gan._sample_condition(4000, by_log_frequency=False)      # sampling: uniform columns
    assert mask.mean(axis=0) == pytest.approx(np.full(len(gan.cond_spans), 1 / len(gan.cond_spans)), abs=0.03)
    assert len(gan.sample(30)) == 30
    with pytest.raises(ValueError, match="multiple of pac"):
        gan.fit(frame, epochs=1, batch_size=95, progress_desc=None)
    with pytest.raises(ValueError, match="categorical columns"):
        tb.ConditionalTabularGAN(SPEC, target="amount", target_share=0.3)      # numeric: cannot condition
