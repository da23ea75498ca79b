"""Supported versions: one floor, stated everywhere it is stated; a warning below it at
session start; no MirroredStrategy with a Keras that trains wrong under it."""

from __future__ import annotations

import re
import tomllib
from types import SimpleNamespace

import pytest

from utils import ROOT, versions


def _floor(requirements: str, package: str) -> tuple[int, ...]:
    match = re.search(rf"^{package}>=([\d.]+)", requirements, re.M)
    assert match, f"requirements.txt has no lower bound for {package}"
    return versions.parse(match.group(1))


def test_requirements_pyproject_readme_and_version_sets_state_the_same_floors():
    requirements = (ROOT / "requirements.txt").read_text()
    assert _floor(requirements, "tensorflow") == versions.TENSORFLOW_FLOOR
    assert _floor(requirements, "keras") == versions.KERAS_FLOOR
    (low, high) = versions.PYTHON_RANGE
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"Python \(?{low[0]}\.{low[1]} or {high[0]}\.{high[1]}\b", readme), "README: name the Python versions"
    floor_text = f"TensorFlow {'.'.join(map(str, versions.TENSORFLOW_FLOOR))} and Keras {'.'.join(map(str, versions.KERAS_FLOOR))}"
    assert floor_text in readme
    # The floor job installs exactly the floor.
    floor_set = (ROOT / ".ci" / "versions" / "floor.txt").read_text()
    assert versions.parse(re.search(r"^tensorflow==([\d.]+)", floor_set, re.M).group(1))[:2] == versions.TENSORFLOW_FLOOR
    assert versions.parse(re.search(r"^keras==([\d.]+)", floor_set, re.M).group(1))[:2] == versions.KERAS_FLOOR


def test_ci_runs_every_version_set_on_its_python():
    sets = {p.stem: re.search(r"^# python: (3\.\d+)$", p.read_text(), re.M).group(1)
            for p in (ROOT / ".ci" / "versions").glob("*.txt")}
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    matrix = dict(re.findall(r"- set: (\w+)\s+python: \"(3\.\d+)\"", workflow))
    assert matrix == sets
    assert sets["colab"] == "3.12" and all(versions.parse(v)[:2] <= versions.PYTHON_RANGE[1] for v in sets.values())


def test_session_start_warns_below_the_keras_floor_and_carries_on(monkeypatch, capsys):
    import keras

    from utils import session

    monkeypatch.setattr(keras, "__version__", "3.7.0")
    run = session.start("unit")
    captured = capsys.readouterr()
    assert run.strategy is not None and captured.out.startswith("TensorFlow ")
    [warning] = captured.err.strip().splitlines()
    assert warning.startswith("warning: Keras 3.7.0 is older than 3.8")
    assert 'pip install -U "keras>=3.8"' in warning and "Restart session" in warning


def test_session_start_is_quiet_on_supported_versions(capsys):
    from utils import session

    session.start("unit", verbose=False)
    assert capsys.readouterr().err == ""


def test_tensorflow_below_floor_is_named_too():
    [line] = versions.too_old("2.15.1", "3.8.0")
    assert line.startswith("warning: TensorFlow 2.15.1 is older than 2.16") and '"tensorflow>=2.16"' in line


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend the machine has two GPUs; record what MirroredStrategy was asked for."""
    import tensorflow as tf

    for var in ("TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("utils.hardware._tpu_requested", lambda: False)
    gpus = [SimpleNamespace(name="/device:GPU:0", device_type="GPU"), SimpleNamespace(name="/device:GPU:1", device_type="GPU")]
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    asked = []
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda devices: asked.append(devices) or "mirrored")
    return asked


def test_two_gpus_with_old_keras_fall_back_to_one_with_a_reason(two_gpus, monkeypatch, capsys):
    import keras
    import tensorflow as tf

    from utils import hardware

    monkeypatch.setattr(keras, "__version__", "3.7.0")
    strategy = hardware.get_strategy()
    assert strategy is tf.distribute.get_strategy() and two_gpus == []
    assert capsys.readouterr().out == (
        "2 GPUs found, but Keras 3.7.0 trains wrong under MirroredStrategy (Keras 3.8 or newer is needed): "
        "training on one GPU.\n"
    )


def test_two_gpus_with_supported_keras_mirror_over_both(two_gpus, monkeypatch):
    import keras

    from utils import hardware

    monkeypatch.setattr(keras, "__version__", "3.8.0")
    assert hardware.get_strategy() == "mirrored"
    assert two_gpus == [["/device:GPU:0", "/device:GPU:1"]]
