"""Checks for ``notebooks/08_transformers.ipynb``: the pre-norm encoder block.

The check builds the learner's block with sizes of its own (every size different, so no
mix-up hides), gives the LayerNorms and the feed-forward network random weights (so the
order of every piece shows whatever the learner's initialisers), and compares the
block's output with its own sub-layers wired the pre-norm way. Any correct block passes
-- a ``keras.Sequential`` feed-forward network, two ``Dense`` attributes (the
non-linearity as their ``activation``, a layer of its own or a function applied in
``call``) or a feed-forward layer of the learner's own, ReLU or GELU, any LayerNorm
epsilon, ``layers.Dropout`` or ``keras.random.dropout`` -- and the usual mistakes are
named:

- ``__init__``: attention heads as wide as the model instead of ``d_model // num_heads``,
  the head count and head size swapped, a feed-forward network without a non-linearity,
  with an activation on its last layer, or with the wrong hidden width, one LayerNorm
  missing or shared, a dropout rate hard-coded instead of the ``dropout`` argument (in
  the ``Dropout`` layers or in ``MultiHeadAttention``);
- ``call``: post-norm instead of pre-norm, a missing residual, a residual that adds the
  normalised input, the mask not passed on, a LayerNorm never used, dropout missing on a
  sub-layer's output, or dropout acting at inference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils import attention as ref
from utils.checks._core import call, expect_shape, fail, filled, kind, matches, ok, to_array

# Every size different (and num_heads != d_model // num_heads), so a swapped argument shows.
D_MODEL, NUM_HEADS, FF_DIM, LENGTH = 24, 4, 40, 6
KEY_DIM = D_MODEL // NUM_HEADS
RATE = 0.5  # not the notebook's 0.1, so a hard-coded default shows


def _layers_of(block: Any, recursive: bool) -> list[Any]:
    return list({id(lay): lay for lay in block._flatten_layers(include_self=False, recursive=recursive)}.values())


def _sublayers(block: Any) -> tuple[Any, list[Any], list[Any], Any]:
    """The block's attention layer, its two LayerNorms, its feed-forward network's
    Dense layers (first, last) and the object to call as the network."""
    import keras
    from keras import layers

    direct = _layers_of(block, recursive=False)
    norms = [lay for lay in direct if isinstance(lay, layers.LayerNormalization)]
    attn = [lay for lay in direct if isinstance(lay, layers.MultiHeadAttention) or hasattr(lay, "num_heads")]
    seqs = [lay for lay in direct if isinstance(lay, keras.Sequential)]
    denses = [lay for lay in direct if isinstance(lay, layers.Dense)]
    if len(attn) != 1:
        fail(f"The block has {len(attn)} attention layers as attributes; give it exactly one "
             "keras.layers.MultiHeadAttention, created in __init__.")
    if len(norms) < 2:
        fail(f"The block has {len(norms)} LayerNormalization layer(s); a pre-norm block needs two of its own, one in "
             "front of the attention and one in front of the feed-forward network (one shared LayerNorm would make "
             "both sub-layers share its scale and shift).")
    if len(norms) > 2:
        fail(f"The block has {len(norms)} LayerNormalization layers; a pre-norm block has two, one in front of each "
             "sub-layer.")
    unused = [lay.name for lay in norms if not lay.built]
    if unused:
        fail(f"The LayerNormalization {unused[0]!r} is created in __init__ but never used in call: each sub-layer "
             "reads its own normalised input.")
    if len(seqs) == 1 and not denses:
        ffn_denses = [lay for lay in _layers_of(seqs[0], recursive=True) if isinstance(lay, layers.Dense)]
        return attn[0], norms, ffn_denses, seqs[0]
    if len(denses) == 2 and not seqs:
        # Whatever order they were created in: the first reads d_model features.
        first, last = sorted(denses, key=lambda lay: int(lay.kernel.shape[0]) != D_MODEL)
        if first.activation is not keras.activations.linear:
            return attn[0], norms, [first, last], lambda h, training=False: last(first(h))
        # The non-linearity is a layer of its own, or a function applied in call(): found by what the block does.
        acts = [lay for lay in direct if isinstance(lay, _activation_layers())]
        if len(acts) == 1:
            return attn[0], norms, [first, last], lambda h, training=False: last(acts[0](first(h)))
        return attn[0], norms, [first, last], _Between(first, last)
    others = [lay for lay in direct if not isinstance(lay, (layers.LayerNormalization, layers.Dropout))
              and lay is not attn[0]]
    if not seqs and not denses and len(others) == 1:
        inner = [lay for lay in _layers_of(others[0], recursive=True) if isinstance(lay, layers.Dense)]
        if len(inner) == 2:  # a feed-forward layer of the learner's own
            return attn[0], norms, inner, lambda h, training=False: others[0](h, training=training)
    fail("Could not find the feed-forward network among the block's layers: as TODO 1 asks, make it one "
         "keras.Sequential of two Dense layers, two Dense attributes of the block, or one layer of your own "
         "holding the two Dense layers.")


def _activation_layers() -> tuple[type, ...]:
    from keras import layers

    return (layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.PReLU, layers.Lambda)


class _Between:
    """A feed-forward network of two Dense layers whose non-linearity the block applies in
    call(): the check tries the usual ones (linear first) and keeps the one under which the
    block's output is the pre-norm wiring (:func:`_resolve`); until then, linear."""

    def __init__(self, first: Any, last: Any) -> None:
        self.first, self.last, self.activation = first, last, (lambda h: h)

    def __call__(self, h: Any, training: bool = False) -> Any:
        return self.last(self.activation(self.first(h)))


