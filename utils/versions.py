"""The Python, TensorFlow and Keras versions the course supports, and what to say about others.

The floors are measured, not guessed: the notebooks and the unit tests pass with
TensorFlow 2.16 + Keras 3.8 (the floor) and with TensorFlow 2.19 + Keras 3.10 on
Python 3.12 (what Colab ships), as they do with the newest versions in
``requirements.txt``. Below Keras 3.8, training under ``MirroredStrategy`` goes wrong
(3.3–3.6: the weights differ from one device's; 3.7: building ``Dropout`` under the
strategy fails), so :mod:`utils.hardware` does not choose that strategy there.
``requirements.txt`` and ``pyproject.toml`` state the same floors (a test keeps them in
agreement); ``make test-versions`` re-runs the notebooks on the floor and on Colab's set.

>>> parse("2.19.0"), parse("3.8.0.dev2025010103"), parse("2.16.0rc0")
((2, 19, 0), (3, 8, 0), (2, 16, 0))
>>> below_floor("3.10.0", KERAS_FLOOR), below_floor("3.7.0", KERAS_FLOOR)
(False, True)
>>> too_old("2.19.0", "3.10.0")
[]
>>> print(too_old("2.19.0", "3.7.0")[0])  # doctest: +ELLIPSIS
warning: Keras 3.7.0 is older than 3.8, the oldest this course is tested with;...
"""

from __future__ import annotations

import re

#: The Python versions the course is tested on (oldest, newest).
PYTHON_RANGE: tuple[tuple[int, int], tuple[int, int]] = ((3, 11), (3, 12))
#: The oldest TensorFlow the course runs on (notebooks and tests measured on 2.16).
TENSORFLOW_FLOOR: tuple[int, int] = (2, 16)
#: The oldest Keras the course runs on; below it MirroredStrategy training goes wrong.
KERAS_FLOOR: tuple[int, int] = (3, 8)

_UPGRADE = {
    "TensorFlow": 'pip install -U "tensorflow>={floor}"',
    "Keras": 'pip install -U "keras>={floor}"',
}


def parse(version: str) -> tuple[int, ...]:
    """The leading numeric parts of a version string (pre-release suffixes dropped)."""
    parts = []
    for piece in version.split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    return tuple(parts)


def below_floor(version: str, floor: tuple[int, ...]) -> bool:
    """Whether ``version`` is older than ``floor`` (compared on ``floor``'s length)."""
    return parse(version)[: len(floor)] < floor


def _floor_text(floor: tuple[int, ...]) -> str:
    return ".".join(map(str, floor))


def too_old(tensorflow_version: str, keras_version: str) -> list[str]:
    """One warning line for each library older than the course's floor (empty if none).

    Each line names the installed version, the floor and the fix (upgrade, then restart
    the kernel -- in Colab: *Runtime → Restart session*).
    """
    lines = []
    for name, version, floor in (
        ("TensorFlow", tensorflow_version, TENSORFLOW_FLOOR),
        ("Keras", keras_version, KERAS_FLOOR),
    ):
        if below_floor(version, floor):
            fix = _UPGRADE[name].format(floor=_floor_text(floor))
            lines.append(
                f"warning: {name} {version} is older than {_floor_text(floor)}, the oldest this course is "
                f"tested with; some cells may fail or train wrong. Run `{fix}` in a cell, then restart the "
                f"kernel (in Colab: Runtime → Restart session) and run the notebook again."
            )
    return lines


def mirrored_strategy_problem(keras_version: str) -> str | None:
    """Why ``MirroredStrategy`` must not be used with this Keras, or ``None`` if it may.

    >>> mirrored_strategy_problem("3.10.0") is None
    True
    >>> mirrored_strategy_problem("3.6.0")
    'Keras 3.6.0 trains wrong under MirroredStrategy (Keras 3.8 or newer is needed)'
    """
    if below_floor(keras_version, KERAS_FLOOR):
        return f"Keras {keras_version} trains wrong under MirroredStrategy (Keras {_floor_text(KERAS_FLOOR)} or newer is needed)"
    return None
