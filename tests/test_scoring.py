"""The sample-quality measures separate real digits from collapsed, noisy or blurred
ones, and the shipped classifier is the one its checksum and accuracy say it is."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from utils import data, scoring


@pytest.fixture(scope="module")
def test_set():
    (_, _), (x_test, y_test) = data.load_mnist(normalize=True)
    return x_test, y_test


@pytest.fixture(scope="module")
def scorer(test_set):
    x_test, _ = test_set
    return scoring.Scorer(reference=x_test[:3000])


def test_shipped_classifier_is_accurate(scorer, test_set):
    x_test, y_test = test_set
    probs = scoring.probabilities(scorer.classifier, x_test[5000:8000])
    assert float(np.mean(probs.argmax(1) == y_test[5000:8000])) >= 0.99


def test_real_digits_score_near_ten(scorer, test_set):
    real = scorer(test_set[0][5000:8000])
    assert real.score > 9.5 and real.confident > 0.95 and real.min_share > 0.07
    assert real.frechet < 10


def test_one_digit_only_scores_near_one(scorer, test_set):
    x_test, y_test = test_set
    collapsed = scorer(x_test[y_test == 3][:800])
    real = scorer(x_test[5000:5800])
    assert collapsed.score < 1.5 and collapsed.min_share == 0.0
    assert collapsed.frechet > 10 * real.frechet


def test_noise_and_blur_are_far_from_real(scorer, test_set):
    rng = np.random.default_rng(0)
    real = scorer(test_set[0][5000:7000])
    noise = scorer(rng.random((2000, 28, 28)).astype("float32"))
    blurred_input = test_set[0][5000:7000]
    blurred = (blurred_input + np.roll(blurred_input, 2, 1) + np.roll(blurred_input, 2, 2) + np.roll(blurred_input, -2, 1)) / 4
    blurred_scores = scorer(blurred)
    assert noise.score < 3 and noise.frechet > 20 * real.frechet
    assert real.frechet < blurred_scores.frechet < noise.frechet


def test_classifier_score_properties():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(10) * 0.1, size=500)
    assert scoring.classifier_score(p) == pytest.approx(scoring.classifier_score(p[:, ::-1]))
    assert scoring.classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    assert 1 < scoring.classifier_score(p) < 10


def test_frechet_is_symmetric_and_grows_with_scale():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4))
    assert scoring.frechet_distance(a, b) == pytest.approx(scoring.frechet_distance(b, a), rel=1e-6)
    # N(0, 1) vs N(0, 4) in 4 dims: 4 * (1 + 4 - 2 * 2) = 4
    assert scoring.frechet_distance(a, 2 * b) == pytest.approx(4.0, rel=0.1)


def test_images_out_of_range_are_refused(scorer):
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        scoring.probabilities(scorer.classifier, -np.ones((4, 28, 28)))
    with pytest.raises(ValueError, match="shape"):
        scoring.probabilities(scorer.classifier, np.zeros((4, 32, 32, 3)))


def test_missing_weights_say_how_to_rebuild(tmp_path):
    with pytest.raises(scoring.ClassifierError, match=r"python -m utils\.scoring train"):
        scoring.load_classifier(data_dir=tmp_path)


def test_corrupt_weights_are_refused(tmp_path):
    shutil.copy(data.DATA_DIR / scoring.WEIGHTS, tmp_path / scoring.WEIGHTS)
    raw = bytearray((tmp_path / scoring.WEIGHTS).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / scoring.WEIGHTS).write_bytes(bytes(raw))
    with pytest.raises(scoring.ClassifierError, match="is corrupt"):
        scoring.load_classifier(data_dir=tmp_path)


def test_random_halves_of_the_test_set_give_the_floor(scorer, test_set):
    """The first and last 5,000 test digits come from different writers; a random split
    does not, so its Fréchet distance (the floor) is several times smaller."""
    x_test, _ = test_set
    reference, other = scoring.split_test_set(x_test, size=3000, seed=0)
    assert len({*map(bytes, reference[:50])} & {*map(bytes, other)}) == 0  # disjoint
    random_floor = scoring.Scorer(reference, classifier=scorer.classifier)(other).frechet
    first_vs_last = scoring.Scorer(x_test[:3000], classifier=scorer.classifier)(x_test[-3000:]).frechet
    assert random_floor < first_vs_last / 3, (random_floor, first_vs_last)
    with pytest.raises(ValueError, match="disjoint"):
        scoring.split_test_set(x_test[:100], size=60)