def _candidate_activations() -> list[Callable[[Any], Any]]:
    import keras

    ops = keras.ops
    return [lambda h: h, keras.activations.gelu, lambda h: keras.activations.gelu(h, approximate=True),
            keras.activations.relu, keras.activations.silu, keras.activations.elu, ops.tanh,
            lambda h: keras.activations.leaky_relu(h, 0.2), lambda h: keras.activations.leaky_relu(h, 0.3),
            keras.activations.selu, keras.activations.sigmoid]


def _resolve(ffn: Any, block: Any, attn: Any, norms: list[Any], x: np.ndarray, mask: np.ndarray, label: str) -> None:
    """For a :class:`_Between` network: the activation under which the block's output is
    the pre-norm wiring, if any (otherwise GELU, the notebook's, so the wiring is judged)."""
    import keras

    if not isinstance(ffn, _Between):
        return
    out = _output(block, x, label, attention_mask=mask, training=False)
    for activation in _candidate_activations():
        ffn.activation = activation
        for a, b in ((norms[0], norms[1]), (norms[1], norms[0])):
            y = x + np.asarray(attn(a(x), a(x), attention_mask=mask, training=False))
            if matches(out, y + np.asarray(ffn(b(y))), atol=1e-4):
                return
    ffn.activation = keras.activations.gelu


