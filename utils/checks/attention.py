"""Checks for ``notebooks/07_attention.ipynb``: scaled dot-product attention, the causal
mask, splitting and merging heads, and the sinusoidal positional encoding.

Each check runs the learner's code on inputs made for it (every size different from the
others and from the notebook's) and compares the result with the reference computation
of :mod:`utils.attention`, so any correct answer passes -- ``-inf`` or a large negative
number for masked scores, ``tf``, ``keras.ops`` or NumPy, einsum, either standard layout
of the sinusoids -- and the usual mistakes are named: a missing ``√d_k`` or the square
root of another size, the scale applied after the softmax, the softmax over the wrong
axis or overflowing on large scores, ``k`` not transposed (or transposed on the wrong
axes), a mask applied after the softmax or inverted, a causal mask that lets a position
see its future (or not itself), heads split or merged in the wrong order, sinusoids
swapped or with a wrong exponent. An error raised by the learner's code comes back with
a hint chosen by that error (shapes of ``q @ kᵀ``, an integer size, ``if mask:``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils import attention as ref
from utils.checks._core import (CheckError, TodoNotDone, call, expect_close, expect_shape, fail, filled, kind,
                                matches, ok, to_array)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _pair(out: Any, label: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        fail(f"{label} returned {kind(out)}; return two tensors: (output, attention_weights).")
    return (to_array(out[0], "output", "the attention output"),
            to_array(out[1], "attention_weights", "the attention weights"))


_HINTS = (  # (pattern in the error, what it means for attention code)
    (r"compatible|must be equal|[Dd]imensions? .*(mismatch|match)",
     ("q has shape (..., T_q, d_k) and k (..., T_k, d_k): the scores q @ kᵀ need k with its last two axes swapped, "
      "giving (..., T_q, T_k); then weights @ v gives (..., T_q, d_v).")),
    (r"int32|int64|allowed values",
     ("An integer reached a float operation: a size read from a shape is an integer; cast it to float before taking "
      "its square root or dividing by it.")),
    (r"truth value|ambiguous",
     "`if mask:` cannot test an array or a tensor: test whether a mask was given with `mask is not None`."),
)


def _call(attention_fn: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
    """:func:`call`, with a hint chosen by the error: the shapes of q @ kᵀ, an integer
    size, a mask tested with ``if``, or (with a mask) how a boolean mask is used."""
    import re

    try:
        return call(attention_fn, *args, what=what, **kwargs)
    except TodoNotDone:
        raise
    except CheckError as err:
        message = str(err)
        hint = next((h for pattern, h in _HINTS if re.search(pattern, message)), None)
        if hint is None and "mask" in kwargs:
            hint = "The mask is boolean (True = may attend): use it to choose between the score and a large negative number."
        raise CheckError(f"{message.rstrip('.')}. {hint}" if hint else message) from None


def _tensor_inputs_work(attention_fn: Callable[..., Any], args: tuple[np.ndarray, ...],
                        expected: tuple[np.ndarray, np.ndarray]) -> None:
    """``attention_fn`` on TensorFlow tensors (a boolean tensor mask included) must give
    what it gave on NumPy arrays: NumPy-only code (``.swapaxes``, ``1 - mask``) fails there."""
    import tensorflow as tf

    label = "scaled_dot_product_attention on TensorFlow tensors (q, k, v and a boolean mask)"
    try:
        out = call(attention_fn, *(tf.constant(a) for a in args[:3]), mask=tf.constant(args[3]), what=label)
    except TodoNotDone:
        raise
    except CheckError as err:
        fail(f"{str(err).rstrip('.')}. It works on NumPy arrays, but the notebook (and Keras) pass TensorFlow "
             f"tensors, which have no NumPy methods and no arithmetic on booleans: use operations that take "
             f"tensors (ops.*, or tf.*), and ops.where with the boolean mask itself.")
    got_out, got_w = _pair(out, label)
    expect_close(got_w, expected[1], "attention_weights (TensorFlow tensors)")
    expect_close(got_out, expected[0], "output (TensorFlow tensors)")


def scaled_dot_product(attention_fn: Callable[..., Any]) -> None:
    """``attention_fn(q, k, v, mask=None)`` must return ``(softmax(q kᵀ/√d_k) v, weights)``;
    ``mask`` is boolean, ``True`` where a query may attend, and masked keys get weight 0."""
    filled(attention_fn, "scaled_dot_product_attention")
    rng = np.random.default_rng(7)
    batch, t_q, t_k, d_k, d_v = 2, 3, 5, 8, 6  # every size different, so no axis mix-up hides
    q = rng.normal(size=(batch, t_q, d_k)).astype("float32")
    k = rng.normal(size=(batch, t_k, d_k)).astype("float32")
    v = rng.normal(size=(batch, t_k, d_v)).astype("float32")
    label = "scaled_dot_product_attention(q, k, v)"
    out, weights = _pair(_call(attention_fn, q, k, v, what=label), label)
    if weights.shape == (batch, t_q, d_v) and out.shape == (batch, t_q, t_k):
        fail("The two results are swapped: return (output, attention_weights), the output first.")
    if weights.shape == (batch, t_k, t_q):
        fail(f"attention_weights has shape {weights.shape}, one row per key: the scores are k @ qᵀ. Compute q @ kᵀ, "
             "one row per query (..., T_q, T_k).")
    expect_shape(weights, (batch, t_q, t_k), "attention_weights",
                 hint="One weight per (query, key) pair: (..., T_q, T_k) = q @ transpose(k).")
    expect_shape(out, (batch, t_q, d_v), "output", hint="The output is weights @ v: (..., T_q, d_v).")
    raw = q @ k.transpose(0, 2, 1)
    expected_w = _softmax(raw / np.sqrt(d_k), -1)
    if matches(weights, _softmax(raw, -1)):
        fail("The scores are not scaled: divide q @ kᵀ by √d_k (the square root of the last dimension of k) "
             "before the softmax.")
    if matches(weights, _softmax(raw / d_k, -1)):
        fail("The scores are divided by d_k; divide by its square root, √d_k.")
    if matches(weights, _softmax(raw * np.sqrt(d_k), -1)):
        fail("The scores are multiplied by √d_k; divide them by √d_k, which keeps their spread near 1 whatever the "
             "size of the vectors.")
    for size, name in ((d_v, "d_v, the size of the values (last axis of v)"), (t_k, "T_k, the number of keys"),
                       (t_q, "T_q, the number of queries")):
        if matches(weights, _softmax(raw / np.sqrt(size), -1)):
            fail(f"The scores are divided by the square root of {name}; divide by √d_k, the size of the vectors "
                 "being compared: the last axis of k (or q).")
    if matches(weights, _softmax(raw, -1) / np.sqrt(d_k)):
        fail("The scaling comes after the softmax: divide the scores by √d_k first, then take the softmax, so the "
             "weights still sum to 1.")
    if matches(weights, _softmax(raw / np.sqrt(d_k), -2)) or matches(weights, _softmax(raw / np.sqrt(d_k), 0)):
        fail("The softmax runs over the wrong axis: each query's weights must sum to 1 over the keys, "
             "so take the softmax over the last axis (axis=-1).")
    if not np.allclose(weights.sum(-1), 1.0, atol=1e-4):
        fail("The attention weights of a query do not sum to 1 over the keys: apply a softmax over axis=-1 "
             "to the scaled scores.")
    expect_close(weights, expected_w, "attention_weights", hint="weights = softmax(q @ kᵀ / √d_k, axis=-1).")
    expect_close(out, expected_w @ v, "output", hint="The output is weights @ v.")

    # Large scores: a hand-written softmax without the row maximum subtracted overflows.
    label = "scaled_dot_product_attention(30 * q, 30 * k, v)"
    _, big_weights = _pair(_call(attention_fn, 30 * q, 30 * k, v, what=label), label)
    if not np.all(np.isfinite(big_weights)):
        fail("With large scores (q and k times 30) the attention weights contain NaN or inf: exp overflows. Subtract "
             "each row's maximum score before exp (softmax is unchanged by it), or use ops.softmax / tf.nn.softmax.")
    expect_close(big_weights, _softmax(900 * raw / np.sqrt(d_k), -1), "attention_weights (large scores)", atol=2e-3)

    # A boolean mask, True where a query may attend; at least one key per query.
    mask = rng.random((batch, t_q, t_k)) < 0.5
    mask[..., 0] = True
    label = "scaled_dot_product_attention(q, k, v, mask)"
    out, weights = _pair(_call(attention_fn, q, k, v, mask=mask, what=label), label)
    masked = np.where(mask, raw / np.sqrt(d_k), -np.inf)
    expected_w = _softmax(masked, -1)
    if matches(weights, _softmax(raw / np.sqrt(d_k), -1)):
        fail("The mask is ignored: set the scores of masked keys (mask == False) to a large negative number "
             "(or -inf) before the softmax.")
    if matches(weights, _softmax(np.where(mask, -np.inf, raw / np.sqrt(d_k)), -1)):
        fail("The mask is inverted: True means the query MAY attend to that key; block the keys where the mask "
             "is False.")
    if np.abs(weights[~mask]).max() < 1e-6 and not np.allclose(weights.sum(-1), 1.0, atol=1e-4):
        fail("The mask is applied after the softmax: the masked weights are 0 but the others no longer sum to 1. "
             "Mask the scores before the softmax, so the remaining keys share the whole weight.")
    if np.abs(weights[~mask]).max() > 1e-6:
        fail(f"Masked keys still get weight (up to {np.abs(weights[~mask]).max():.3g}): a masked score must become "
             "a large negative number (or -inf) before the softmax; multiplying it by 0 is not enough.")
    expect_close(weights, expected_w, "attention_weights (with a mask)")
    expect_close(out, expected_w @ v, "output (with a mask)")

    # The same with TensorFlow tensors, as the cells below (and Keras layers) pass them.
    _tensor_inputs_work(attention_fn, (q, k, v, mask), (expected_w @ v, expected_w))

    # Heads as an extra leading axis, a (T, T) mask shared by the batch, and another depth
    # (6, not 8: a scale written as a number shows).
    q4 = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    label = "scaled_dot_product_attention(q, k, v, mask) on (batch, heads, T, depth) inputs"
    try:
        result = call(attention_fn, q4, q4, q4, mask=ref.causal_mask(4), what=label)
    except TodoNotDone:
        raise
    except CheckError as err:
        raise CheckError(f"{str(err).rstrip('.')}. Use the last two axes for (T, depth), so extra leading axes "
                         "(heads) just come along: transpose only the last two axes of k.") from None
    out, weights = _pair(result, label)
    expect_out, expect_w = (np.asarray(t) for t in ref.scaled_dot_product_attention(q4, q4, q4, ref.causal_mask(4)))
    raw4 = q4 @ q4.transpose(0, 1, 3, 2)
    allowed = np.asarray(ref.causal_mask(4), bool)
    for axis in (1, 2):  # d_k read from a fixed axis: right for 3-D inputs, wrong once heads come first
        if q4.shape[axis] != q4.shape[-1] and matches(
                weights, _softmax(np.where(allowed, raw4 / np.sqrt(q4.shape[axis]), -np.inf), -1)):
            fail(f"On (batch, heads, T, depth) inputs the scores are divided by the square root of axis {axis} "
                 f"(size {q4.shape[axis]}), not of the depth: read d_k from the last axis, which is the depth "
                 f"however many axes come before it.")
    expect_close(weights, expect_w, "attention_weights (4-D inputs)",
                 hint="Swap only the last two axes of k, whatever number of axes comes before them (count "
                      "the axes from the end).")
    expect_close(out, expect_out, "output (4-D inputs)")
    ok("scaled_dot_product_attention matches softmax(q kᵀ / √d_k) v, with and without a mask, for 3-D and 4-D inputs.")


def causal_mask(causal_mask_fn: Callable[[int], Any]) -> None:
    """``causal_mask_fn(length)`` must return ``(length, length)`` booleans, ``True``
    where query ``i`` may attend to key ``j``, i.e. ``j <= i`` (0/1 numbers are named:
    an attention that selects with the mask needs booleans)."""
    filled(causal_mask_fn, "causal_mask")
    for length in (4, 7, 1):
        label = f"causal_mask({length})"
        raw = to_array(call(causal_mask_fn, length, what=label), label, "a (length, length) mask")
        expect_shape(raw, (length, length), label, hint="Rows are queries, columns are keys.")
        if raw.dtype != bool and not np.isin(raw, (0, 1)).all():
            if (raw <= 0).all():
                fail(f"{label} looks like an additive mask (0 and a large negative number). Here a mask is boolean: "
                     "True where a query may attend; the attention function turns it into -1e9 itself.")
            fail(f"{label} holds values other than True and False.")
        got = raw.astype(bool)
        expected = np.tril(np.ones((length, length), dtype=bool))
        if np.array_equal(got, expected):
            if raw.dtype != bool:
                fail(f"{label} has the right pattern, as 0/1 numbers of dtype {raw.dtype}; the task asks for "
                     f"booleans (True/False): the attention selects scores with the mask, which takes booleans. "
                     f"Make the comparison itself the result, or convert the numbers to booleans.")
            continue
        if np.array_equal(got, np.tril(expected, -1)):
            fail(f"{label} hides each position from itself: query i must attend to keys 0..i, its own position "
                 "included (np.tril with k=0).")
        if np.array_equal(got, np.tril(np.ones_like(expected), 1)):
            fail(f"{label} is off by one: query i also sees key i + 1, the next character -- the very one it has to "
                 "predict. Allow keys j <= i only.")
        if np.array_equal(got, expected.T):
            fail(f"{label} is transposed: rows are queries and columns keys, so query i may attend to keys j <= i "
                 "(a lower triangle).")
        if np.array_equal(got, ~expected):
            fail(f"{label} is inverted: True must mark the keys a query MAY attend (the past and itself), "
                 "not the blocked ones.")
        wrong = np.argwhere(got != expected)[0]
        fail(f"{label}[{wrong[0]}, {wrong[1]}] is {bool(got[tuple(wrong)])}, expected {bool(expected[tuple(wrong)])}: "
             "query i may attend to key j exactly when j <= i.")
    ok("causal_mask lets every position attend to itself and the past, never to the future.")


def _same_on_tensors(fn: Callable[[Any], Any], array: np.ndarray, expected: np.ndarray, name: str) -> None:
    """``fn`` on a TensorFlow tensor must give what it gave on the NumPy array: the
    attention layer of the notebook calls it on tensors."""
    import tensorflow as tf

    label = f"{name} on a TensorFlow tensor of shape {array.shape}"
    try:
        got = to_array(call(fn, tf.constant(array), what=label), label)
    except TodoNotDone:
        raise
    except CheckError as err:
        fail(f"{str(err).rstrip('.')}. It works on NumPy arrays, but the attention layer below calls it on "
             f"TensorFlow tensors, which have no NumPy methods such as .reshape or .transpose: use ops.reshape and "
             f"ops.transpose (or tf.reshape and tf.transpose).")
    if not matches(got, expected, rtol=0, atol=0):
        fail(f"{label} gives other values than on a NumPy array.")


def heads(split_heads_fn: Callable[[Any, int], Any], merge_heads_fn: Callable[[Any], Any]) -> None:
    """``split_heads(x, num_heads)`` must turn ``(batch, T, num_heads * depth)`` into
    ``(batch, num_heads, T, depth)`` -- feature block ``h`` is head ``h``, the layout of
    Keras's ``MultiHeadAttention`` weights -- and ``merge_heads`` must undo it."""
    filled(split_heads_fn, "split_heads")
    filled(merge_heads_fn, "merge_heads")
    batch, length, num_heads, depth = 2, 5, 3, 4
    x = np.arange(batch * length * num_heads * depth, dtype="float32").reshape(batch, length, num_heads * depth)
    label = f"split_heads(x of shape {x.shape}, num_heads={num_heads})"
    got = to_array(call(split_heads_fn, x, num_heads, what=label), label)
    expected = np.asarray(ref.split_heads(x, num_heads))
    if got.shape == (batch, length, num_heads, depth):
        fail(f"{label} has shape {got.shape}: the head axis must come before time, (batch, heads, T, depth), so "
             "that attention runs over T for every head. Transpose after the reshape.")
    expect_shape(got, expected.shape, label, hint="(batch, num_heads, T, depth) with depth = features // num_heads.")
    if matches(got, x.reshape(expected.shape), rtol=0, atol=0):
        fail(f"{label} reshapes straight to (batch, heads, T, depth), which mixes time steps into heads. Reshape to "
             "(batch, T, heads, depth) first, then swap the heads and time axes.")
    if matches(got, x.reshape(batch, length, depth, num_heads).transpose(0, 3, 1, 2), rtol=0, atol=0):
        fail(f"{label} gives head h every num_heads-th feature. Head h is the block of features "
             "h*depth .. (h+1)*depth - 1: reshape to (batch, T, heads, depth), not (batch, T, depth, heads).")
    if not matches(got, expected, rtol=0, atol=0):
        fail(f"{label} puts features in the wrong places: head h, time t must hold x[:, t, h*depth:(h+1)*depth].")

    label = f"merge_heads(x of shape {expected.shape})"
    merged = to_array(call(merge_heads_fn, expected, what=label), label)
    expect_shape(merged, x.shape, label, hint="(batch, T, num_heads * depth).")
    if matches(merged, expected.reshape(x.shape), rtol=0, atol=0):
        fail(f"{label} merges the heads in the wrong order: it reshapes (batch, heads, T, depth) directly, which "
             "mixes time steps. Transpose back to (batch, T, heads, depth) first, then reshape.")
    if matches(merged, expected.transpose(0, 2, 3, 1).reshape(x.shape), rtol=0, atol=0):
        fail(f"{label} interleaves the heads' features. Put head h's features in the block h*depth .. (h+1)*depth - 1: "
             "transpose to (batch, T, heads, depth), not (batch, T, depth, heads), then reshape.")
    if not matches(merged, x, rtol=0, atol=0):
        fail(f"{label} does not undo split_heads: merge_heads(split_heads(x, h)) must give x back.")
    _same_on_tensors(lambda t: split_heads_fn(t, num_heads), x, expected, "split_heads")
    _same_on_tensors(merge_heads_fn, expected, x, "merge_heads")
    ok("split_heads and merge_heads move feature block h to head h and back, as Keras's MultiHeadAttention does.")


