"""The check of notebook 08 accepts encoder blocks written in different ways (a feed-forward
network as a Sequential or as two Dense layers created in any order, ReLU or GELU, norms
created in another order, keyword arguments to the attention, functional
``keras.random.dropout`` instead of a Dropout layer, ``training`` left to Keras) and
rejects the classic mistakes of ``__init__`` (heads as wide as the model, heads and head
size swapped, an activation on the FFN's last layer, a wrong hidden width, a linear FFN,
a hard-coded or ignored dropout rate, one LayerNorm) and of ``call`` (post-norm, a mask
not passed on, missing residuals, a residual that adds the normalised input, a
feed-forward network that reads the wrong tensor, a LayerNorm never used, dropout
missing or misplaced or acting at inference, a change of shape)."""

from __future__ import annotations

import keras
import numpy as np
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
    last_activation = None
    two_dense = False
    reversed_dense = False
    heads = "split"  # "split": d_model // num_heads; "wide": d_model; "swapped"
    hidden = "ff_dim"  # or "d_model"
    dropout_rate = None  # a hard-coded rate instead of the argument
    attention_dropout = True
    drop = ("attention", "ffn")  # which sub-layer outputs go through dropout
    drop_training = None  # True: dropout forced on, also at inference
    drop_input = False  # dropout on the attention's input instead of its output
    ffn_dropout = False  # a Dropout inside the feed-forward network too
    norm = "layer"  # "batch": BatchNormalization instead
    extra_hidden = False  # three Dense layers
    double_activation = False  # the activation applied a second time, as a layer
    attention_training = None  # False: the attention forced into inference mode
    drop_sum = False  # dropout on x + attention instead of on the attention's output

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        norm = layers.LayerNormalization if self.norm == "layer" else layers.BatchNormalization
        self.norm1 = norm(epsilon=1e-6)
        self.norm2 = norm(epsilon=1e-6)
        heads, key_dim = {"split": (num_heads, d_model // num_heads), "wide": (num_heads, d_model),
                          "swapped": (d_model // num_heads, num_heads)}[self.heads]
        self.attention = layers.MultiHeadAttention(heads, key_dim=key_dim,
                                                   dropout=dropout if self.attention_dropout else 0.0)
        units = ff_dim if self.hidden == "ff_dim" else d_model
        if self.two_dense:
            if self.reversed_dense:
                self.dense2 = layers.Dense(d_model, activation=self.last_activation)
                self.dense1 = layers.Dense(units, activation=self.activation)
            else:
                self.dense1 = layers.Dense(units, activation=self.activation)
                self.dense2 = layers.Dense(d_model, activation=self.last_activation)
        else:
            inner = [layers.Dropout(dropout)] if self.ffn_dropout else []  # as in keras-io's ViT: also correct
            extra = [layers.Dense(units, activation=self.activation)] if self.extra_hidden else []
            extra += [layers.Activation(self.activation)] if self.double_activation else []
            self.ffn = keras.Sequential([layers.Dense(units, activation=self.activation), *inner, *extra,
                                         layers.Dense(d_model, activation=self.last_activation)])
        self.dropout = layers.Dropout(dropout if self.dropout_rate is None else self.dropout_rate)

    def feed_forward(self, h):
        return self.dense2(self.dense1(h)) if self.two_dense else self.ffn(h)

    def drop_out(self, branch, h, training):
        if branch not in self.drop:
            return h
        return self.dropout(h, training=training if self.drop_training is None else self.drop_training)

    def call(self, x, attention_mask=None, training=False):
        mask = attention_mask if self.use_mask else None
        w = self.wiring
        if w == "post":
            x = self.norm1(x + self.attention(x, x, attention_mask=mask))
            return self.norm2(x + self.feed_forward(x))
        h = self.norm1(x)
        if self.drop_input:
            a = self.attention(self.dropout(h, training=training), h, attention_mask=mask, training=training)
        else:
            mode = training if self.attention_training is None else self.attention_training
            a = self.drop_out("attention", self.attention(h, h, attention_mask=mask, training=mode), training)
        if w == "no_attention_residual":
            x = a
        elif w == "normalised_residual":
            x = h + a
        elif w == "ffn_reads_input":
            return x + a + self.feed_forward(self.norm2(x))
        elif w == "ffn_unnormalised":
            x = x + a
            return x + self.feed_forward(x)
        elif w == "attention_unnormalised":
            x = x + self.attention(x, x, attention_mask=mask)
            return x + self.feed_forward(self.norm2(x))
        elif self.drop_sum:
            x = self.dropout(x + self.attention(h, h, attention_mask=mask, training=training), training=training)
        else:
            x = x + a
        f = self.drop_out("ffn", self.feed_forward(self.norm2(x)), training)
        return f if w == "no_ffn_residual" else x + f


def block_with(**attrs):
    return type("Variant", (Block,), attrs)


class NumpyDropout(Block):
    """Dropout by a NumPy mask: new at every eager call, drawn once inside a tf.function."""

    def drop_out(self, branch, h, training):
        if not training:
            return h
        rate = self.dropout.rate
        return h * ((np.random.random(tuple(h.shape)) >= rate).astype("float32") / (1 - rate))


class FunctionalStyleBlock(layers.Layer):
    """Correct, written differently: relu, norms created in another order, keyword arguments
    to the attention, functional dropout with its own seed generator."""

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1):
        super().__init__()
        self.ln_b = layers.LayerNormalization()
        self.mha = layers.MultiHeadAttention(num_heads=num_heads, key_dim=d_model // num_heads, dropout=dropout)
        self.ln_a = layers.LayerNormalization()
        self.mlp = keras.Sequential([layers.Dense(ff_dim), layers.ReLU(), layers.Dense(d_model)])
        self.rate = dropout
        self.seeds = keras.random.SeedGenerator(1)

    def _drop(self, h, training):
        return keras.random.dropout(h, self.rate, seed=self.seeds) if training and self.rate > 0 else h

    def call(self, inputs, attention_mask=None, training=None):
        normed = self.ln_a(inputs)
        attended = self.mha(query=normed, value=normed, key=normed, attention_mask=attention_mask, training=training)
        inputs = inputs + self._drop(attended, training)
        return inputs + self._drop(self.mlp(self.ln_b(inputs)), training)


class ListAndAdd(layers.Layer):
    """Correct, written differently: the feed-forward network as a list of layers, layers.Add for the
    residuals, value_dim and output_shape given explicitly, one Dropout layer per sub-layer."""

    def __init__(self, d_model, num_heads, ff_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.n1, self.n2 = layers.LayerNormalization(), layers.LayerNormalization()
        self.att = layers.MultiHeadAttention(num_heads, key_dim=d_model // num_heads,
                                             value_dim=d_model // num_heads, output_shape=d_model, dropout=dropout)
        self.ffn = [layers.Dense(ff_dim, activation=keras.activations.gelu), layers.Dense(d_model)]
        self.drop1, self.drop2 = layers.Dropout(rate=dropout), layers.Dropout(rate=dropout)
        self.add = layers.Add()

    def call(self, x, attention_mask=None, training=None):
        h = self.n1(x)
        x = self.add([x, self.drop1(self.att(h, h, h, attention_mask=attention_mask))])
        f = self.n2(x)
        for layer in self.ffn:
            f = layer(f)
        return self.add([x, self.drop2(f)])


class NoTrainingArgument(Block):
    """Correct: `training` is not in the signature; Keras passes the mode on to the sub-layers."""

    def call(self, x, attention_mask=None):
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, attention_mask=attention_mask))
        return x + self.dropout(self.ffn(self.norm2(x)))


@pytest.mark.parametrize("block_class", [Block, block_with(two_dense=True), block_with(activation="relu"),
                                         block_with(two_dense=True, reversed_dense=True), FunctionalStyleBlock,
                                         NoTrainingArgument, block_with(ffn_dropout=True), ListAndAdd])
def test_encoder_block_accepts(block_class, capsys):
    transformers.encoder_block(block_class)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "block_class, fragment",
    [
        # __init__
        (block_with(heads="wide"), "as wide as the model"),
        (block_with(heads="swapped"), "swapped"),
        (block_with(last_activation="relu"), "last layer has an activation"),
        (block_with(last_activation="sigmoid"), "last layer has an activation"),
        (block_with(last_activation="tanh", two_dense=True), "last layer has an activation"),
        (block_with(last_activation="gelu"), "last layer has an activation"),
        (block_with(last_activation="softmax"), "last layer has an activation"),
        (block_with(extra_hidden=True), "units"),
        (block_with(norm="batch"), "0 LayerNormalization"),
        (block_with(hidden="d_model"), "units"),
        (block_with(activation=None), "linear"),
        (block_with(dropout_rate=0.1), "hard-coded"),
        (block_with(attention_dropout=False), "MultiHeadAttention with dropout=0"),
        (type("FixedRate", (FunctionalStyleBlock,), {"rate": property(lambda self: 0.1, lambda self, v: None)}),
         "drops [0-9]+% of the attention.*hard-coded"),
        # call
        (block_with(wiring="post"), "post-norm"),
        (block_with(use_mask=False), "mask is not used"),
        (block_with(wiring="no_attention_residual"), "attention sub-layer has no residual"),
        (block_with(wiring="no_ffn_residual"), "feed-forward sub-layer has no residual"),
        (block_with(wiring="normalised_residual"), "un-normalised"),
        (block_with(wiring="ffn_reads_input"), "reads the attention's input"),
        (block_with(wiring="ffn_unnormalised"), "never used"),
        (block_with(wiring="attention_unnormalised"), "attention reads x without normalising"),
        (block_with(drop=()), "attention sub-layer's output is added to x without dropout"),
        (block_with(drop=("attention",)), "feed-forward sub-layer's output is added to x without dropout"),
        (block_with(drop=("ffn",)), "attention sub-layer's output is added to x without dropout"),
        (block_with(drop_training=True), "inference"),
        (block_with(drop_input=True, drop=("ffn",)), "not dropped out as a whole"),
        (block_with(drop_sum=True), "not dropped out as a whole"),
        (block_with(attention_training=False), "attention layer runs in inference mode"),
        (block_with(double_activation=True), "an activation applied twice"),
        (NumpyDropout, "draws one mask, when the step is traced"),
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


def ffn_written(kind):
    """A correct pre-norm block whose feed-forward network is written another way: two
    Dense attributes with the non-linearity as a layer of its own or applied in call(), or
    a feed-forward layer of the learner's own; ``"linear_call"`` forgets the non-linearity."""

    class FeedForward(layers.Layer):
        def __init__(self, ff_dim, d_model):
            super().__init__()
            self.inner, self.outer = layers.Dense(ff_dim, activation="relu"), layers.Dense(d_model)

        def call(self, h):
            return self.outer(self.inner(h))

    class Written(layers.Layer):
        def __init__(self, d_model, num_heads, ff_dim, dropout=0.0):
            super().__init__()
            self.attn = layers.MultiHeadAttention(num_heads, d_model // num_heads, dropout=dropout)
            self.norm1, self.norm2 = layers.LayerNormalization(), layers.LayerNormalization()
            self.drop1, self.drop2 = layers.Dropout(dropout), layers.Dropout(dropout)
            if kind == "own_layer":
                self.ffn = FeedForward(ff_dim, d_model)
            else:
                self.dense1, self.dense2 = layers.Dense(ff_dim), layers.Dense(d_model)
                if kind == "activation_layer":
                    self.act = layers.Activation("gelu")

        def feed_forward(self, h):
            if kind == "own_layer":
                return self.ffn(h)
            if kind == "activation_layer":
                return self.dense2(self.act(self.dense1(h)))
            if kind == "gelu_in_call":
                return self.dense2(keras.activations.gelu(self.dense1(h)))
            if kind == "relu_in_call":
                return self.dense2(keras.ops.relu(self.dense1(h)))
            return self.dense2(self.dense1(h))

        def call(self, x, attention_mask=None, training=False):
            h = self.norm1(x)
            x = x + self.drop1(self.attn(h, h, attention_mask=attention_mask, training=training), training=training)
            return x + self.drop2(self.feed_forward(self.norm2(x)), training=training)

    return Written


@pytest.mark.parametrize("kind", ["activation_layer", "gelu_in_call", "relu_in_call", "own_layer"])
def test_encoder_block_accepts_a_feed_forward_network_written_another_way(kind, capsys):
    transformers.encoder_block(ffn_written(kind))
    assert "[ok]" in capsys.readouterr().out


def test_encoder_block_rejects_two_dense_layers_with_no_activation_between_them():
    with pytest.raises(CheckError, match="feed-forward network is linear"):
        transformers.encoder_block(ffn_written("linear_call"))


class MaskByPosition(Block):
    """The mask given to MultiHeadAttention as its third positional argument, which is `key`."""

    def call(self, x, attention_mask=None, training=False):
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, h, attention_mask), training=training)
        return x + self.dropout(self.feed_forward(self.norm2(x)), training=training)


def test_encoder_block_says_a_mask_passed_by_position_lands_in_key():
    with pytest.raises(CheckError, match="lands in `key`"):
        transformers.encoder_block(MaskByPosition)