def _check_attention_layer(attn: Any, dropout: float) -> None:
    heads = getattr(attn, "num_heads", None)
    key_dim = getattr(attn, "key_dim", None)
    if heads == KEY_DIM and key_dim == NUM_HEADS:
        fail(f"MultiHeadAttention got the number of heads and the head size swapped: {heads} heads of {key_dim} "
             f"features for EncoderBlock(d_model={D_MODEL}, num_heads={NUM_HEADS}). Its first argument is the number "
             "of heads, the second the width of one head.")
    if heads != NUM_HEADS:
        fail(f"The attention layer has {heads} heads for EncoderBlock(d_model={D_MODEL}, num_heads={NUM_HEADS}): "
             "give it num_heads heads.")
    if key_dim == D_MODEL:
        fail(f"Each attention head is as wide as the model (key_dim={key_dim} for d_model={D_MODEL}): "
             f"{NUM_HEADS} heads would then cost {NUM_HEADS} times a single full-width attention. Split the model's "
             f"features between the heads: how wide is one head's slice if {NUM_HEADS} of them make up "
             f"{D_MODEL}?")
    if key_dim is not None and key_dim != KEY_DIM:
        fail(f"Each attention head has key_dim={key_dim}; for d_model={D_MODEL} and num_heads={NUM_HEADS} the heads "
             f"together should be as wide as the model, {NUM_HEADS} slices of the model's features.")
    value_dim = getattr(attn, "value_dim", None)
    if value_dim is not None and value_dim != KEY_DIM:
        fail(f"The attention heads' value_dim is {value_dim}, expected the width of one head, {KEY_DIM} "
             "(leave value_dim out and Keras uses key_dim).")
    rate = getattr(attn, "dropout", None)
    if isinstance(rate, (int, float)) and not np.isclose(rate, dropout):
        fail(f"EncoderBlock(..., dropout={dropout}) made a MultiHeadAttention with dropout={rate}: give the attention "
             "layer the block's dropout argument too (it drops attention weights while training).")


def _randomise(weights: list[Any], rng: np.random.Generator) -> None:
    for w in weights:
        shape = tuple(int(s) for s in w.shape)
        scale = 1 / np.sqrt(shape[0]) if len(shape) > 1 else 0.5
        w.assign(rng.normal(0, scale, shape).astype("float32"))


def _check_ffn(ffn: Any, ffn_denses: list[Any], rng: np.random.Generator) -> None:
    n_weights = sum(int(np.prod(w.shape)) for lay in ffn_denses for w in lay.weights)
    expected = 2 * D_MODEL * FF_DIM + FF_DIM + D_MODEL
    if n_weights != expected:
        widths = [int(lay.units) for lay in ffn_denses]
        fail(f"The feed-forward network's Dense layers have {widths} units ({n_weights} weights) for "
             f"EncoderBlock(d_model={D_MODEL}, ff_dim={FF_DIM}); expected two Dense layers, {FF_DIM} units (ff_dim, "
             f"with the activation) then {D_MODEL} (d_model), {expected} weights.")
    h = rng.normal(size=(2, LENGTH, D_MODEL)).astype("float32")
    run = lambda z: np.asarray(ffn(z, training=False))
    if np.allclose(run(h) + run(-h), 2 * run(np.zeros_like(h)), atol=1e-4):
        fail("The feed-forward network is linear: give its first Dense layer an activation (gelu, or relu).")
    big = run(10 * h)
    low, high = float(big.min()), float(big.max())
    if low > -2.0 or high < 2.0:  # a linear last layer reaches about ±10 here
        fail(f"The feed-forward network's outputs stay between {low:.3g} and {high:.3g} even for large inputs: its "
             "last layer has an activation. Its output is added to the residual stream, which must be free to go up "
             "and down: leave the last Dense layer linear (no activation), the non-linearity goes in the first.")
    # Exactly dense -> one activation -> dense, computed from the two layers' own weights.
    first, last = sorted(ffn_denses, key=lambda lay: int(lay.kernel.shape[0]) != D_MODEL)
    hidden = h @ np.asarray(first.kernel) + (np.asarray(first.bias) if first.bias is not None else 0.0)
    out = run(h)
    for activation in _candidate_activations()[1:]:
        inner = np.asarray(activation(hidden))
        if matches(out, inner @ np.asarray(last.kernel) + (np.asarray(last.bias) if last.bias is not None else 0.0),
                   atol=1e-4):
            return
    fail("The feed-forward network does not compute dense -> activation -> dense: something else happens between "
         "or around its two Dense layers (an activation applied twice, a layer in between?). It is the first Dense "
         "layer with its activation, then the second, linear.")


