"""The check of notebook 08 accepts encoder blocks written in different ways (a feed-forward
network as a Sequential or as two Dense layers, ReLU or GELU, norms created in another
order, Keras's attention with other head sizes) and rejects the classic mistakes:
post-norm, a mask not passed on, a linear feed-forward network, missing residuals, a
residual that adds the normalised input, a feed-forward network that reads the wrong
tensor, one LayerNorm shared, a change of shape."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from utils.checks import TodoNotDone, transformers
from utils.checks._core import CheckError


class UnfilledBlock(layers.Layer):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("TODO 9")


def test_the_check_reports_an_unfilled_todo():
    with pytest.raises(TodoNotDone, match="TODO 9"):
        transformers.encoder_block(UnfilledBlock)


class Block(layers.Layer):
    """Configurable pre-norm block; the defaults are right."""

    wiring = "pre"
    use_mask = True
    activation = "gelu"
    two_dense = False

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6)
        self.attention = layers.MultiHeadAttention(num_heads, key_dim=d_model // num_heads, dropout=dropout)
        if self.two_dense:
            self.dense1 = layers.Dense(ff_dim, activation=self.activation)
            self.dense2 = layers.Dense(d_model)
        else:
            self.ffn = keras.Sequential([layers.Dense(ff_dim, activation=self.activation), layers.Dense(d_model)])
        self.dropout = layers.Dropout(dropout)

    def feed_forward(self, h):
        return self.dense2(self.dense1(h)) if self.two_dense else self.ffn(h)

    def call(self, x, attention_mask=None, training=False):
        mask = attention_mask if self.use_mask else None
        w = self.wiring
        if w == "post":
            x = self.norm1(x + self.attention(x, x, attention_mask=mask))
            return self.norm2(x + self.feed_forward(x))
        h = self.norm1(x)
        a = self.dropout(self.attention(h, h, attention_mask=mask, training=training), training=training)
        if w == "no_attention_residual":
            x = a
        elif w == "normalised_residual":
            x = h + a
        elif w == "ffn_reads_input":
            return x + a + self.feed_forward(self.norm2(x))
        else:
            x = x + a
        f = self.dropout(self.feed_forward(self.norm2(x)), training=training)
        return f if w == "no_ffn_residual" else x + f


def block_with(**attrs):
    return type("Variant", (Block,), attrs)


class FunctionalStyleBlock(layers.Layer):
    """Correct, written differently: relu, a mask with a batch axis broadcast, norms created in call order."""

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.ln_a = layers.LayerNormalization()
        self.mha = layers.MultiHeadAttention(num_heads=num_heads, key_dim=8, value_dim=5, dropout=dropout)
        self.ln_b = layers.LayerNormalization()
        self.mlp = keras.Sequential([layers.Dense(ff_dim), layers.ReLU(), layers.Dropout(dropout), layers.Dense(d_model)])

    def call(self, inputs, attention_mask=None, training=None):
        normed = self.ln_a(inputs)
        inputs = inputs + self.mha(query=normed, value=normed, key=normed, attention_mask=attention_mask,
                                   training=training)
        return inputs + self.mlp(self.ln_b(inputs), training=training)


@pytest.mark.parametrize("block_class", [Block, block_with(two_dense=True), block_with(activation="relu"),
                                         FunctionalStyleBlock])
def test_encoder_block_accepts(block_class, capsys):
    transformers.encoder_block(block_class)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "block_class, fragment",
    [
        (block_with(wiring="post"), "post-norm"),
        (block_with(use_mask=False), "mask is not used"),
        (block_with(activation=None), "linear"),
        (block_with(wiring="no_attention_residual"), "attention sub-layer has no residual"),
        (block_with(wiring="no_ffn_residual"), "feed-forward sub-layer has no residual"),
        (block_with(wiring="normalised_residual"), "un-normalised"),
        (block_with(wiring="ffn_reads_input"), "reads the attention's input"),
    ],
)
def test_encoder_block_rejects(block_class, fragment):
    with pytest.raises(CheckError, match=fragment):
        transformers.encoder_block(block_class)


def test_encoder_block_rejects_a_block_without_two_norms():
    class OneNorm(Block):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.norm2 = self.norm1

    with pytest.raises(CheckError, match="LayerNormalization"):
        transformers.encoder_block(OneNorm)


def test_encoder_block_rejects_attention_over_unnormalised_values():
    class RawValues(Block):
        def call(self, x, attention_mask=None, training=False):
            x = x + self.attention(self.norm1(x), x, attention_mask=attention_mask)
            return x + self.ffn(self.norm2(x))

    with pytest.raises(CheckError, match="not x \\+ attention"):
        transformers.encoder_block(RawValues)


def test_encoder_block_rejects_a_shape_change():
    class Shrinks(Block):
        def call(self, x, attention_mask=None, training=False):
            return super().call(x, attention_mask, training)[:, :-1]

    with pytest.raises(CheckError, match="keeps the shape"):
        transformers.encoder_block(Shrinks)
