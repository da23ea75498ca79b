"""The notebook session: set-up line, tracking, floors, reported figures and run time."""

from __future__ import annotations

import pytest

from utils import mode


def test_session_start_reports_mode_and_run_time(monkeypatch, capsys):
    import keras
    import tensorflow as tf

    from utils import session

    monkeypatch.setenv(mode.FAST_ENV, "1")
    run = session.start("unit")
    out = capsys.readouterr().out
    assert out.startswith(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; fast mode") and run.fast
    run.finish()
    assert capsys.readouterr().out.startswith("[metric] unit/run_time_s = ")


def test_session_seed_follows_labs_seed(monkeypatch, capsys):
    from utils import session

    monkeypatch.setenv("LABS_SEED", "43")
    run = session.start("unit")
    assert run.seed == 43 and "seed 43" in capsys.readouterr().out


def test_closing_calls_report_expect_and_finish(monkeypatch, capsys):
    from utils import session

    monkeypatch.setenv("LABS_TRACKING", "disabled")
    monkeypatch.setenv("LABS_FAST", "0")
    run = session.start("nb99", verbose=False)
    logged = []

    class Experiment:
        def log_metric(self, name, value):
            logged.append((name, value))

        def end(self):
            logged.append("ended")

    run.experiment = Experiment()
    run.report("accuracy", 0.5)
    assert capsys.readouterr().out == "[metric] nb99/accuracy = 0.5\n"
    run.expect(0.5 >= 0.4, "accuracy 0.5 >= 0.4")
    with pytest.raises(session.RunBelowFloor, match=r"nb99 \(full mode\): expected accuracy 0.3 >= 0.4"):
        run.expect(0.3 >= 0.4, "accuracy 0.3 >= 0.4")
    run.finish()
    assert logged[0] == ("nb99/accuracy", 0.5) and logged[1][0] == "nb99/run_time_s" and logged[-1] == "ended"


def test_track_starts_a_disabled_experiment_on_request(monkeypatch):
    from utils import session

    monkeypatch.setenv("LABS_TRACKING", "disabled")
    run = session.start("nb99", verbose=False)
    experiment = run.track("keras-labs-test", {"a": 1})
    assert run.experiment is experiment
    experiment.log_metric("x", 1.0)  # a no-op in disabled mode, but the same API