def _block_hint(error: str) -> str:
    """What an error raised inside the learner's block most likely means."""
    low = error.lower()
    if "reshape" in low or "incompatible shapes" in low or "dimensions must be equal" in low:
        return ("MultiHeadAttention takes (query, value, key=None, attention_mask=None): a mask passed by position "
                "lands in `key`. Pass it by name, attention_mask=..., and check that each sub-layer keeps the shape "
                "(batch, T, d_model).")
    return ""


def _output(block: Any, x: np.ndarray, label: str, **kw: Any) -> np.ndarray:
    return to_array(call(block, x, what=label, hint=_block_hint, **kw), label)


def _check_branch_dropout(block: Any, attn: Any, norms: list[Any], ffn_denses: list[Any], ffn: Any,
                          x: np.ndarray, mask: np.ndarray, branch: str) -> None:
    """With the other sub-layer's output made exactly zero (all its weights 0) and the
    attention's own dropout of weights off, ``block(x, training=True) - x`` must be the
    sub-layer's output with a fraction ``RATE`` of its entries dropped and the others
    scaled by ``1 / (1 - RATE)``."""
    import keras

    label = "block(x, attention_mask=mask, training=True)"
    inner = getattr(attn, "_dropout_layer", None)
    if inner is not None and branch == "attention":
        # Keras's attention drops attention weights itself, when it runs in training mode.
        modes: list[bool] = []
        original = inner.call

        def spy(inputs: Any, training: Any = None) -> Any:
            modes.append(bool(training))
            return original(inputs, training=training)

        inner.call = spy
        try:
            _output(block, x, label, attention_mask=mask, training=True)
        finally:
            inner.call = original
        if modes and not any(modes):
            fail("In training the attention layer runs in inference mode, so its own dropout never acts: pass the "
                 "block's training argument on to it (or leave training out and let Keras pass it on).")
    if inner is not None:
        inner.rate = 0.0  # only the residual dropout is measured here
    elif getattr(attn, "dropout", 0):
        return  # an attention layer whose own dropout cannot be switched off: not measurable
    infer = _output(block, x, label, attention_mask=mask, training=False) - x
    if branch == "attention":
        subs = [np.asarray(attn(n(x), n(x), attention_mask=mask, training=False)) for n in norms]
        name = "attention"
    else:
        subs = [np.asarray(ffn(n(x), training=False)) for n in norms]
        name = "feed-forward"
    sub = next((c for c in subs if matches(infer, c, atol=1e-4)), subs[0])
    got = _output(block, x, label, attention_mask=mask, training=True) - x
    if matches(got, sub, atol=1e-4):
        fail(f"In training the {name} sub-layer's output is added to x without dropout: pass it through the block's "
             f"Dropout (at rate dropout) before the residual sum, with training passed on.")
    if branch != "attention" and any(isinstance(lay, keras.layers.Dropout) for lay in getattr(ffn, "layers", [])):
        return  # a feed-forward network with its own Dropout inside: dropout acts, its place is the learner's
    live = ~np.isclose(sub, 0.0, atol=1e-5)
    dropped = np.isclose(got, 0.0, atol=1e-5) & live
    share = float(dropped.sum() / max(1, live.sum()))
    kept = live & ~dropped
    scale = got[kept] / sub[kept]
    if not kept.any() or not np.allclose(scale, np.median(scale), rtol=1e-3, atol=1e-4):
        fail(f"In training, the {name} sub-layer's output is not dropped out as a whole before the residual sum: "
             f"apply dropout to that sub-layer's output (each entry zeroed with probability dropout, the others "
             f"scaled by 1 / (1 - dropout)), then add it to x.")
    implied = 1 - 1 / float(np.median(scale))
    if abs(share - RATE) > 0.15 or abs(implied - RATE) > 0.02:
        fail(f"With dropout={RATE} the block drops {share:.0%} of the {name} sub-layer's output in training (and "
             f"scales the rest as for a rate of {implied:.2g}), expected a rate of {RATE}: the rate is hard-coded; "
             "use the block's dropout argument.")


