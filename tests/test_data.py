"""The shipped data loads, matches its published facts, and fails helpfully when broken."""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from utils import data
from utils.data import DataFileError


def test_mnist_matches_published_facts():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    scaled = x_train / 255.0
    assert scaled.mean() == pytest.approx(0.1307, abs=1e-4)
    assert scaled.std() == pytest.approx(0.3081, abs=1e-4)


def test_mnist_normalize():
    (x_train, _), (x_test, _) = data.load_mnist(normalize=True)
    assert x_train.dtype == np.float32 and 0.0 <= x_test.min() and x_test.max() == 1.0


def test_abc_corpus_splits_on_x_headers():
    songs = data.load_abc_songs()
    assert len(songs) == 804
    assert all(song.startswith("X:") for song in songs)
    # Two tunes hold a blank line inside: splitting on blank lines would give more blocks.
    assert sum("\n\n" in song for song in songs) == 2
    assert len(set(data.load_abc_text())) == 83


def test_split_tunes_keeps_inner_blank_lines_and_drops_preamble():
    text = "% a comment\nX:1\nT:a\nK:D\nabc|\n\ndef|\nX:2\nK:G\nGAB|\n"
    assert data.split_tunes(text) == ["X:1\nT:a\nK:D\nabc|\n\ndef|", "X:2\nK:G\nGAB|"]
    assert data.split_tunes("no tunes here") == []


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A copy of ``data/`` in a stand-in repository, so messages name files as learners see them."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in data.CHECKSUMS:
        shutil.copy(data.DATA_DIR / name, folder / name)
    monkeypatch.setattr(data, "ROOT", tmp_path)
    monkeypatch.setattr(data, "DATA_DIR", folder)
    return folder


def _helpful(info: pytest.ExceptionInfo, name: str, tmp_path: Path) -> str:
    """The message names the file relative to the repository and the fix, in one
    paragraph, with no absolute path (it would end up in stored notebook outputs)."""
    message = str(info.value)
    assert f"data/{name}" in message and f"git checkout -- data/{name}" in message, message
    assert "\n" not in message, message
    assert str(tmp_path) not in message and str(data.ROOT) not in message and str(Path.home()) not in message, message
    assert not re.search(r"(^|[\s(`'])/", message), message  # nothing that looks like an absolute path
    return message


def test_missing_file_names_file_and_fix(data_copy, tmp_path):
    (data_copy / "mnist.npz").unlink()
    with pytest.raises(DataFileError) as info:
        data.load_mnist(data_dir=data_copy)
    assert "data/mnist.npz is missing" in _helpful(info, "mnist.npz", tmp_path)


def test_missing_data_folder_names_file_and_fix(data_copy, tmp_path):
    shutil.rmtree(data_copy)
    with pytest.raises(DataFileError) as info:
        data.load_abc_songs()  # the default folder, monkeypatched
    assert "data/irish.abc is missing" in _helpful(info, "irish.abc", tmp_path)


def test_corrupt_file_names_file_and_fix(data_copy, tmp_path):
    path = data_copy / "mnist.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"data/mnist\.npz is corrupt.*git checkout -- data/mnist\.npz") as info:
        data.load_mnist(data_dir=data_copy)
    _helpful(info, "mnist.npz", tmp_path)


def test_truncated_abc_is_corrupt(data_copy, tmp_path):
    path = data_copy / "irish.abc"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFileError, match="data/irish.abc is corrupt") as info:
        data.load_abc_songs(data_dir=data_copy)
    _helpful(info, "irish.abc", tmp_path)


def test_empty_file_says_it_is_empty(data_copy, tmp_path):
    (data_copy / "irish.abc").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"data/irish\.abc is empty \(0 bytes") as info:
        data.load_abc_text(data_dir=data_copy)
    _helpful(info, "irish.abc", tmp_path)


