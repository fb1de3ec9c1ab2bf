"""Offline loaders: shapes, ranges, cards, and clear errors for missing or corrupt data."""
import numpy as np
import pytest

from labkit import data


def test_digits_are_real_mnist_scaled_and_balanced():
    digits = data.load_digits()
    assert digits.x.shape == (5000, 28, 28) and digits.x.dtype == np.float32
    assert 0.0 <= digits.x.min() and digits.x.max() <= 1.0
    assert np.bincount(digits.y).tolist() == [500] * 10
    assert "CC BY-SA" in digits.card.licence and "5,000" in digits.card.size
    # a real digit has ink in the middle and a blank border, on average
    mean = digits.x.mean(axis=0)
    assert mean[10:18, 10:18].mean() > 5 * mean[:3].mean()


def test_full_mnist_is_never_fetched_silently(tmp_path):
    with pytest.raises(data.DataError, match="allow_download=True"):
        data.load_digits(source="mnist", path=tmp_path / "absent.npz")


def test_corrupt_mnist_file_gives_a_fix(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(data.DataError, match="delete it"):
        data.load_digits(source="mnist", path=bad)


def test_full_mnist_from_disk(tmp_path):
    path = tmp_path / "mnist.npz"
    x = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    np.savez(path, x_train=x[:4], y_train=np.arange(4), x_test=x[4:], y_test=np.arange(2))
    digits = data.load_digits(source="mnist", path=path)
    assert len(digits) == 6 and digits.x.max() <= 1.0


def test_unknown_source_is_a_parameter_error():
    with pytest.raises(ValueError, match="'source' = 'emnist'"):
        data.load_digits(source="emnist")


def test_corrupt_digit_arrays_are_rejected():
    with pytest.raises(data.DataError, match="reinstall"):
        data._check_digits(np.zeros((3, 28, 28)), np.array([0, 1, 12]))
    with pytest.raises(data.DataError, match="shape"):
        data._check_digits(np.zeros((3, 784)), np.zeros(3))


def test_faces():
    faces = data.load_faces()
    assert faces.x.shape == (200, 25, 25) and faces.y.sum() == 100


@pytest.mark.parametrize("name", data.MARKETS)
def test_markets(name):
    market = data.load_market(name)
    assert len(market) > 1000 and market.frame.index.is_monotonic_increasing


def test_sp500_is_the_documented_series():
    frame = data.load_market("sp500").frame
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert len(frame) == 5031 and str(frame.index[0].date()) == "1999-01-04"


def test_google_is_timegans_stocks_series():
    frame = data.load_market("google").frame
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert len(frame) == 3685 and frame.index.name == "trading_day"
    assert 49 < frame["Open"].iloc[0] < 51 and frame["Volume"].iloc[0] == 44_994_500   # the listing day
    assert (frame["High"] >= frame[["Open", "Close"]].max(axis=1) - 1e-6).all()


def test_missing_or_corrupt_google_file_gives_a_fix(tmp_path):
    with pytest.raises(data.DataError, match="git checkout data/google_stock"):
        data.load_market("google", path=tmp_path / "none.csv")
    short = tmp_path / "short.csv"
    short.write_text(data.GOOGLE_STOCK.read_text()[:5000])
    with pytest.raises(data.DataError, match="3,685 rows"):
        data.load_market("google", path=short)
    broken = tmp_path / "broken.csv"
    broken.write_text(data.GOOGLE_STOCK.read_text().replace("Volume", "Vol", 1))
    with pytest.raises(data.DataError, match="columns"):
        data.load_market("google", path=broken)


def test_loans_table_is_mixed_with_missing_values():
    loans = data.load_loans().frame
    assert loans.shape == (10000, 55)
    assert loans.isna().any().sum() >= 5
    assert (loans.dtypes == object).sum() >= 10


def test_default_table():
    frame = data.load_default().frame
    assert frame.shape == (10000, 4)
    assert (frame["default"] == "Yes").mean() == pytest.approx(0.0333)


def test_card_renders():
    text = str(data.load_faces().card)
    assert "source" in text and "licence" in text
