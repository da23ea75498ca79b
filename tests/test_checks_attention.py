"""Checks of notebook 07 accept correct answers written in different ways (-inf or a large
negative number such as -1e4, tf or keras.ops or NumPy, einsum, a hand-written stable
softmax, masking after the softmax with renormalisation, either sinusoid layout) and
reject the classic mistakes, each named: a missing √d_k or the square root of another
size (d_v, T_k), a scale multiplied or applied after the softmax, the softmax over the
wrong axis or overflowing, k not transposed or transposed on the wrong axes, the results
swapped, a mask after the softmax, inverted or ignored, a causal mask off by one, heads
split or merged in the wrong order, sinusoids swapped or with a wrong exponent or base."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from utils import attention as ref
from utils.checks import TodoNotDone, attention
from utils.checks._core import CheckError


def unfilled(*args, **kwargs):
    raise NotImplementedError("TODO 9")


@pytest.mark.parametrize(
    "check, args",
    [
        (attention.scaled_dot_product, (unfilled,)),
        (attention.causal_mask, (unfilled,)),
        (attention.heads, (unfilled, unfilled)),
        (attention.positional_encoding, (unfilled,)),
    ],
)
def test_every_check_reports_an_unfilled_todo(check, args):
    with pytest.raises(TodoNotDone, match="TODO 9"):
        check(*args)


def test_heads_reports_an_unfilled_merge_after_a_correct_split():
    with pytest.raises(TodoNotDone, match="TODO 9"):
        attention.heads(ref.split_heads, unfilled)


# --- scaled dot-product attention -------------------------------------------------------


def sdpa_tf_where(q, k, v, mask=None):
    scores = tf.matmul(q, k, transpose_b=True) / tf.math.sqrt(tf.cast(tf.shape(k)[-1], tf.float32))
    if mask is not None:
        scores = tf.where(mask, scores, -1e9)
    weights = tf.nn.softmax(scores, axis=-1)
    return tf.matmul(weights, v), weights


def sdpa_minus_inf(q, k, v, mask=None):
    scores = ops.matmul(q, ops.swapaxes(k, -2, -1)) / np.sqrt(k.shape[-1])
    if mask is not None:
        scores = ops.where(mask, scores, float("-inf"))
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, v), weights


def sdpa_additive(q, k, v, mask=None):
    d_k = tf.cast(tf.shape(k)[-1], tf.float32)
    scores = tf.einsum("...qd,...kd->...qk", q, k) / tf.sqrt(d_k)
    if mask is not None:
        scores += (1.0 - tf.cast(mask, tf.float32)) * -1e9
    weights = tf.nn.softmax(scores)
    return tf.einsum("...qk,...kv->...qv", weights, v), weights


def sdpa_numpy(q, k, v, mask=None):
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(k.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v, weights


def sdpa_renormalised_after(q, k, v, mask=None):
    """Masking after the softmax *and* renormalising is the same function: correct."""
    weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(k.shape[-1]), axis=-1)
    if mask is not None:
        weights = weights * tf.cast(mask, tf.float32)
        weights = weights / tf.reduce_sum(weights, axis=-1, keepdims=True)
    return tf.matmul(weights, v), weights


def sdpa_keras_ops_small_negative(q, k, v, mask=None):
    """keras.ops throughout, the scale from q, a hand-written (stable) softmax and -1e4 for masked scores."""
    scores = ops.einsum("...qd,...kd->...qk", q, k) * (1.0 / float(q.shape[-1]) ** 0.5)
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, -1e4)
    e = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
    weights = e / ops.sum(e, axis=-1, keepdims=True)
    return ops.matmul(weights, v), weights


@pytest.mark.parametrize("fn", [sdpa_tf_where, sdpa_minus_inf, sdpa_additive, sdpa_numpy, sdpa_renormalised_after,
                                sdpa_keras_ops_small_negative, ref.scaled_dot_product_attention])
def test_scaled_dot_product_accepts(fn, capsys):
    attention.scaled_dot_product(fn)
    assert "[ok]" in capsys.readouterr().out


def _variant(scale="sqrt", axis=-1, mask_mode="before", swap_return=False, softmax="tf", keys_first=False):
    def fn(q, k, v, mask=None):
        d_k = float(k.shape[-1])
        raw = tf.matmul(k, q, transpose_b=True) if keys_first else tf.matmul(q, k, transpose_b=True)
        scores = {"sqrt": raw / np.sqrt(d_k), "none": raw, "dk": raw / d_k, "times": raw * np.sqrt(d_k),
                  "dv": raw / np.sqrt(float(v.shape[-1])), "tk": raw / np.sqrt(float(k.shape[-2])),
                  "after": raw}[scale]
        if mask is not None and mask_mode == "before":
            scores = tf.where(mask, scores, -1e9)
        elif mask is not None and mask_mode == "inverted":
            scores = tf.where(mask, -1e9, scores)
        elif mask is not None and mask_mode == "multiply":
            scores = scores * tf.cast(mask, tf.float32)
        if softmax == "naive":  # exp without the row maximum subtracted: overflows for large scores
            weights = tf.exp(scores) / tf.reduce_sum(tf.exp(scores), axis=axis, keepdims=True)
        else:
            weights = tf.nn.softmax(scores, axis=axis)
        if scale == "after":
            weights = weights / np.sqrt(d_k)
        if mask is not None and mask_mode == "after":
            weights = weights * tf.cast(mask, tf.float32)
        out = tf.matmul(weights, v)
        return (weights, out) if swap_return else (out, weights)

    return fn


def sdpa_weights_times_k(q, k, v, mask=None):
    weights = sdpa_tf_where(q, k, v, mask)[1]
    return tf.matmul(weights, k[..., :, :6]), weights  # the keys averaged instead of the values


def sdpa_int_sqrt(q, k, v, mask=None):
    scores = tf.matmul(q, k, transpose_b=True) / tf.sqrt(tf.shape(k)[-1])  # tf.sqrt of an int32
    weights = tf.nn.softmax(scores)
    return tf.matmul(weights, v), weights


def sdpa_if_mask(q, k, v, mask=None):
    scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(k.shape[-1])
    if mask:  # the truth value of an array
        scores = tf.where(mask, scores, -1e9)
    weights = tf.nn.softmax(scores)
    return tf.matmul(weights, v), weights


def sdpa_scale_written_as_a_number(q, k, v, mask=None):
    """Right for the check's 3-D inputs (d_k = 8) and the notebook's, wrong for any other depth."""
    scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(8.0)
    if mask is not None:
        scores = tf.where(mask, scores, -1e9)
    weights = tf.nn.softmax(scores, axis=-1)
    return tf.matmul(weights, v), weights


def sdpa_numpy_only(q, k, v, mask=None):
    """Right on NumPy arrays; a tensor has no .swapaxes, and 1 - a boolean tensor fails."""
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(k.shape[-1])
    if mask is not None:
        scores = scores + (1 - mask) * -1e9
    e = np.exp(scores - scores.max(-1, keepdims=True))
    weights = e / e.sum(-1, keepdims=True)
    return weights @ v, weights


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (_variant(scale="none"), "not scaled"),
        (_variant(scale="dk"), "square root"),
        (_variant(axis=-2), "wrong axis"),
        (_variant(axis=1), "wrong axis"),
        (_variant(mask_mode="ignore"), "mask is ignored"),
        (_variant(mask_mode="inverted"), "inverted"),
        (_variant(mask_mode="after"), "after the softmax"),
        (_variant(mask_mode="multiply"), "still get weight"),
        (_variant(swap_return=True), "swapped"),
        (_variant(scale="times"), "multiplied by √d_k"),
        (_variant(scale="dv"), "square root of d_v"),
        (_variant(scale="tk"), "square root of T_k"),
        (_variant(scale="after"), "after the softmax"),
        (_variant(axis=0), "wrong axis"),
        (_variant(softmax="naive"), "overflow"),
        (_variant(keys_first=True), "the scores q @ kᵀ need k"),
        (sdpa_int_sqrt, "cast it to float"),
        (sdpa_if_mask, "mask is not None"),
        (lambda q, k, v, mask=None: sdpa_tf_where(q, tf.transpose(k), v, mask), "last two axes swapped"),
        (sdpa_weights_times_k, "weights @ v"),
        (lambda q, k, v, mask=None: sdpa_tf_where(q, k, v, mask)[0], "return two tensors"),
        (sdpa_scale_written_as_a_number, "expected"),
        (sdpa_numpy_only, "no NumPy methods"),
    ],
)
def test_scaled_dot_product_rejects(fn, fragment):
    with pytest.raises(CheckError, match=fragment):
        attention.scaled_dot_product(fn)


def test_scaled_dot_product_names_a_scale_read_from_a_fixed_axis():
    def fn(q, k, v, mask=None):  # q.shape[2] is d_k for 3-D inputs, T for (batch, heads, T, depth)
        scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(q.shape[2])
        if mask is not None:
            scores = tf.where(mask, scores, -1e9)
        w = tf.nn.softmax(scores, -1)
        return tf.matmul(w, v), w

    with pytest.raises(CheckError, match="read d_k from the last axis"):
        attention.scaled_dot_product(fn)


def test_scaled_dot_product_rejects_a_transpose_of_the_wrong_axes():
    def fn(q, k, v, mask=None):  # tf.transpose(k) reverses *all* axes: wrong for 4-D inputs
        scores = tf.matmul(q, tf.transpose(k, [0, 2, 1] if len(k.shape) == 3 else [1, 0, 3, 2])) / np.sqrt(k.shape[-1])
        if mask is not None:
            scores = tf.where(mask, scores, -1e9)
        w = tf.nn.softmax(scores, -1)
        return tf.matmul(w, v), w

    with pytest.raises(CheckError, match="transpose only the last two axes"):
        attention.scaled_dot_product(fn)


# --- causal mask ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        ref.causal_mask,
        lambda n: np.tril(np.ones((n, n))).astype(bool),
        lambda n: tf.cast(tf.linalg.band_part(tf.ones((n, n)), -1, 0), tf.bool),
        lambda n: np.arange(n)[:, None] >= np.arange(n)[None, :],
        lambda n: np.array([[j <= i for j in range(n)] for i in range(n)]),
    ],
)
def test_causal_mask_accepts(fn, capsys):
    attention.causal_mask(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda n: np.tril(np.ones((n, n), bool), -1), "from itself"),
        (lambda n: np.tril(np.ones((n, n), bool), 1), "off by one"),
        (lambda n: np.triu(np.ones((n, n), bool)), "transposed"),
        (lambda n: np.triu(np.ones((n, n), bool), 1), "inverted"),
        (lambda n: np.triu(np.full((n, n), -1e9), 1), "additive"),
        (lambda n: np.ones((n, n), bool), "expected False"),
        (lambda n: np.tril(np.ones((n + 1, n + 1), bool)), "has shape"),
        (lambda n: np.tril(np.full((n, n), 2.0)), "other than"),
        # the right pattern as numbers: an attention that selects with tf.where needs booleans
        (lambda n: np.tril(np.ones((n, n))), "0/1 numbers of dtype float64"),
        (lambda n: tf.linalg.band_part(tf.ones((n, n)), -1, 0), "0/1 numbers of dtype float32"),
        (lambda n: tf.cast(1 - np.triu(np.ones((n, n)), k=1), tf.int32), "0/1 numbers of dtype int32"),
    ],
)
def test_causal_mask_rejects(fn, fragment):
    with pytest.raises(CheckError, match=fragment):
        attention.causal_mask(fn)


# --- split / merge heads ----------------------------------------------------------------


def split_tf(x, num_heads):
    b, t, f = x.shape
    return tf.transpose(tf.reshape(x, (b, t, num_heads, f // num_heads)), perm=[0, 2, 1, 3])


def merge_tf(x):
    b, h, t, d = x.shape
    return tf.reshape(tf.transpose(x, perm=[0, 2, 1, 3]), (b, t, h * d))


def split_einops_like(x, num_heads):
    x = np.asarray(x)
    return np.stack(np.split(x, num_heads, axis=-1), axis=1)


def merge_concat(x):
    x = np.asarray(x)
    return np.concatenate([x[:, h] for h in range(x.shape[1])], axis=-1)


@pytest.mark.parametrize("split, merge", [(ref.split_heads, ref.merge_heads), (split_tf, merge_tf),
                                          (split_einops_like, merge_concat)])
def test_heads_accepts(split, merge, capsys):
    attention.heads(split, merge)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "split, merge, fragment",
    [
        # right on NumPy arrays; the attention layer calls them on tensors, which have no .reshape
        (lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1).transpose(0, 2, 1, 3), merge_tf, "no NumPy methods"),
        (split_tf, lambda x: x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1), "no NumPy methods"),
        (lambda x, h: tf.reshape(x, (x.shape[0], x.shape[1], h, -1)), merge_tf, "before time"),
        (lambda x, h: tf.reshape(x, (x.shape[0], h, x.shape[1], -1)), merge_tf, "reshapes straight"),
        (lambda x, h: tf.transpose(tf.reshape(x, (x.shape[0], x.shape[1], -1, h)), [0, 3, 1, 2]), merge_tf,
         "every num_heads-th"),
        (split_tf, lambda x: tf.reshape(x, (x.shape[0], x.shape[2], -1)), "wrong order"),
        (split_tf, lambda x: tf.reshape(tf.transpose(x, [0, 2, 3, 1]), (x.shape[0], x.shape[2], -1)), "interleaves"),
        (split_tf, lambda x: tf.reshape(tf.transpose(x, [0, 2, 1, 3]), (x.shape[0], -1, x.shape[2] * x.shape[3] // 2)),
         "has shape"),
        (split_tf, lambda x: tf.reshape(tf.transpose(x[:, ::-1], [0, 2, 1, 3]), (x.shape[0], x.shape[2], -1)),
         "does not undo"),
    ],
)
def test_heads_rejects(split, merge, fragment):
    with pytest.raises(CheckError, match=fragment):
        attention.heads(split, merge)


# --- positional encoding ----------------------------------------------------------------


def pe_tf_tutorial(length, depth):
    positions = np.arange(length)[:, np.newaxis]
    depths = np.arange(depth // 2)[np.newaxis, :] / (depth // 2)
    angle_rads = positions / (10000**depths)
    return tf.cast(np.concatenate([np.sin(angle_rads), np.cos(angle_rads)], axis=-1), tf.float32)


def pe_loop(length, depth):
    pe = np.zeros((length, depth))
    for pos in range(length):
        for i in range(0, depth, 2):
            pe[pos, i] = np.sin(pos / 10000 ** (i / depth))
            pe[pos, i + 1] = np.cos(pos / 10000 ** (i / depth))
    return pe


def pe_ops(length, depth):
    pos = ops.cast(ops.arange(length)[:, None], "float32")
    i = ops.cast(ops.arange(0, depth, 2)[None, :], "float32")
    angles = pos * ops.exp(-np.log(10000.0) * i / depth)
    return ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (length, depth))


def test_positional_encoding_rejects_a_float64_tensor():
    # float64 NumPy values made a tensor as they are: x + encoding then mixes float32 and float64
    with pytest.raises(CheckError, match="returned a float64 tensor"):
        attention.positional_encoding(lambda length, depth: tf.constant(pe_loop(length, depth)))


@pytest.mark.parametrize("fn", [pe_tf_tutorial, pe_loop, pe_ops, ref.sinusoidal_encoding])
def test_positional_encoding_accepts(fn, capsys):
    attention.positional_encoding(fn)
    assert "[ok]" in capsys.readouterr().out


def pe_i_over_depth(length, depth):
    angles = np.arange(length)[:, None] / 10000 ** (np.arange(depth // 2)[None] / depth)
    return np.concatenate([np.sin(angles), np.cos(angles)], -1)


def pe_column_index(length, depth):
    pe = np.zeros((length, depth))
    for pos in range(length):
        for i in range(depth):
            angle = pos / 10000 ** (i / depth)
            pe[pos, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
    return pe


def pe_exponent(mistake):
    def fn(length, depth):
        pos = np.arange(length)[:, None]
        two_i = np.arange(0, depth, 2)[None, :]
        exponent = {"4i": 2 * two_i / depth, "multiply": two_i / depth, "floor": two_i // depth,
                    "base": two_i / depth}[mistake]
        base = 1000 if mistake == "base" else 10000
        angles = pos * base**exponent if mistake == "multiply" else pos / base**exponent
        pe = np.zeros((length, depth))
        pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles)
        return pe

    return fn


def pe_twice_the_column(n, d):
    """The TensorFlow tutorial's angle without its // 2: 2 * column / depth."""
    column = np.arange(d)[None]
    angle = np.arange(n)[:, None] / 10000 ** (2 * column / d)
    return np.where(column % 2 == 0, np.sin(angle), np.cos(angle))


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda n, d: pe_loop(n, d)[:, [j ^ 1 for j in range(d)]], "swapped"),
        (pe_column_index, "column index"),
        (pe_i_over_depth, "2i/depth"),
        (lambda n, d: pe_loop(n + 1, d)[1:], "start at 1"),
        (lambda n, d: pe_loop(n, d).T, "one row per position"),
        (lambda n, d: pe_loop(n, d) * 0.5, "not the sinusoidal"),
        (pe_exponent("4i"), "4i/depth"),
        (pe_exponent("multiply"), "multiplied"),
        (pe_exponent("floor"), "integer division"),
        (pe_exponent("base"), "base is not 10000"),
        (pe_twice_the_column, "the pair index is column // 2"),
        (lambda n, d: np.sin(np.arange(n)[:, None] / 1000 ** (np.arange(d)[None] // 2 * 2 / d)), "not the sinusoidal"),
    ],
)
def test_positional_encoding_rejects(fn, fragment):
    with pytest.raises(CheckError, match=fragment):
        attention.positional_encoding(fn)
