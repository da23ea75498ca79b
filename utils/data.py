"""The data sets that ship in ``data/``, verified by checksum before use.

Nothing here downloads anything: the files are part of the repository. A missing,
corrupt, empty or unreadable file (or a folder where the file should be) raises
:class:`DataFileError` with one paragraph that names the file and the fix. Messages name
files relative to the repository (``data/mnist.npz``), never by an absolute path, which
would end up in stored notebook outputs.

Introduced in ``notebooks/01_tensors_gradienttape.ipynb`` (MNIST is first used in
``notebooks/03_cnn_mnist.ipynb``, the ABC tunes in the music notebook).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_mode
from pathlib import Path

import numpy as np

from utils import ROOT

#: Where the shipped data lives.
DATA_DIR: Path = ROOT / "data"

#: sha256 of every shipped data file (also listed in ``data/README.md``).
CHECKSUMS: dict[str, str] = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "irish.abc": "df3782d5f7b5a2f4c66aa7c13f13008d5f48757b3f5f51620cd6c1ceb2c53023",
    # Made by this project (python -m utils.scoring train), not downloaded: see data/README.md.
    "mnist_cnn.weights.h5": "c022f3da2cba27215fd62a855e5021968ffca9e06d4ca7d5f1eb80750fc04ed4",
}

MnistSplit = tuple[np.ndarray, np.ndarray]

_verified: dict[tuple[str, int, int], str] = {}


class DataFileError(RuntimeError):
    """A shipped data file is missing, empty, corrupt or unreadable (or a folder stands in
    its place); the message names the file, relative to the repository, and the fix."""


def _fix(name: str) -> str:
    return (
        f"It ships with the repository: restore it with `git checkout -- data/{name}` "
        f"from the repository root (or clone the repository again; in Colab, re-run the "
        f"notebook's setup cell). No download is needed."
    )


def shown(path: Path) -> str:
    """``path`` as messages show it: relative to the repository (``data/mnist.npz``), or,
    for a copy outside it (``data_dir=``), its folder's name and its own; never an
    absolute path, which would end up in stored notebook outputs.

    >>> shown(DATA_DIR / "mnist.npz")
    'data/mnist.npz'
    >>> shown(Path("/tmp/copy/mnist.npz"))
    'copy/mnist.npz'
    """
    try:
        return Path(os.path.abspath(path)).relative_to(ROOT).as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _unreadable(name: str, path: Path, err: OSError) -> DataFileError:
    """The error for a data file the operating system will not let us read."""
    if isinstance(err, PermissionError):
        return DataFileError(
            f"The data file {shown(path)} cannot be read: permission denied. Make it readable "
            f"with `chmod u+r {shown(path)}` (and its folder with `chmod u+rx {shown(path.parent)}`), "
            f"or restore it: {_fix(name)}"
        )
    reason = err.strerror or type(err).__name__
    return DataFileError(f"The data file {shown(path)} cannot be read ({reason}). {_fix(name)}")


def sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def data_path(name: str, data_dir: Path | None = None) -> Path:
    """Return the path of a shipped data file after checking it exists, is a readable
    regular file and is intact (its sha256); else raise :class:`DataFileError`.

    The checksum is computed once per file version (path, size, mtime) per process.

    >>> data_path("irish.abc").name
    'irish.abc'
    """
    if name not in CHECKSUMS:
        raise KeyError(f"unknown data file {name!r}; shipped files: {sorted(CHECKSUMS)}")
    path = (data_dir or DATA_DIR) / name
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataFileError(f"The data file {shown(path)} is missing. {_fix(name)}") from None
    except OSError as err:  # e.g. a folder on the way that we may not enter
        raise _unreadable(name, path, err) from None
    if stat_mode.S_ISDIR(stat.st_mode):
        raise DataFileError(
            f"{shown(path)} is a folder, but the data file of that name should be there. Move the "
            f"folder away, then: {_fix(name)}"
        )
    if not stat_mode.S_ISREG(stat.st_mode):  # a pipe or a device would hang or never end
        raise DataFileError(f"{shown(path)} is not a regular file. Move it away, then: {_fix(name)}")
    if stat.st_size == 0:
        raise DataFileError(
            f"The data file {shown(path)} is empty (0 bytes: an interrupted copy or checkout?). {_fix(name)}"
        )
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) != CHECKSUMS[name]:
        try:
            got = sha256(path)
        except OSError as err:
            raise _unreadable(name, path, err) from None
        if got != CHECKSUMS[name]:
            raise DataFileError(
                f"The data file {shown(path)} is corrupt: its sha256 is {got[:12]}..., expected "
                f"{CHECKSUMS[name][:12]}... ({stat.st_size} bytes read). {_fix(name)}"
            )
        _verified[key] = got
    return path


def load_mnist(
    normalize: bool = False, data_dir: Path | None = None
) -> tuple[MnistSplit, MnistSplit]:
    """Load MNIST from ``data/mnist.npz`` as ``(x_train, y_train), (x_test, y_test)``.

    The arrays are those of ``keras.datasets.mnist.load_data()``: images ``uint8`` of
    shape ``(n, 28, 28)``, labels ``uint8`` 0-9. With ``normalize=True`` the images are
    ``float32`` in ``[0, 1]``.

    >>> (x_train, y_train), (x_test, y_test) = load_mnist()
    >>> x_train.shape, y_test.shape, x_train.dtype
    ((60000, 28, 28), (10000,), dtype('uint8'))
    """
    path = data_path("mnist.npz", data_dir)
    try:
        with np.load(path, allow_pickle=False) as npz:
            x_train, y_train = npz["x_train"], npz["y_train"]
            x_test, y_test = npz["x_test"], npz["y_test"]
    except OSError as err:  # made unreadable since its checksum was verified in this process
        raise _unreadable("mnist.npz", path, err) from None
    except (ValueError, KeyError) as err:  # pragma: no cover - the checksum catches these
        raise DataFileError(
            f"The data file {shown(path)} could not be read ({type(err).__name__}). {_fix('mnist.npz')}"
        ) from None
    if normalize:
        x_train = x_train.astype("float32") / 255.0
        x_test = x_test.astype("float32") / 255.0
    return (x_train, y_train), (x_test, y_test)


def load_abc_text(data_dir: Path | None = None) -> str:
    """The whole ABC corpus ``data/irish.abc`` as one string (``\\n`` line ends)."""
    path = data_path("irish.abc", data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:  # made unreadable since its checksum was verified in this process
        raise _unreadable("irish.abc", path, err) from None
    return text.replace("\r\n", "\n")


_TUNE_START = re.compile(r"^X:", re.MULTILINE)


def split_tunes(text: str) -> list[str]:
    """Split ABC text into tunes at each line that starts with ``X:``.

    Tunes are split on their ``X:`` headers, not on blank lines: two tunes in the corpus
    hold a blank line inside them. Text before the first header is dropped.

    >>> split_tunes("X:1\\nK:D\\nabc|\\n\\nX:2\\nK:G\\n\\ndef|\\n")
    ['X:1\\nK:D\\nabc|', 'X:2\\nK:G\\n\\ndef|']
    """
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    bounds = zip(starts, starts[1:] + [len(text)])
    return [text[a:b].strip() for a, b in bounds]


def load_abc_songs(data_dir: Path | None = None) -> list[str]:
    """The 804 tunes of ``data/irish.abc``, one string per tune."""
    return split_tunes(load_abc_text(data_dir))
