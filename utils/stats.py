"""Uncertainty of a measured rate: how far a share counted on ``n`` samples may be from
the share the model would give on infinitely many.

A rate such as "202 of 240 generated tunes are valid" is a binomial count; its 95 %
interval says which true rates are consistent with it. The Wilson score interval is
used (not the textbook ``p ± 1.96 sqrt(p(1-p)/n)``, which collapses to a width of zero
at 0 or n successes and covers less than it claims near them).

Used by ``notebooks/04_music_lstm.ipynb`` and ``notebooks/08_transformers.ipynb`` (valid-tune rates).

>>> low, high = wilson_interval(202, 240)
>>> f"{202 / 240:.1%} in [{low:.1%}, {high:.1%}]"
'84.2% in [79.0%, 88.2%]'
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` for a share of ``successes`` in
    ``trials`` independent trials, at the given two-sided ``confidence``.

    Both ends lie in [0, 1] and the interval always holds ``successes / trials``;
    it narrows as ``1 / sqrt(trials)``.

    >>> [round(x, 4) for x in wilson_interval(0, 10)]   # no success: still an upper end
    [0.0, 0.2775]
    >>> [round(x, 3) for x in wilson_interval(864, 960)]
    [0.879, 0.917]
    >>> wilson_interval(5, 4)
    Traceback (most recent call last):
    ...
    ValueError: successes must be a whole number from 0 to trials (4), got 5
    """
    for name, value in (("successes", successes), ("trials", trials)):
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    successes, trials = int(successes), int(trials)
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be a whole number from 0 to trials ({trials}), got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    # at 0 or ``trials`` successes one end is exactly 0 or 1; rounding would leave 1e-17 there
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high
