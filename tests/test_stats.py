"""The Wilson interval of utils.stats: its defining equation, its coverage, its edges."""

from __future__ import annotations

import numpy as np
import pytest

from utils import stats

Z95 = 1.959963984540054


@pytest.mark.parametrize("k, n", [(202, 240), (228, 240), (1, 50), (30, 31), (864, 960)])
def test_ends_solve_the_wilson_equation(k, n):
    # The Wilson interval is the set of p with |k/n - p| <= z sqrt(p (1 - p) / n): its ends solve the equality.
    low, high = stats.wilson_interval(k, n)
    for p in (low, high):
        assert (k / n - p) ** 2 == pytest.approx(Z95**2 * p * (1 - p) / n, rel=1e-9)
    assert low < k / n < high


def test_edges_symmetry_and_width():
    assert stats.wilson_interval(0, 20)[0] == 0.0 and stats.wilson_interval(20, 20)[1] == 1.0
    low, high = stats.wilson_interval(37, 90)
    mirror = stats.wilson_interval(90 - 37, 90)
    assert (1 - high, 1 - low) == pytest.approx(mirror)
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    assert width(stats.wilson_interval(204, 240)) > width(stats.wilson_interval(816, 960))
    assert width(stats.wilson_interval(204, 240, 0.99)) > width(stats.wilson_interval(204, 240))
    # about +-4.5 points at 85 % of 240, about +-2.3 at 85 % of 960
    assert width(stats.wilson_interval(204, 240)) == pytest.approx(0.090, abs=0.003)
    assert width(stats.wilson_interval(816, 960)) == pytest.approx(0.045, abs=0.002)


def test_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for p, n in [(0.85, 240), (0.95, 240), (0.5, 40)]:
        counts = rng.binomial(n, p, size=4000)
        covered = np.mean([low <= p <= high for low, high in (stats.wilson_interval(int(k), n) for k in counts)])
        assert 0.93 <= covered <= 0.975, (p, n, covered)


@pytest.mark.parametrize(
    "args, message",
    [
        ((5, 4), "from 0 to trials"),
        ((-1, 4), "from 0 to trials"),
        ((1, 0), "trials must be at least 1"),
        ((2.5, 4), "successes must be a whole number"),
        ((True, 4), "successes must be a whole number"),
        ((1, 4, 95), "confidence must be between 0 and 1"),
    ],
)
def test_bad_input_names_the_problem(args, message):
    with pytest.raises(ValueError, match=message):
        stats.wilson_interval(*args)
