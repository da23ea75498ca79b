"""What every lab check is built from: a failure type, a success line, and helpers
that check type, then shape, then value, each with its own message.

Checks raise :class:`CheckError` (an ``AssertionError`` subclass, raised explicitly so
``python -O`` cannot remove it). In Jupyter/IPython a ``CheckError`` shows its message
alone -- no traceback into library internals -- and the cell still fails, so "Run all"
stops at the first failing check.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np


class CheckError(AssertionError):
    """A lab check failed; the message says what is wrong and what to try."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback (the message is the whole story),
        as plain text: no terminal colour codes, which not every front end renders."""
        return [strip_ansi(f"{type(self).__name__}: {self}")]


class TodoNotDone(CheckError):
    """The TODO that this check needs has not been filled in yet."""


def ok(message: str) -> None:
    """The one short success line of a check."""
    print(f"[ok] {message}")


def fail(message: str) -> NoReturn:
    """Raise a :class:`CheckError` with ``message``."""
    raise CheckError(message)


_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$|\s*name:\s*$")
# Graph-mode errors quote the failing node: " for '{{node X}} = Op[dtype=...](inputs)' with input shapes: [], []."
_GRAPH_NODE = re.compile(r"\s*for '\{\{node [^}]*\}\}[^']*'(?: with input shapes: [^.]*)?|\s*\{\{node [^}]*\}\}")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (Keras puts them in its error messages).

    >>> strip_ansi("\\x1b[1mYou cannot add new elements of state\\x1b[0m")
    'You cannot add new elements of state'
    """
    return _ANSI.sub("", text)


_VARIABLE_VALUE = re.compile(r"(<Variable path=[^,>]+)[^>]*>?", re.DOTALL)


