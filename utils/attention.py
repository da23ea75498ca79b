"""Reference attention: scaled dot-product attention, masks, heads, positional encodings.

These are the reference computations behind the checks of
``notebooks/07_attention.ipynb`` (the notebook writes its own versions as TODOs) and the
pieces the notebooks reuse once they are understood (``notebooks/08_transformers.ipynb``
takes its causal mask from here). Masks follow
Keras's convention: ``True`` (or 1) where a query **may** attend to a key.

All functions take and return NumPy arrays or TensorFlow tensors; they compute in
float32 with ``keras.ops`` so the same code runs on CPU, GPU or TPU.

Introduced in ``notebooks/07_attention.ipynb``.

>>> causal_mask(3).astype(int).tolist()
[[1, 0, 0], [1, 1, 0], [1, 1, 1]]
>>> padding_mask([2, 3], 3).astype(int).tolist()
[[[1, 1, 0], [1, 1, 0], [1, 1, 0]], [[1, 1, 1], [1, 1, 1], [1, 1, 1]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: What a masked score becomes before the softmax: exp() of it is exactly 0 in float32.
MASKED = -1e9


def scaled_dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None) -> tuple[Any, Any]:
    """``softmax(q kᵀ / √d_k) v`` over the last two axes, and the attention weights.

    ``q`` is ``(..., T_q, d_k)``, ``k`` ``(..., T_k, d_k)``, ``v`` ``(..., T_k, d_v)``;
    ``mask`` (broadcastable to ``(..., T_q, T_k)``) is ``True`` where a query may attend.
    Returns ``(output (..., T_q, d_v), weights (..., T_q, T_k))``; every row of the
    weights sums to 1 over the keys.

    >>> q = k = v = np.eye(2, dtype="float32")[None]
    >>> out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(2))
    >>> np.round(np.asarray(w, dtype=np.float64), 2).tolist()
    [[[1.0, 0.0], [0.33, 0.67]]]
    """
    from keras import ops

    q, k, v = (ops.cast(t, "float32") for t in (q, k, v))
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / ops.sqrt(ops.cast(ops.shape(k)[-1], "float32"))
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, MASKED)
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, v), weights


def causal_mask(length: int) -> np.ndarray:
    """``(length, length)`` booleans: query ``i`` may attend to keys ``0 .. i`` (itself
    and the past), never to the future."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    return np.tril(np.ones((length, length), dtype=bool))


def padding_mask(lengths: Sequence[int] | np.ndarray, max_length: int) -> np.ndarray:
    """``(batch, max_length, max_length)`` booleans for sequences padded to
    ``max_length``: every query may attend to the real keys of its own sequence only."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths < 1).any() or (lengths > max_length).any():
        raise ValueError(f"lengths must be a 1-D list of values in 1..{max_length}, got {lengths.tolist()}")
    keys = np.arange(max_length)[None, :] < lengths[:, None]  # (batch, T_k)
    return np.repeat(keys[:, None, :], max_length, axis=1)


def split_heads(x: Any, num_heads: int) -> Any:
    """``(batch, T, num_heads * depth)`` -> ``(batch, num_heads, T, depth)``: feature
    block ``h`` (columns ``h*depth .. (h+1)*depth - 1``) becomes head ``h``."""
    from keras import ops

    batch, length, features = ops.shape(x)
    if features % num_heads:
        raise ValueError(f"{features} features cannot be split into {num_heads} equal heads")
    x = ops.reshape(x, (batch, length, num_heads, features // num_heads))
    return ops.transpose(x, (0, 2, 1, 3))


def merge_heads(x: Any) -> Any:
    """``(batch, num_heads, T, depth)`` -> ``(batch, T, num_heads * depth)``, the inverse
    of :func:`split_heads`."""
    from keras import ops

    batch, heads, length, depth = ops.shape(x)
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * depth))


def sinusoidal_encoding(length: int, depth: int, layout: str = "interleaved") -> np.ndarray:
    """The transformer's fixed positional encoding, ``(length, depth)`` float32.

    Position ``p`` and frequency index ``i`` (``0 <= i < depth / 2``) give the angle
    ``p / 10000^(2i / depth)``; ``layout="interleaved"`` puts its sine in column ``2i``
    and its cosine in ``2i + 1`` (Vaswani et al., 2017); ``layout="concatenated"``
    puts all sines first, then all cosines (the TensorFlow tutorial's layout). Both
    carry the same information.

    >>> pe = sinusoidal_encoding(4, 6)
    >>> pe.shape, pe[0].tolist()
    ((4, 6), [0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    """
    if length < 1 or depth < 2 or depth % 2:
        raise ValueError(f"need length >= 1 and an even depth >= 2, got ({length}, {depth})")
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, depth, 2, dtype=np.float64) / depth)
    angles = positions * rates[None, :]  # (length, depth / 2)
    if layout == "interleaved":
        out = np.empty((length, depth))
        out[:, 0::2], out[:, 1::2] = np.sin(angles), np.cos(angles)
    elif layout == "concatenated":
        out = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)
    else:
        raise ValueError(f"layout must be 'interleaved' or 'concatenated', got {layout!r}")
    return out.astype(np.float32)