def positional_encoding(encoding_fn: Callable[[int, int], Any]) -> None:
    """``encoding_fn(length, depth)`` must return the sinusoidal encoding,
    ``(length, depth)``: angle ``pos / 10000^(2i/depth)``, sine and cosine of each
    frequency, interleaved (sin, cos, sin, cos, ...) or concatenated (all sines, then
    all cosines)."""
    filled(encoding_fn, "positional_encoding")
    for length, depth in ((50, 16), (9, 6)):
        label = f"positional_encoding({length}, {depth})"
        result = call(encoding_fn, length, depth, what=label)
        got = to_array(result, label)
        dtype = str(getattr(getattr(result, "dtype", None), "name", ""))
        if not isinstance(result, np.ndarray) and dtype not in ("", "float32"):
            fail(f"{label} returned a {dtype} tensor; the model's features are float32, and TensorFlow does not add "
                 f"tensors of two dtypes. Return a float32 tensor, or the NumPy array itself.")
        if got.shape == (depth, length) and length != depth:
            fail(f"{label} has shape {got.shape}, expected ({length}, {depth}): one row per position.")
        expect_shape(got, (length, depth), label, hint="One row per position, one column per feature.")
        interleaved = ref.sinusoidal_encoding(length, depth, "interleaved")
        concatenated = ref.sinusoidal_encoding(length, depth, "concatenated")
        if matches(got, interleaved, atol=1e-4) or matches(got, concatenated, atol=1e-4):
            continue
        pos = np.arange(length)[:, None]
        half = np.arange(depth // 2)[None, :]
        angles = pos / 10000 ** (2 * half / depth)
        slow = pos / 10000 ** (half / depth)
        per_column = pos / 10000 ** (np.arange(depth)[None, :] / depth)
        doubled = pos / 10000 ** (2 * np.arange(depth)[None, :] / depth)  # 2 * column, not 2 * (column // 2)

        def layouts(first: np.ndarray, second: np.ndarray) -> list[np.ndarray]:
            return [np.stack([first, second], -1).reshape(len(first), -1), np.concatenate([first, second], -1)]

        wrong = {
            "sines and cosines are swapped: the sine goes first (even columns, or the first half)":
                layouts(np.cos(angles), np.sin(angles)),
            "the exponent uses the column index: a sine/cosine pair shares one frequency, "
            "pos / 10000^(2i/depth) with i = column // 2":
                [np.where(np.arange(depth) % 2 == 0, np.sin(per_column), np.cos(per_column))],
            "the exponent is 2 x column / depth: the pair index is column // 2, so the two columns of a "
            "sine/cosine pair share one frequency, pos / 10000^(2 (column // 2) / depth)":
                [np.where(np.arange(depth) % 2 == 0, np.sin(doubled), np.cos(doubled))],
            "the exponent is i/depth; it should be 2i/depth (i counts the sine/cosine pairs)":
                layouts(np.sin(slow), np.cos(slow)),
            "positions start at 1; the first position is 0 (its row is sin 0 = 0, cos 0 = 1)":
                [ref.sinusoidal_encoding(length + 1, depth, lay)[1:] for lay in ("interleaved", "concatenated")],
            "the exponent is 4i/depth: the pair index i was doubled twice (the even column index 2i is already "
            "twice the pair index)": layouts(np.sin(pos / 10000 ** (4 * half / depth)),
                                             np.cos(pos / 10000 ** (4 * half / depth))),
            "the position is multiplied by 10000^(2i/depth); divide it: the wavelengths grow with i":
                layouts(np.sin(pos * 10000 ** (2 * half / depth)), np.cos(pos * 10000 ** (2 * half / depth))),
            "every pair turns at the same speed: the exponent 2i/depth is computed with integer division (//), "
            "which makes it 0; divide with /":
                layouts(np.sin(pos + 0 * half), np.cos(pos + 0 * half)),
            "the base is not 10000: the wavelengths are 2π · 10000^(2i/depth)":
                layouts(np.sin(pos / 1000 ** (2 * half / depth)), np.cos(pos / 1000 ** (2 * half / depth))),
        }
        for message, candidates in wrong.items():
            if any(matches(got, c, atol=1e-4) for c in candidates):
                fail(f"{label}: {message}.")
        fail(f"{label} is not the sinusoidal encoding: row p, pair i holds sin(p / 10000^(2i/depth)) and "
             "cos(p / 10000^(2i/depth)), interleaved (sin, cos, ...) or as two halves (all sines, then all cosines).")
    ok("positional_encoding gives sin and cos of pos / 10000^(2i/depth), one row per position.")