def short_error(err: BaseException) -> str:
    """``TypeName: first line`` of an exception, without TensorFlow's node names (nor a
    variable's values, which Keras prints in full in "Unknown variable")."""
    text = _VARIABLE_VALUE.sub(r"\1>", str(err))
    lines = [_GRAPH_NODE.sub("", _NOISE.sub("", strip_ansi(line))).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Exception encountered when calling", "Arguments received by"))]
    if lines and lines[0].startswith("in user code:"):
        # A tf.function error: the frames come first, the actual error last.
        last = lines[-1]
        return last if re.match(r"^\w+(Error|Exception):", last) else f"{type(err).__name__}: {last}"
    if lines and lines[0].startswith("Graph execution error"):
        # A Keras/tf.function error raised at run time: the frames come first, the actual error last.
        said = [line for line in lines[1:] if not line.startswith(("Detected at node", "File ", "[["))]
        if said:
            return f"{type(err).__name__}: {said[-1]}"
    text = lines[0] if lines else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _todo_message(err: NotImplementedError) -> str:
    todo = str(err).strip() or "a TODO"
    return (
        f"{todo} is not filled in yet. Replace `raise NotImplementedError(...)` in the cell "
        f"above with your code, run that cell, then run this check again."
    )


def _unfilled_todo(err: NotImplementedError) -> str | None:
    """The TODO that ``err`` stands for -- the lab's ``NotImplementedError("TODO n")``
    (also when Keras or ``tf.function`` re-raised it inside their own message) or a bare
    ``NotImplementedError()`` -- or None when a library raised it (TensorFlow's "Cannot
    convert a symbolic tf.Tensor to a numpy array", "numpy() is only available when eager
    execution is enabled").

    >>> _unfilled_todo(NotImplementedError("TODO 3")), _unfilled_todo(NotImplementedError("numpy() is only ..."))
    ('TODO 3', None)
    >>> _unfilled_todo(NotImplementedError("Exception encountered when calling M.call().\\n\\nTODO 4\\n\\nArguments received by M.call():"))
    'TODO 4'
    """
    lines = [strip_ansi(line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        match = re.match(r"(?:NotImplementedError:\s*)?(TODO\b\s*\d*)", line)
        if match:
            return match.group(1).strip()
    if lines and lines[0].startswith("in user code:"):
        lines = lines[-1:]  # the frames come first, the error itself last
    wrapper = ("Exception encountered when calling", "Arguments received by", "•")
    message = [re.sub(r"^NotImplementedError:?\s*", "", line) for line in lines if not line.startswith(wrapper)]
    return "a TODO" if not any(message) else None


def call(fn: Callable[..., Any], *args: Any, what: str, hint: str | Callable[[str], str] = "", **kwargs: Any) -> Any:
    """Call the learner's ``fn``; turn any failure into a message about their code.

    An unfilled TODO (the lab's ``raise NotImplementedError("TODO n")``, or a bare
    ``NotImplementedError()``) becomes :class:`TodoNotDone`; any other exception --
    including TensorFlow's own ``NotImplementedError`` such as "Cannot convert a symbolic
    tf.Tensor to a numpy array" -- becomes a :class:`CheckError` naming ``what`` was
    called, the error's first line and ``hint``: never a traceback into TensorFlow
    internals. ``hint`` may be a function of that error line, for a hint that fits the error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's build() hints are noise here
            return fn(*args, **kwargs)
    except NotImplementedError as err:
        todo = _unfilled_todo(err)
        if todo is not None:
            raise TodoNotDone(_todo_message(NotImplementedError(todo))) from None
        raise CheckError(_raised(what, err, hint)) from None
    except CheckError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of learner code is reported
        raise CheckError(_raised(what, err, hint)) from None


def _raised(what: str, err: BaseException, hint: str | Callable[[str], str]) -> str:
    said = short_error(err)
    message = f"{what} raised {said}"
    text = hint(said) if callable(hint) else hint
    return f"{message.rstrip('.')}. {text}".strip() if text else message


def filled(value: Any, name: str) -> Any:
    """Fail with :class:`TodoNotDone` while ``value`` is still the ``...`` stub."""
    if value is Ellipsis:
        raise TodoNotDone(
            f"`{name}` is still `...`: replace the `...` in the TODO above with your code, "
            f"run that cell, then run this check again."
        )
    return value


def kind(value: Any) -> str:
    """A short, learner-facing name for the type of ``value``."""
    module = type(value).__module__.split(".")[0]
    return f"{module}.{type(value).__name__}" if module not in ("builtins",) else type(value).__name__


def to_array(value: Any, name: str, what: str = "a tensor") -> np.ndarray:
    """Type check: a TensorFlow tensor/variable, NumPy array or Python number -> array."""
    filled(value, name)
    if value is None:
        fail(f"`{name}` is None, expected {what}. Did you forget a `return`?")
    if isinstance(value, (list, tuple, dict, str)):
        fail(f"`{name}` is a Python {type(value).__name__}, expected {what}.")
    try:
        array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    except Exception as err:  # noqa: BLE001
        fail(f"`{name}` ({kind(value)}) could not be read as numbers: {short_error(err)}")
    if array.dtype == object:
        fail(f"`{name}` ({kind(value)}) is not numeric, expected {what}.")
    return array


def expect_shape(array: np.ndarray, expected: Sequence[int], name: str, hint: str = "") -> None:
    """Shape check with expected vs got."""
    got, want = tuple(int(s) for s in np.shape(array)), tuple(int(s) for s in expected)
    if got != want:
        fail(f"`{name}` has shape {got}, expected {want}. {hint}".strip())


def expect_close(
    got: Any,
    expected: Any,
    name: str,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    hint: str = "",
) -> None:
    """Value check: shapes first, then the largest difference and where it is."""
    got_a = np.asarray(got, dtype=np.float64)
    exp_a = np.asarray(expected, dtype=np.float64)
    expect_shape(got_a, exp_a.shape, name)
    if not np.all(np.isfinite(got_a)):
        fail(f"`{name}` contains NaN or inf. {hint}".strip())
    if not np.allclose(got_a, exp_a, rtol=rtol, atol=atol):
        diff = np.abs(got_a - exp_a)
        where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
        at = f" at index {tuple(int(i) for i in where)}" if where else ""
        fail(
            f"`{name}` is wrong: expected {exp_a[where]:.6g}, got {got_a[where]:.6g}{at} "
            f"(largest difference {diff.max():.3g}). {hint}".strip()
        )


def matches(got: np.ndarray, candidate: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Whether ``got`` equals ``candidate`` (used to name a learner's likely mistake)."""
    return bool(np.shape(got) == np.shape(candidate) and np.allclose(got, candidate, rtol=rtol, atol=atol))


def outputs_probabilities(outputs: np.ndarray) -> bool:
    """Whether each row is a probability distribution (a softmax output)."""
    return bool(np.all(outputs >= -1e-6) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-4))


def tracker_verdict(result: Any, key: str, steps: Sequence[dict[str, float]], labels: dict[str, str],
                    swapped_fix: str) -> None:
    """Fail unless ``result[key]``, a metric a learner's ``train_step`` returned, is the
    step's own ``key`` loss: its value in the last step or its mean over ``steps`` (the
    reference losses of every step so far, by name). ``labels`` names each loss in words, in
    the order to test them; the two usual mistakes get their own message -- trackers
    swapped (the value is another of the step's losses: ``swapped_fix`` says what to do) and
    a tracker never updated (zero)."""
    value = float(np.asarray(to_array(result[key], f"train_step's '{key}'", what="a number")).reshape(()))
    equals = next((name for name in labels
                   if any(np.isclose(value, candidate, rtol=1e-3, atol=1e-5)
                          for candidate in (steps[-1][name], float(np.mean([s[name] for s in steps]))))), None)
    if equals == key:
        return
    if equals is not None:
        fail(f"train_step reports '{key}' = {value:.4f}, which is the {labels[equals]}: the trackers are swapped. "
             f"{swapped_fix}")
    if np.isclose(value, 0.0, atol=1e-8):
        fail(f"train_step reports '{key}' = 0: its tracker is never updated. Call update_state on it with this "
             f"step's {labels[key]}.")
    fail(f"train_step reports '{key}' = {value:.4f}, but the step's {labels[key]} is {steps[-1][key]:.4f}: "
         f"update its tracker with that value.")


def _reference_step(model: Any, optimizer: Any, loss_fn: Any, x: Any, y: Any) -> float:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return float(loss)


class CallLog:
    """What a :func:`probe_layer` saw while the learner's code ran: the ``training`` flag
    of every call and, when ``shape`` is given, the inputs of the last ``slots`` calls
    (kept in variables, so recording also works inside a ``tf.function``).

    Checks use it to replay the learner's own random draws in a reference computation
    (whichever way they were drawn) and to name a network called outside training mode.
    """

    def __init__(self, shape: Sequence[int] | None = None, slots: int = 4) -> None:
        import tensorflow as tf

        self.flags: list[Any] = []
        self.batches: list[int | None] = []  # the static batch size of every call (None where unknown)
        self.shape = tuple(int(s) for s in shape) if shape is not None else None
        self.slots = slots
        self.count = tf.Variable(0, trainable=False, dtype="int32")
        self.inputs = tf.Variable(tf.zeros((slots, *self.shape)), trainable=False) if self.shape else None

    def reset(self) -> None:
        """Forget every call (before the next step)."""
        self.flags.clear()
        self.batches.clear()
        self.count.assign(0)

    def seen(self) -> list[np.ndarray]:
        """The recorded inputs, oldest first (at most ``slots``)."""
        if self.inputs is None:
            return []
        n = min(int(self.count.numpy()), self.slots)
        return [self.inputs[i].numpy() for i in range(n)]

    def not_training(self) -> bool:
        """Whether some call ran without ``training=True``."""
        def training(flag: Any) -> bool:
            if isinstance(flag, (bool, type(None))):
                return bool(flag)
            try:
                return bool(np.asarray(flag))
            except Exception:  # noqa: BLE001 - a symbolic flag inside a tf.function: cannot tell, do not blame
                return True

        return not all(training(flag) for flag in self.flags)


def logged_train_step(step: Callable[[Any], Any], batch: Any, logs: Sequence[tuple[CallLog, str]],
                      recorder: CallLog, *, what: str, hint: str, never_called: str,
                      consequence: str) -> tuple[Any, list[np.ndarray]]:
    """Run the learner's ``train_step(batch)`` once with fresh ``logs`` (each a
    :class:`CallLog` and its network's name) and return its result and the inputs
    ``recorder`` kept. Fails with ``never_called`` when ``recorder``'s network was not
    called, and, naming the network, when one was called without ``training=True``
    (``consequence``: what then goes wrong, and the fix)."""
    for log, _ in logs:
        log.reset()
    result = call(step, batch, what=what, hint=hint)
    seen = recorder.seen()
    if not seen:
        fail(never_called)
    for log, name in logs:
        if log.not_training():
            fail(f"The {name} is called without training=True in train_step: {consequence}")
    return result, seen


def probe_layer(name: str = "probe", what: str = "the network") -> Any:
    """A pass-through Keras layer; once its ``log`` attribute is set to a :class:`CallLog`
    (after the model is built), every call is recorded there. Cloneable (a clone records
    nothing), so models built with it can be copied with ``keras.models.clone_model``.
    ``what`` names the network in the error raised for an input of the wrong shape."""
    import keras
    import tensorflow as tf

    class Probe(keras.layers.Layer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.log: CallLog | None = None

        def call(self, x: Any, training: Any = None) -> Any:
            log = self.log
            if log is None:
                return x
            log.flags.append(training)
            shape = tuple(x.shape)
            log.batches.append(shape[0] if shape else None)
            if log.shape is not None:
                if len(shape) != len(log.shape) or any(g is not None and g != w for g, w in zip(shape, log.shape)):
                    raise ValueError(f"{what} received an input of shape {shape}, expected {log.shape}")
                slot = tf.minimum(log.count, log.slots - 1)
                log.inputs[slot].assign(tf.cast(x, log.inputs.dtype))
                log.count.assign_add(1)
            return x

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

    return Probe(name=name)
