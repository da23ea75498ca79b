"""The reference attention of utils.attention: it equals Keras's own layers where Keras
has them, and its masks, heads and encodings have the properties the notebook teaches."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from utils import attention, plots


def test_reference_attention_equals_keras_multi_head_attention_head_by_head():
    """Keras's MultiHeadAttention with identity projections is the reference SDPA per head."""
    rng = np.random.default_rng(0)
    heads, depth, length = 2, 4, 5
    x = rng.normal(size=(3, length, heads * depth)).astype("float32")
    mha = layers.MultiHeadAttention(num_heads=heads, key_dim=depth)
    mha(x, x)
    eye = np.eye(heads * depth, dtype="float32")
    for dense in (mha.query_dense, mha.key_dense, mha.value_dense):
        dense.set_weights([eye.reshape(heads * depth, heads, depth), np.zeros((heads, depth), "float32")])
    mha.output_dense.set_weights([eye.reshape(heads, depth, heads * depth), np.zeros(heads * depth, "float32")])
    mask = np.broadcast_to(attention.causal_mask(length), (3, length, length))
    theirs, their_weights = mha(x, x, attention_mask=mask, return_attention_scores=True)
    split = attention.split_heads(x, heads)
    ours, our_weights = attention.scaled_dot_product_attention(split, split, split, mask[:, None])
    np.testing.assert_allclose(np.asarray(attention.merge_heads(ours)), np.asarray(theirs), atol=1e-5)
    np.testing.assert_allclose(np.asarray(our_weights), np.asarray(their_weights), atol=1e-6)


def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 6, 8)).astype("float32") * 10
    _, weights = attention.scaled_dot_product_attention(q, q, q, attention.padding_mask([6, 2], 6))
    weights = np.asarray(weights)
    assert (weights[1, :, 2:] == 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


def test_causal_attention_ignores_the_future():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 7, 4)).astype("float32")
    changed = x.copy()
    changed[:, 5:] += 3.0
    mask = attention.causal_mask(7)
    before = np.asarray(attention.scaled_dot_product_attention(x, x, x, mask)[0])
    after = np.asarray(attention.scaled_dot_product_attention(changed, changed, changed, mask)[0])
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-6)
    assert not np.allclose(before[:, 5:], after[:, 5:])


def test_split_and_merge_heads_are_inverse_and_keep_feature_blocks_together():
    x = np.arange(2 * 3 * 12, dtype="float32").reshape(2, 3, 12)
    split = np.asarray(attention.split_heads(x, 4))
    assert split.shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(split[1, 2, 0], x[1, 0, 6:9])  # head 2 = features 6..8
    np.testing.assert_array_equal(np.asarray(attention.merge_heads(split)), x)
    with pytest.raises(ValueError, match="equal heads"):
        attention.split_heads(x, 5)


def test_sinusoidal_layouts_hold_the_same_values_and_encode_relative_position_as_a_rotation():
    inter = attention.sinusoidal_encoding(50, 16, "interleaved")
    concat = attention.sinusoidal_encoding(50, 16, "concatenated")
    np.testing.assert_allclose(np.sort(inter, axis=1), np.sort(concat, axis=1), atol=1e-6)
    np.testing.assert_allclose(inter[:, 0::2], concat[:, :8], atol=1e-6)
    assert np.abs(inter).max() <= 1.0 and (inter[0, 0::2] == 0).all() and (inter[0, 1::2] == 1).all()
    # PE(p + k) is a fixed rotation of PE(p) for each frequency: the rotation for k = 3 is the same at p = 5 and p = 20
    k = 3
    for i in range(8):
        a, b = inter[:, 2 * i], inter[:, 2 * i + 1]
        angle_5 = np.arctan2(b[5 + k] * a[5] - a[5 + k] * b[5], a[5 + k] * a[5] + b[5 + k] * b[5])
        angle_20 = np.arctan2(b[20 + k] * a[20] - a[20 + k] * b[20], a[20 + k] * a[20] + b[20 + k] * b[20])
        assert angle_5 == pytest.approx(angle_20, abs=1e-4)
    with pytest.raises(ValueError, match="even depth"):
        attention.sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="layout"):
        attention.sinusoidal_encoding(4, 4, "stacked")


def test_masks_reject_bad_sizes():
    with pytest.raises(ValueError, match="at least 1"):
        attention.causal_mask(0)
    with pytest.raises(ValueError, match="lengths"):
        attention.padding_mask([3, 7], 5)


def test_attention_heatmaps_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="same shape"):
        plots.attention_heatmaps({"a": np.ones((2, 2)), "b": np.ones((3, 3))})
    with pytest.raises(ValueError, match="at least one"):
        plots.attention_heatmaps({})
    fig = plots.attention_heatmaps({"big": np.full((20, 20), 0.05)})
    assert not fig.axes[0].texts  # no numbers written in a large map


def test_keras_mha_weight_layout_is_the_one_split_heads_assumes():
    """The notebook copies Keras's kernels into plain Dense layers by reshaping: check the
    reshaped kernels give Keras's projections head by head."""
    mha = layers.MultiHeadAttention(num_heads=3, key_dim=2)
    x = keras.random.normal((1, 4, 6), seed=0)
    mha(x, x)
    kernel, bias = mha.query_dense.get_weights()
    assert kernel.shape == (6, 3, 2) and bias.shape == (3, 2)
    projected = np.asarray(x) @ kernel.reshape(6, 6) + bias.reshape(6)
    keras_projected = np.asarray(mha.query_dense(x))  # (1, 4, heads, key_dim)
    np.testing.assert_allclose(np.asarray(attention.split_heads(projected, 3)),
                               keras_projected.transpose(0, 2, 1, 3), atol=1e-5)