def _fresh_dropout_when_traced(block: Any, x: np.ndarray, mask: np.ndarray) -> None:
    """Inside a ``tf.function`` (the training step), the block's dropout must draw a new mask
    at every call: NumPy random numbers are drawn once, when the function is traced."""
    import tensorflow as tf

    label = "block(x, attention_mask=mask, training=True) inside a tf.function (as the training step runs it)"
    compiled = tf.function(lambda t: block(t, attention_mask=mask, training=True))
    first = to_array(call(compiled, tf.constant(x), what=label, hint=_block_hint), label)
    second = to_array(call(compiled, tf.constant(x), what=label, hint=_block_hint), label)
    if matches(first, second, rtol=0, atol=0):
        fail(f"{label} gives the same output at every call: its dropout draws one mask, when the step is traced, "
             f"and replays it. Use keras.layers.Dropout, which draws a new mask at every step.")


def encoder_block(block_class: Callable[..., Any]) -> None:
    """``block_class(d_model, num_heads, ff_dim, dropout)`` must be a pre-norm encoder
    block: ``x + dropout(attention(norm1(x)))`` (self-attention with the given
    ``attention_mask``, heads ``d_model // num_heads`` wide), then
    ``+ dropout(ffn(norm2(.)))``, the FFN a hidden layer ``ff_dim`` wide with a
    non-linearity and a linear last layer; dropout only in training, at the given rate;
    the output has the input's shape."""
    import keras

    filled(block_class, "EncoderBlock")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, LENGTH, D_MODEL)).astype("float32")
    mask = ref.causal_mask(LENGTH)[None]
    what = f"EncoderBlock({D_MODEL}, {NUM_HEADS}, {FF_DIM}, dropout={RATE})"
    block = call(block_class, D_MODEL, NUM_HEADS, FF_DIM, RATE, what=what)
    if not isinstance(block, keras.layers.Layer):
        fail(f"EncoderBlock(...) made {kind(block)}; subclass keras.layers.Layer.")
    label = "block(x, attention_mask=mask, training=False)"
    out = _output(block, x, label, attention_mask=mask, training=False)
    expect_shape(out, x.shape, label, hint="An encoder block keeps the shape: (batch, T, d_model).")
    if not matches(out, _output(block, x, label, attention_mask=mask, training=False), atol=1e-5):
        fail("The block gives a different output each time it is called with training=False: dropout is acting at "
             "inference. Dropout must only act while training: pass the training argument on (do not force "
             "training=True).")
    attn, norms, ffn_denses, ffn = _sublayers(block)
    _check_attention_layer(attn, RATE)
    inside_attention = {id(lay) for lay in _layers_of(attn, recursive=True)}
    for lay in _layers_of(block, recursive=True):
        if isinstance(lay, keras.layers.Dropout) and id(lay) not in inside_attention and not np.isclose(lay.rate, RATE):
            fail(f"EncoderBlock(..., dropout={RATE}) made a Dropout layer with rate {lay.rate}: the rate is hard-coded. "
                 "Use the block's dropout argument.")
    _randomise([w for n in norms for w in n.weights], rng)  # LayerNorms that do something: every wiring differs
    ffn_weights = [w for lay in ffn_denses for w in lay.weights]
    _randomise(ffn_weights, rng)
    _resolve(ffn, block, attn, norms, x, mask, label)
    _check_ffn(ffn, ffn_denses, rng)
    _check_wiring(block, attn, norms, ffn, x, mask, label)

    # Dropout in training, at the block's rate, on each sub-layer's output: measured one sub-layer at a
    # time, the other one silenced (all its weights 0, so its output is exactly 0).
    saved = [np.asarray(w) for w in ffn_weights]
    for w in ffn_weights:
        w.assign(np.zeros(w.shape, "float32"))
    _check_branch_dropout(block, attn, norms, ffn_denses, ffn, x, mask, "attention")
    for w, value in zip(ffn_weights, saved):
        w.assign(value)
    for w in attn.weights:
        w.assign(np.zeros(w.shape, "float32"))
    _check_branch_dropout(block, attn, norms, ffn_denses, ffn, x, mask, "feed-forward")
    _fresh_dropout_when_traced(block, x, mask)
    ok("EncoderBlock is a pre-norm block: x + attention(norm(x)), then + ffn(norm(.)), with the mask passed on.")