def test_folder_where_the_file_should_be(data_copy, tmp_path):
    (data_copy / "mnist.npz").unlink()
    (data_copy / "mnist.npz").mkdir()
    with pytest.raises(DataFileError, match=r"data/mnist\.npz is a folder") as info:
        data.load_mnist(data_dir=data_copy)
    _helpful(info, "mnist.npz", tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipe_is_refused_without_reading_it(data_copy, tmp_path):
    (data_copy / "irish.abc").unlink()
    os.mkfifo(data_copy / "irish.abc")  # opening it to read would wait forever for a writer
    with pytest.raises(DataFileError, match="not a regular file") as info:
        data.load_abc_text(data_dir=data_copy)
    _helpful(info, "irish.abc", tmp_path)


def _deny(monkeypatch: pytest.MonkeyPatch, path: Path, error: OSError) -> None:
    """Make every open of ``path`` fail with ``error``; for root (whom ``chmod 000`` does not
    stop) and for errors no mode bit can cause. ``open`` is ``io.open``, which pathlib calls."""
    real_open = io.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and Path(file) == path:
            raise error
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)


def _make_unreadable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """``chmod 000``, as in the issue; where that does not stop reading (tests run as root),
    the ``PermissionError`` the operating system would give is simulated."""
    path.chmod(0)
    if os.access(path, os.R_OK):
        _deny(monkeypatch, path, PermissionError(errno.EACCES, "Permission denied", str(path)))


@pytest.mark.parametrize("verified_first", [False, True], ids=["before-checksum", "after-checksum"])
@pytest.mark.parametrize("name, load", [("mnist.npz", data.load_mnist), ("irish.abc", data.load_abc_text)])
def test_unreadable_file_names_file_and_fix(data_copy, tmp_path, monkeypatch, name, load, verified_first):
    """Unreadable before its checksum is taken, or made unreadable after this process verified
    it (the loader's own read fails then): the same error, never a bare PermissionError."""
    if verified_first:
        load(data_dir=data_copy)
    path = data_copy / name
    try:
        _make_unreadable(monkeypatch, path)
        with pytest.raises(DataFileError) as info:
            load(data_dir=data_copy)
    finally:
        path.chmod(0o644)
    message = _helpful(info, name, tmp_path)
    assert f"data/{name} cannot be read: permission denied" in message and f"chmod u+r data/{name}" in message


def test_unreadable_folder_names_file_and_fix(data_copy, tmp_path, monkeypatch):
    real_stat = Path.stat

    def denied_stat(self, *args, **kwargs):
        if self.parent == data_copy:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", denied_stat)  # what `chmod 000 data` gives a user who is not root
    with pytest.raises(DataFileError) as info:
        data.load_abc_songs(data_dir=data_copy)
    assert "chmod u+rx data`" in _helpful(info, "irish.abc", tmp_path)


def test_read_error_says_the_reason(data_copy, tmp_path, monkeypatch):
    _deny(monkeypatch, data_copy / "mnist.npz", OSError(errno.EIO, "Input/output error", str(data_copy / "mnist.npz")))
    with pytest.raises(DataFileError, match=r"data/mnist\.npz cannot be read \(Input/output error\)") as info:
        data.load_mnist(data_dir=data_copy)
    _helpful(info, "mnist.npz", tmp_path)


def test_copy_outside_the_repository_is_named_without_its_absolute_path(tmp_path):
    copy = tmp_path / "my-copy"
    copy.mkdir()
    with pytest.raises(DataFileError) as info:
        data.load_mnist(data_dir=copy)
    message = str(info.value)
    assert "my-copy/mnist.npz is missing" in message and "git checkout -- data/mnist.npz" in message
    assert str(tmp_path) not in message


def test_unknown_file():
    with pytest.raises(KeyError, match="unknown data file"):
        data.data_path("cifar10.npz")


def test_data_readme_lists_the_checksums():
    readme = (data.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name, digest in data.CHECKSUMS.items():
        assert name in readme and digest in readme
