"""Independent checks of the workbook's attacks and table metrics against the field's libraries.

- IBM's Adversarial Robustness Toolbox (ART >= 1.20, Keras 3 / TF 2, installed from
  requirements-test.txt) checks :func:`labkit.attacks.fgsm` element by element and the robust accuracy
  left by :func:`labkit.attacks.pgd`, on a small CNN trained here on real digits. These are the
  copies of notebook 06's ``fgsm`` and ``pgd`` cells; ``tests/test_nb06_adversarial.py`` checks that
  the cells give the same examples as the copies.
- SDMetrics' ``QualityReport`` checks :func:`labkit.table_metrics.column_shapes` and
  :func:`labkit.table_metrics.column_pair_trends` on the Lending Club loans and two synthetic versions.
  SDMetrics requires pandas < 3, so it runs in its own venv (``.venv-sdmetrics``, made by
  ``make test`` from requirements-sdmetrics.lock; path in ``LABKIT_SDMETRICS_PYTHON``), reading the
  tables from CSV and writing its scores as JSON (``tests/sdmetrics_scores.py``).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:PyTorch not found")

# --- ART: FGSM and PGD ---------------------------------------------------------------------

N_TRAIN, N_ATTACK = 600, 200
EPS, PGD_STEPS, PGD_STEP = 0.1, 10, 0.025


@pytest.fixture(scope="module")
def digits_cnn():
    """A small logits CNN trained for a few seconds on real digits, and 200 held-out digits."""
    import tensorflow as tf

    from labkit.data import load_digits
    from labkit.run import seed_everything

    seed_everything(0)
    data = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.x))
    x = data.x[..., None].astype("float32")
    y = data.y.astype("int64")
    train, test = order[:N_TRAIN], order[N_TRAIN:N_TRAIN + N_ATTACK]
    model = tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        tf.keras.layers.Conv2D(8, 3, activation="relu"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x[train], y[train], epochs=6, batch_size=32, verbose=0)
    return model, x[test], y[test]


def art_classifier(model):
    """ART's wrapper of the same model; summed loss, like labkit's per-example gradients."""
    import tensorflow as tf
    from art.estimators.classification import TensorFlowV2Classifier

    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    return TensorFlowV2Classifier(model, nb_classes=10, input_shape=(28, 28, 1), loss_object=loss,
                                  clip_values=(0.0, 1.0))


def test_fgsm_matches_art_element_by_element(digits_cnn):
    """Same model, same loss, same labels: ART's FastGradientMethod (L-inf, eps_step = eps, no
    random start) and labkit's FGSM must give the same image. Tolerance: an element may differ only
    where the loss gradient is so close to 0 that float32 rounding in the two graphs flips its sign
    (ART's eager tape vs labkit's tf.function); at most 0.1% of the elements."""
    from art.attacks.evasion import FastGradientMethod

    from labkit.attacks import accuracy, fgsm

    model, x, y = digits_cnn
    ours = fgsm(model, x, y, eps=EPS)
    theirs = FastGradientMethod(art_classifier(model), norm=np.inf, eps=EPS, eps_step=EPS, targeted=False,
                                num_random_init=0, batch_size=64).generate(x, y=y)
    same = np.isclose(ours, theirs, rtol=0, atol=1e-6)
    assert same.mean() >= 0.999, f"only {same.mean():.4%} of the FGSM pixels agree with ART"
    assert accuracy(model, ours, y) == pytest.approx(accuracy(model, theirs, y), abs=0.01)


def test_pgd_robust_accuracy_matches_art(digits_cnn):
    """Matched settings: L-inf eps = 0.1, 10 steps of 0.025, one uniform random start in the ball,
    untargeted, projection onto the ball and [0, 1] after each step. The random starts differ (two
    generators), so only the robust accuracy is compared: within 0.04 on 200 digits (about 8 digits
    that sit on the decision boundary). Both must also beat FGSM or tie with it."""
    from art.attacks.evasion import ProjectedGradientDescent

    from labkit.attacks import accuracy, fgsm, pgd

    model, x, y = digits_cnn
    ours = pgd(model, x, y, eps=EPS, steps=PGD_STEPS, step_size=PGD_STEP, restarts=1, random_start=True, seed=0)
    attack = ProjectedGradientDescent(art_classifier(model), norm=np.inf, eps=EPS, eps_step=PGD_STEP,
                                      max_iter=PGD_STEPS, targeted=False, num_random_init=1, batch_size=64,
                                      verbose=False)
    theirs = attack.generate(x, y=y)
    clean, acc_ours, acc_theirs = accuracy(model, x, y), accuracy(model, ours, y), accuracy(model, theirs, y)
    assert clean >= 0.8, f"the test CNN is too weak to attack (clean accuracy {clean:.2f})"
    assert abs(acc_ours - acc_theirs) <= 0.04, f"PGD robust accuracy {acc_ours:.3f} vs ART {acc_theirs:.3f}"
    assert acc_ours <= accuracy(model, fgsm(model, x, y, eps=EPS), y) + 0.02
    assert np.abs(theirs - x).max() <= EPS + 1e-6  # ART keeps to the same ball


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attack_properties(digits_cnn, attack):
    """eps = 0 returns the input; any eps keeps to the eps-ball and to [0, 1]."""
    from labkit import attacks

    model, x, y = digits_cnn
    x, y = x[:64], y[:64]
    run = (lambda eps: attacks.fgsm(model, x, y, eps=eps)) if attack == "fgsm" else \
        (lambda eps: attacks.pgd(model, x, y, eps=eps, steps=5, step_size=max(eps / 4, 1e-3), seed=1))
    np.testing.assert_array_equal(run(0.0), x)
    for eps in (0.03, 0.3):
        adv = run(eps)
        assert adv.shape == x.shape and adv.dtype == np.float32
        assert np.abs(adv - x).max() <= eps + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0
        assert np.abs(adv - x).max() > 0  # it did move


# --- SDMetrics: column shapes and column-pair trends ------------------------------------------

TABLE_ROWS = 3000
LOAN_COLUMNS = dict(
    numeric=["loan_amount", "annual_income", "debt_to_income", "emp_length", "months_since_last_delinq",
             "inquiries_last_12m", "open_credit_lines", "total_credit_utilized"],
    categorical=["term", "homeownership", "verified_income", "loan_purpose", "grade"],
    integer=["loan_amount", "emp_length", "months_since_last_delinq", "inquiries_last_12m",
             "open_credit_lines", "total_credit_utilized"])


def sdmetrics_python() -> str:
    """The SDMetrics venv's interpreter; in CI a missing one is an error, elsewhere a skip."""
    path = Path(os.environ.get("LABKIT_SDMETRICS_PYTHON", ROOT / ".venv-sdmetrics" / "bin" / "python"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.exists():
        message = (f"no SDMetrics venv at {path}: `make test` (or `make .venv-sdmetrics/.installed`) "
                   "makes it from requirements-sdmetrics.lock")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


@pytest.fixture(scope="module")
def quality_scores(tmp_path_factory):
    """labkit's and SDMetrics' scores of two synthetic loan tables, from the same CSV files
    (3,000 real loans, 8 numeric and 5 categorical columns as in notebook 08)."""
    import pandas as pd

    from labkit import table_metrics as tm
    from labkit import tabular as tb
    from labkit.data import load_loans

    spec = tb.TableSpec(**LOAN_COLUMNS)
    real = load_loans().frame[spec.columns].sample(n=TABLE_ROWS, random_state=0).reset_index(drop=True)
    real["term"] = real["term"].astype(str)
    synthetic = {"synthetic_copula": tb.GaussianCopula(spec, seed=0).fit(real).sample(TABLE_ROWS),
                 "synthetic_marginals": tb.independent_marginals(real, TABLE_ROWS, seed=0)}
    folder = tmp_path_factory.mktemp("sdmetrics")
    metadata = {"columns": {**{c: {"sdtype": "numerical"} for c in spec.numeric},
                            **{c: {"sdtype": "categorical"} for c in spec.categorical}}}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    for name, frame in {"real": real, **synthetic}.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    done = subprocess.run([sdmetrics_python(), str(ROOT / "tests" / "sdmetrics_scores.py"), str(folder)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((folder / "sdmetrics.json").read_text())

    def read(name):  # both sides score the same CSV round trip
        return pd.read_csv(folder / f"{name}.csv", dtype={c: object for c in spec.categorical})

    ours = {}
    for name in synthetic:
        shape_mean, shapes = tm.column_shapes(read("real"), read(name), spec)
        pair_mean, pairs = tm.column_pair_trends(read("real"), read(name), spec)
        ours[name] = {"column_shapes": shapes, "column_pair_trends": {f"{a}|{b}": s for (a, b), s in pairs.items()},
                      "shape_mean": shape_mean, "pair_mean": pair_mean}
    return spec, ours, theirs, folder


def _kind(pair, spec):
    a, b = pair.split("|")
    return "numeric" if a in spec.numeric and b in spec.numeric else \
        "categorical" if a in spec.categorical and b in spec.categorical else "mixed"


def _sdmetrics_bins(series):
    """SDMetrics' discretisation: 10 equal-width bins of *this* table's own range, np.digitize
    (values at the maximum get their own bin; missing values land in the last bin)."""
    import pandas as pd

    edges = np.histogram_bin_edges(series.dropna())
    return pd.Series(np.digitize(series, bins=edges)).astype(str)


def _with_missing(series):
    """Categories as strings, missing values as a category of their own (both libraries do so)."""
    return series.astype(object).where(series.notna(), "(missing)").astype(str).reset_index(drop=True)


@pytest.mark.parametrize("name", ["synthetic_copula", "synthetic_marginals"])
def test_column_shapes_match_sdmetrics(quality_scores, name):
    """Column shapes: the same KS complement (numbers, missing values dropped) and TV complement
    (categories). SDMetrics drops missing categories, labkit counts "(missing)" as a category; the
    loans' categorical columns used here have no missing values, so the scores must agree to 1e-9."""
    import pandas as pd

    spec, ours, theirs, folder = quality_scores
    real = pd.read_csv(folder / "real.csv", dtype={c: object for c in spec.categorical})
    assert not real[spec.categorical].isna().any().any(), "missing categories: the two TV complements differ"
    sdm = theirs[name]["every_pair"]
    assert set(sdm["column_shapes"]) == set(spec.columns)
    for column, score in ours[name]["column_shapes"].items():
        expected = "KSComplement" if column in spec.numeric else "TVComplement"
        assert sdm["column_shape_metrics"][column] == expected
        assert score == pytest.approx(sdm["column_shapes"][column], abs=1e-9), column
    assert ours[name]["shape_mean"] == pytest.approx(theirs[name]["default"]["properties"]["Column Shapes"],
                                                     abs=1e-9)


@pytest.mark.parametrize("name", ["synthetic_copula", "synthetic_marginals"])
def test_column_pair_trends_match_sdmetrics(quality_scores, name):
    """Column pairs, every pair scored (SDMetrics' association thresholds off):

    - two numbers: 1 - |Pearson r_real - r_synth| / 2 on rows where both are present
      (CorrelationSimilarity), agreement to 1e-9;
    - two categories: 1 - total variation distance of the joint frequency tables, missing as a
      category (ContingencySimilarity), agreement to 1e-9;
    - a number and a category: both use contingency similarity with 10 equal-width bins, but labkit
      cuts both tables on the *real* range (synthetic values outside it go to the end bins), while
      SDMetrics bins each table on its *own* range with np.digitize (the maximum in a bin of its own).
      When the synthetic range differs (the copula's tails), the bins stop being comparable and the
      scores can differ by 0.3 or more, so no tolerance would be meaningful; instead the test
      re-bins the same CSV tables the SDMetrics way and requires labkit's contingency similarity to
      reproduce SDMetrics' score to 1e-9: the binning is the whole difference.
    """
    import pandas as pd

    from labkit import table_metrics as tm

    spec, ours, theirs, folder = quality_scores
    sdm = theirs[name]["every_pair"]
    assert set(sdm["column_pair_trends"]) == set(ours[name]["column_pair_trends"])
    read = lambda stem: pd.read_csv(folder / f"{stem}.csv", dtype={c: object for c in spec.categorical})  # noqa: E731
    real, synthetic = read("real"), read(name)
    mixed = 0
    for pair, score in ours[name]["column_pair_trends"].items():
        kind = _kind(pair, spec)
        expected_metric = "CorrelationSimilarity" if kind == "numeric" else "ContingencySimilarity"
        assert sdm["column_pair_metrics"][pair] == expected_metric, pair
        if kind != "mixed":
            assert score == pytest.approx(sdm["column_pair_trends"][pair], abs=1e-9), pair
            continue
        mixed += 1
        a, b = pair.split("|")
        cut = lambda frame, c: _sdmetrics_bins(frame[c]) if c in spec.numeric else _with_missing(frame[c])  # noqa: E731
        rebinned = tm.contingency_similarity(cut(real, a), cut(real, b), cut(synthetic, a), cut(synthetic, b))
        assert rebinned == pytest.approx(sdm["column_pair_trends"][pair], abs=1e-9), pair
    assert mixed == len(spec.numeric) * len(spec.categorical)


@pytest.mark.parametrize("name", ["synthetic_copula", "synthetic_marginals"])
def test_default_quality_report_averages_strong_pairs_only(quality_scores, name):
    """SDMetrics' default report (0.2x and later) averages only the pairs whose real correlation
    |r| > 0.5 or real association (Cramer's V) > 0.3; the workbook averages every pair. Over the
    pairs SDMetrics keeps, the workbook's mean must agree within 0.01 (the binning difference above
    on the mixed pairs among them)."""
    spec, ours, theirs, folder = quality_scores
    default = theirs[name]["default"]
    kept = default["pairs_meeting_threshold"]
    assert kept, "no pair passes SDMetrics' thresholds: the comparison would be empty"
    mean_kept = float(np.mean([ours[name]["column_pair_trends"][pair] for pair in kept]))
    assert mean_kept == pytest.approx(default["properties"]["Column Pair Trends"], abs=0.01)


def test_sdmetrics_ran_without_torch_on_pandas_2(quality_scores):
    _, _, theirs, _ = quality_scores
    for result in theirs.values():
        assert result["default"]["version"].startswith("0.32")
        assert int(result["default"]["pandas"].split(".")[0]) == 2
        assert not result["default"]["torch"], "torch is installed in the SDMetrics venv"