def _check_wiring(block: Any, attn: Any, norms: list[Any], ffn: Any, x: np.ndarray, mask: np.ndarray,
                  label: str) -> None:
    """The block's inference output against its own sub-layers wired the pre-norm way,
    then the usual wrong wirings, each named."""
    out = _output(block, x, label, attention_mask=mask, training=False)
    out_no_mask = _output(block, x, label, attention_mask=None, training=False)

    def att(q: Any, m: Any) -> Any:
        return attn(q, q, attention_mask=m, training=False)

    def f(h: Any) -> Any:
        return ffn(h, training=False)

    def pre(n1: Any, n2: Any, m: Any) -> np.ndarray:
        y = x + att(n1(x), m)
        return np.asarray(y + f(n2(y)))

    def post(n1: Any, n2: Any, m: Any) -> np.ndarray:
        y = n1(x + att(x, m))
        return np.asarray(n2(y + f(y)))

    orders = [(norms[0], norms[1]), (norms[1], norms[0])]
    if any(matches(out, pre(a, b, mask), atol=1e-4) for a, b in orders):
        if not any(matches(out_no_mask, pre(a, b, None), atol=1e-4) for a, b in orders):
            fail("With attention_mask=None the block's output is wrong: only pass the mask on when it is given.")
        x_future = x.copy()
        x_future[:, -1] += 1.0  # with a causal mask, earlier positions must not change
        changed = _output(block, x_future, label, attention_mask=mask, training=False)
        if not np.allclose(changed[:, :-1], out[:, :-1], atol=1e-5):
            fail("With a causal mask, changing the last position changed earlier outputs: pass attention_mask to "
                 "the attention layer.")
        return
    if any(matches(out, pre(a, b, None), atol=1e-4) for a, b in orders):
        fail("The attention_mask is not used: pass it on to the attention layer (its attention_mask argument).")
    if any(matches(out, post(a, b, mask), atol=1e-4) for a, b in orders):
        fail("This is a post-norm block (LayerNorm after each residual sum, as in the 2017 paper). Here the block is "
             "pre-norm: normalise the *input* of each sub-layer and add the sub-layer's output to the un-normalised "
             "x, first for the attention, then for the feed-forward network.")
    for a, b in orders:
        n_x = a(x)
        y_attn = np.asarray(att(n_x, mask))
        candidates = {
            "The attention sub-layer has no residual connection: add its output to x.":
                [y_attn + np.asarray(f(b(y_attn)))],
            "The feed-forward sub-layer has no residual connection: add its output to its input, the sum after "
            "the attention.": [np.asarray(f(b(x + y_attn)))],
            "The residual adds the normalised x; add the sub-layer's output to the un-normalised x.":
                [np.asarray(n_x + y_attn) + np.asarray(f(b(n_x + y_attn)))],
            "The feed-forward network reads the attention's input instead of the sum after the first residual: "
            "first add the attention's output to x, then normalise that sum for the feed-forward network.":
                [np.asarray(x + y_attn + f(b(x)))],
            "The feed-forward network reads the sum without normalising it: put the second LayerNorm in front of it.":
                [np.asarray(x + y_attn + f(x + y_attn))],
            "The attention reads x without normalising it: put the first LayerNorm in front of it.":
                [np.asarray(x + att(x, mask) + f(b(x + att(x, mask))))],
        }
        for message, outs in candidates.items():
            if any(matches(out, c, atol=1e-4) for c in outs):
                fail(message)
    fail("The block's output is not x + attention(norm1(x)) followed by + ffn(norm2(.)) (self-attention: query, key "
         "and value are all norm1(x)). Check the order of the sub-layers and the residual connections.")
