"""A custom training step checked against a reference step, shared by the CNN (03) and
the music (04) checks.

The learner's ``make_train_step(model, optimizer, loss_fn)`` and a reference step each
train one of two identical copies of a small net that contains **dropout and batch
norm** -- so a step that runs the model with ``training=False`` gives a different loss
(batch norm then uses its running statistics) and different weights -- built under the
same seed, so both copies draw the same dropout masks. The loss it returns and every
weight after each of two steps must match; when they do not, the message names the
likely mistake (inference mode, a softmax before a from-logits loss, the update applied
twice or with the wrong sign or scale, a loss per example, the model's outputs returned
instead of the loss, arguments of the loss swapped, a graph cut by ``.numpy()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import CheckError, call, fail, kind, matches, ok, short_error, to_array

_HOW = ("the forward pass (the model in training mode) and the loss recorded on a tape, then the optimizer "
        "applying the gradients of that loss to every trainable variable")


def _explain_raise(err_text: str, swapped_text: str | None) -> str:
    """What a failure inside the learner's step most likely means."""
    low = err_text.lower()
    if swapped_text is not None and swapped_text == err_text:
        return "loss_fn got its arguments the other way round: the labels come first, loss_fn(y, outputs)."
    if "no gradients provided" in low:
        return ("the tape recorded no path from the variables to the loss: compute the model's outputs and the "
                "loss inside the `with tf.GradientTape()` block, and keep the loss a tensor (no .numpy() or float()).")
    if "numpy() is only available" in low or "symbolic" in low or "cannot convert" in low:
        return ("inside a tf.function a tensor has no value yet: .numpy(), float() or np.* on it cut the graph. "
                "Keep the loss a TensorFlow tensor until train_step returns it.")
    if "shape" in low or "incompatible" in low:
        return ("if the shapes clash where the gradients meet the variables: each gradient must go with its own "
                "variable, so pair the gradients with the same list of variables you asked the tape to differentiate.")
    return f"One step is {_HOW}."


def _probe_swapped(loss_fn: Any, y: Any, outputs: Any) -> str | None:
    """The error ``loss_fn(outputs, y)`` raises (arguments swapped), or None if it does not."""
    try:
        loss_fn(outputs, y)
    except Exception as err:  # noqa: BLE001
        return short_error(err)
    return None


def _loss_value(got: Any, expected: float, batch: int) -> float:
    """The number train_step returned, or a message about what it returned instead."""
    if got is None:
        fail("train_step returned None: return the loss, so that the training loop can report it.")
    if isinstance(got, (tuple, list, dict)):
        fail(f"train_step returned a Python {type(got).__name__}; return only the loss, one number.")
    array = to_array(got, "train_step's return value", what="the loss, one number")
    if array.size == 1:
        return float(array.reshape(()))
    if array.ndim >= 2 or (array.ndim == 1 and array.shape[0] != batch):
        fail(f"train_step returned an array of shape {array.shape}, which looks like the model's outputs: "
             f"return the loss, one number.")
    if np.isclose(float(np.mean(array)), expected, rtol=1e-4, atol=1e-6):
        fail(f"train_step returned one loss per example (shape {array.shape}): use loss_fn, which averages "
             f"them, and return that single number -- it is also the one to differentiate.")
    fail(f"train_step returned an array of shape {array.shape}; return the loss, one number.")


def _reference_step(model: Any, optimizer: Any, loss_fn: Any, x: Any, y: Any) -> dict[str, float]:
    """One correct step on ``model``; returns the loss and the losses of two likely mistakes."""
    import tensorflow as tf

    inference = float(loss_fn(y, model(x, training=False)))  # no state changes, no dropout draw
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = loss_fn(y, outputs)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return {"loss": float(loss), "inference": inference,
            "softmax": float(loss_fn(y, tf.nn.softmax(outputs))), "outputs": outputs}


def _scale(delta_got: list[np.ndarray], delta_ref: list[np.ndarray]) -> float | None:
    """``k`` when every learner update is ``k`` times the reference update, else None."""
    got = np.concatenate([d.ravel() for d in delta_got])
    ref = np.concatenate([d.ravel() for d in delta_ref])
    if not np.any(ref):
        return None
    k = float(got @ ref / (ref @ ref))
    return k if np.allclose(got, k * ref, rtol=1e-3, atol=1e-6) else None


