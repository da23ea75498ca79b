"""Checks for ``notebooks/08_transformers.ipynb``: the pre-norm encoder block.

The check runs the learner's block on inputs made for it and compares its output with
the block's own sub-layers wired the pre-norm way (with random LayerNorm scales and
shifts, so the order of every piece shows), so any correct block passes -- a
``keras.Sequential`` feed-forward network or two ``Dense`` attributes, ReLU or GELU, any
LayerNorm epsilon -- and the usual mistakes are named: post-norm instead of pre-norm, a
missing residual, a residual that adds the normalised input, the mask not passed on, a
linear feed-forward network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils import attention as ref
from utils.checks._core import call, expect_shape, fail, filled, kind, matches, ok, to_array


def _sublayers(block: Any) -> tuple[Any, list[Any], Callable[[Any], Any]]:
    """The block's attention layer, its LayerNorms and its feed-forward network."""
    import keras
    from keras import layers

    # Sub-layers the block holds directly and has used (built), each once.
    direct = list({id(lay): lay for lay in block._flatten_layers(include_self=False, recursive=False)
                   if lay.built}.values())
    norms = [lay for lay in direct if isinstance(lay, layers.LayerNormalization)]
    attn = [lay for lay in direct if isinstance(lay, layers.MultiHeadAttention) or hasattr(lay, "num_heads")]
    seqs = [lay for lay in direct if isinstance(lay, keras.Sequential)]
    denses = [lay for lay in direct if isinstance(lay, layers.Dense)]
    if len(attn) != 1:
        fail(f"The block has {len(attn)} attention layers as attributes; give it exactly one "
             "(self.attention = layers.MultiHeadAttention(...)).")
    if len(norms) != 2:
        fail(f"The block has {len(norms)} LayerNormalization layers as attributes; a pre-norm block has two, one "
             "before the attention and one before the feed-forward network.")
    if len(seqs) == 1 and not denses:
        ffn: Callable[[Any], Any] = lambda h: seqs[0](h, training=False)  # noqa: E731
    elif len(denses) == 2 and not seqs:
        ffn = lambda h: denses[1](denses[0](h))  # noqa: E731
    else:
        fail("Write the feed-forward network as one keras.Sequential of two Dense layers (or two Dense attributes), "
             "so the check can find it.")
    return attn[0], norms, ffn


def encoder_block(block_class: Callable[..., Any]) -> None:
    """``block_class(d_model, num_heads, ff_dim, dropout)`` must be a pre-norm encoder
    block: ``x + attention(norm1(x))`` (self-attention with the given
    ``attention_mask``), then ``+ ffn(norm2(...))``, the FFN with a non-linearity; the
    output has the input's shape. Compared with the block's own sub-layers wired that
    way, with random LayerNorm scales and shifts so the order of every piece shows."""
    import keras

    filled(block_class, "EncoderBlock")
    d_model, num_heads, ff_dim = 16, 4, 32
    block = call(block_class, d_model, num_heads, ff_dim, 0.1, what="EncoderBlock(16, 4, 32, dropout=0.1)")
    if not isinstance(block, keras.layers.Layer):
        fail(f"EncoderBlock(...) made {kind(block)}; subclass keras.layers.Layer.")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, d_model)).astype("float32")
    mask = ref.causal_mask(6)[None]
    label = "block(x, attention_mask=mask, training=False)"
    out = to_array(call(block, x, attention_mask=mask, training=False, what=label), label)
    expect_shape(out, x.shape, label, hint="An encoder block keeps the shape: (batch, T, d_model).")
    attn, norms, ffn = _sublayers(block)
    for norm in norms:  # LayerNorms that do something, so that every wiring gives a different answer
        norm.gamma.assign(rng.uniform(0.5, 1.5, d_model).astype("float32"))
        norm.beta.assign(rng.normal(0, 0.5, d_model).astype("float32"))

    def run(b: Any, **kw: Any) -> np.ndarray:
        return to_array(call(b, x, training=False, what=label, **kw), label)

    out = run(block, attention_mask=mask)
    out_no_mask = run(block, attention_mask=None)
    h = rng.normal(size=(2, 6, d_model)).astype("float32")
    if np.allclose(np.asarray(ffn(h)) + np.asarray(ffn(-h)), 2 * np.asarray(ffn(np.zeros_like(h))), atol=1e-5):
        fail("The feed-forward network is linear: give its first Dense layer an activation (relu or gelu).")

    def att(q: Any, m: Any) -> Any:
        return attn(q, q, attention_mask=m, training=False)

    def pre(n1: Any, n2: Any, m: Any) -> np.ndarray:
        y = x + att(n1(x), m)
        return np.asarray(y + ffn(n2(y)))

    def post(n1: Any, n2: Any, m: Any) -> np.ndarray:
        y = n1(x + att(x, m))
        return np.asarray(n2(y + ffn(y)))

    orders = [(norms[0], norms[1]), (norms[1], norms[0])]
    if any(matches(out, pre(a, b, mask), atol=1e-4) for a, b in orders):
        if not any(matches(out_no_mask, pre(a, b, None), atol=1e-4) for a, b in orders):
            fail("With attention_mask=None the block's output is wrong: only pass the mask on when it is given.")
        x_future = x.copy()
        x_future[:, -1] += 1.0  # with a causal mask, earlier positions must not change
        changed = to_array(call(block, x_future, attention_mask=mask, training=False, what=label), label)
        if not np.allclose(changed[:, :-1], out[:, :-1], atol=1e-5):
            fail("With a causal mask, changing the last position changed earlier outputs: pass attention_mask to "
                 "the attention layer.")
        ok("EncoderBlock is a pre-norm block: x + attention(norm(x)), then + ffn(norm(.)), with the mask passed on.")
        return
    if any(matches(out, pre(a, b, None), atol=1e-4) for a, b in orders):
        fail("The attention_mask is not used: pass it to the attention layer "
             "(self.attention(h, h, attention_mask=attention_mask)).")
    if any(matches(out, post(a, b, mask), atol=1e-4) for a, b in orders):
        fail("This is a post-norm block (LayerNorm after each residual sum, as in the 2017 paper). Here the block is "
             "pre-norm: normalise the *input* of each sub-layer and add the sub-layer's output to the un-normalised "
             "x: x = x + attention(norm1(x)); x = x + ffn(norm2(x)).")
    for a, b in orders:
        n_x = a(x)
        y_attn = np.asarray(att(n_x, mask))
        candidates = {
            "The attention sub-layer has no residual connection: add its output to x (x = x + attention(norm1(x))).":
                [y_attn + np.asarray(ffn(b(y_attn)))],
            "The feed-forward sub-layer has no residual connection: add its output to its input "
            "(x = x + ffn(norm2(x))).": [np.asarray(ffn(b(x + y_attn)))],
            "The residual adds the normalised x; add the sub-layer's output to the un-normalised x "
            "(x = x + attention(norm1(x))).": [np.asarray(n_x + y_attn) + np.asarray(ffn(b(n_x + y_attn)))],
            "The feed-forward network reads the attention's input instead of the sum after the first residual: "
            "x = x + attention(norm1(x)) first, then x = x + ffn(norm2(x)).":
                [np.asarray(x + y_attn + ffn(b(x)))],
        }
        for message, outs in candidates.items():
            if any(matches(out, c, atol=1e-4) for c in outs):
                fail(message)
    fail("The block's output is not x + attention(norm1(x)) followed by + ffn(norm2(.)) (self-attention: query, key "
         "and value are all norm1(x)). Check the order of the sub-layers and the residual connections.")
