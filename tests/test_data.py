"""The shipped data loads, matches its published facts, and fails helpfully when broken."""

from __future__ import annotations

import shutil

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
def data_copy(tmp_path):
    for name in data.CHECKSUMS:
        shutil.copy(data.DATA_DIR / name, tmp_path / name)
    return tmp_path


def test_missing_file_names_file_and_fix(data_copy):
    (data_copy / "mnist.npz").unlink()
    with pytest.raises(DataFileError) as info:
        data.load_mnist(data_dir=data_copy)
    message = str(info.value)
    assert "data/mnist.npz is missing" in message
    assert "git checkout -- data/mnist.npz" in message
    assert "\n" not in message  # one paragraph


def test_corrupt_file_names_file_and_fix(data_copy):
    path = data_copy / "mnist.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"data/mnist\.npz is corrupt.*git checkout -- data/mnist\.npz"):
        data.load_mnist(data_dir=data_copy)


def test_truncated_abc_is_corrupt(data_copy):
    path = data_copy / "irish.abc"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFileError, match="irish.abc is corrupt"):
        data.load_abc_songs(data_dir=data_copy)


def test_unknown_file():
    with pytest.raises(KeyError, match="unknown data file"):
        data.data_path("cifar10.npz")


def test_data_readme_lists_the_checksums():
    readme = (data.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name, digest in data.CHECKSUMS.items():
        assert name in readme and digest in readme