def train_step_matches_reference(
    make_train_step: Callable[[Any, Any, Any], Callable[[Any, Any], Any]],
    build_model: Callable[[int], Any],
    x: Any,
    y: Any,
    loss_fn: Any,
) -> None:
    """Two steps of the learner's ``make_train_step(model, optimizer, loss_fn)`` against a
    reference step on an identical model, ``build_model(seed)`` (a net with dropout and
    batch norm, built under ``seed``): the same loss returned, every trainable variable
    moved, the same weights -- running statistics included -- after each step."""
    import keras

    ours, ref = build_model(0), build_model(0)
    ref.set_weights(ours.get_weights())
    ours_opt, ref_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    step = call(make_train_step, ours, ours_opt, loss_fn, what="make_train_step(model, optimizer, loss_fn)")
    if not callable(step):
        fail(f"make_train_step returned {kind(step)}; it must return the step function train_step(x, y).")
    if not hasattr(step, "get_concrete_function"):
        fail("make_train_step returned a plain Python function; the task asks for a tf.function. The training "
             "loop below runs the step inside a tf.function, where a tensor has no value yet (.numpy() and NumPy "
             "calls on it fail), so compile the step you return with tf.function.")
    if getattr(step, "_jit_compile", None):
        fail("train_step is compiled with jit_compile=True. XLA draws its own dropout masks, so this check cannot "
             "compare your step with its reference -- and on this course's CPU it made the CNN's step slower, not "
             "faster (docs/benchmarks.md). Leave jit_compile out.")
    trainable = {id(v) for v in ours.trainable_variables}
    names = [v.path for v in ours.weights]
    train_idx = [i for i, v in enumerate(ours.weights) if id(v) in trainable]
    batch = int(np.shape(x)[0])
    for step_number in (1, 2):
        before = [w.copy() for w in ours.get_weights()]
        try:
            got = call(step, x, y, what="train_step(x, y)")
        except CheckError as err:
            if type(err) is not CheckError:  # TodoNotDone
                raise
            swapped = _probe_swapped(loss_fn, y, ref(x, training=False))
            raised = str(err).removeprefix("train_step(x, y) raised ")
            explain = _explain_raise(raised, swapped)
            fail(f"train_step(x, y) raised {raised.rstrip('.')}. {explain[0].upper()}{explain[1:]}")
        expected = _reference_step(ref, ref_opt, loss_fn, x, y)
        loss = _loss_value(got, expected["loss"], batch)
        if not np.isclose(loss, expected["loss"], rtol=1e-4, atol=1e-6):
            said = f"Step {step_number}: train_step returned loss {loss:.5f}, expected {expected['loss']:.5f}"
            if np.isclose(loss, expected["inference"], rtol=1e-4, atol=1e-6):
                fail(f"{said}, the loss with the model in training mode. Yours is the inference-mode loss "
                     f"(dropout off, batch norm on its running statistics): call the model with training=True.")
            if np.isclose(loss, expected["softmax"], rtol=1e-4, atol=1e-6):
                fail(f"{said}. A softmax was applied to the model's outputs before the loss, which expects logits: "
                     f"give loss_fn the model's outputs as they are.")
            fail(f"{said}, the loss of this batch's forward pass in training mode, on the weights before the "
                 f"update. Return that loss, computed by loss_fn with the labels first.")
        now, after = ours.get_weights(), ref.get_weights()
        moved = [not matches(a, b, rtol=0, atol=0) for a, b in zip(now, before)]
        if not any(moved[i] for i in train_idx):
            fail("After a step the weights have not changed: apply the gradients with the optimizer "
                 "(optimizer.apply_gradients with (gradient, variable) pairs).")
        for i in train_idx:
            if not moved[i]:
                fail(f"The weight {names[i]} never changed: take the gradients for all of "
                     f"model.trainable_variables and apply them all.")
        if all(matches(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(now, after)):
            continue
        k = _scale([now[i] - before[i] for i in train_idx], [after[i] - before[i] for i in train_idx])
        if k is not None and np.isclose(k, -1.0, rtol=1e-2):
            fail("The weights moved uphill: apply the gradients of the loss itself (not of -loss).")
        if k is not None and np.isclose(k, 2.0, rtol=1e-2):
            fail("Each step updated the weights twice: call optimizer.apply_gradients once per step.")
        if k is not None and np.isclose(k, batch, rtol=1e-2):
            fail(f"The update is {batch} times too large: the gradients were taken of the summed loss. "
                 f"Differentiate the mean loss, the one loss_fn returns.")
        if k is not None and not np.isclose(k, 1.0, rtol=1e-3):
            fail(f"The update is {k:.3g} times the reference update: differentiate exactly the loss loss_fn "
                 f"returns and apply it once, with the optimizer you were given.")
        i = next(i for i, (a, b) in enumerate(zip(now, after)) if not matches(a, b, rtol=1e-4, atol=1e-6))
        if i not in train_idx:
            fail(f"After step {step_number}, the running statistic {names[i]} differs from a reference step: "
                 f"run the model exactly once per step, with training=True.")
        fail(f"After step {step_number}, {names[i]} differs from a reference step (largest difference "
             f"{float(np.max(np.abs(now[i] - after[i]))):.3g}). Check that the gradients come from the tape "
             f"that recorded this step's loss, and that each gradient goes with its own variable.")
    ok("train_step runs the model in training mode, applies the loss's gradients to every trainable "
       "variable and returns the loss.")


__all__ = ["train_step_matches_reference"]
