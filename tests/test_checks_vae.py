"""Checks of notebook 05 accept correct variants of each TODO (sampling written with tf or
keras.random, inline or through the layer) and reject the classic mistakes: a KL with the
wrong sign or on the wrong scale, sigma where log sigma^2 is meant, sampling that ignores
the variance, blocks the gradient or repeats its draws (a fixed seed, NumPy noise frozen
by tf.function), reconstruction averaged over pixels while the KL is summed, beta
ignored, a train step that decodes the mean, runs outside training mode, does not apply
the gradients, or swaps its trackers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils.checks import TodoNotDone, vae


# ---------------------------------------------------------------- sampling layer
def _sampling(fn):
    class Sampling(layers.Layer):
        def call(self, inputs):
            mean, log_var = inputs
            return fn(mean, log_var)

    return Sampling


RIGHT_SAMPLING = [
    lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)),
    lambda m, lv: m + tf.sqrt(tf.exp(lv)) * keras.random.normal(tf.shape(m)),
    lambda m, lv: tf.random.normal(tf.shape(m)) * tf.exp(lv / 2) + m,
]


@pytest.mark.parametrize("fn", RIGHT_SAMPLING)
def test_sampling_accepts(fn, capsys):
    vae.sampling_layer(_sampling(fn))
    assert "[ok]" in capsys.readouterr().out


def test_sampling_accepts_seeded_keras_layer(capsys):
    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            mean, log_var = inputs
            eps = keras.random.normal(keras.ops.shape(mean), seed=self.seed_generator)
            return mean + keras.ops.exp(0.5 * log_var) * eps

    vae.sampling_layer(Sampling)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda m, lv: m + 0 * lv, "ignores the variance"),
        (lambda m, lv: m + tf.exp(lv) * tf.random.normal(tf.shape(m)), "exp(log_var) used as the standard deviation"),
        (lambda m, lv: m + lv * tf.random.normal(tf.shape(m)), "log_var itself used"),
        (lambda m, lv: m + tf.random.normal(tf.shape(m)), "1 (the noise alone)"),
        (lambda m, lv: tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)), "expected the mean"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)[1:]), "same (or correlated)"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal((20_000, 4)), "batch of 3"),
        (lambda m, lv: tf.random.normal(tf.shape(m), mean=0.0) * tf.stop_gradient(tf.exp(0.5 * lv)) + m,
         "No gradient flows back to log_var"),
        # a sampler that returns the same draws on every call (a fixed stateless seed)
        (lambda m, lv: m + tf.exp(0.5 * lv) * keras.random.normal(tf.shape(m), seed=1234), "identical samples"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.stateless_normal(tf.shape(m), seed=[4, 2]), "identical samples"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.uniform(tf.shape(m)), "expected the mean"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)).numpy(), "inside a tf.function"),
        (lambda m, lv: m + tf.exp(0.5 * lv) * np.random.normal(size=m.shape).astype("float32"), "when the function is traced"),
        # the noise's shape read from .shape: fine eagerly, None while fit traces the step
        (lambda m, lv: m + tf.exp(0.5 * lv) * keras.random.normal(m.shape), "batch size unknown"),
        # one draw per example, shared by its latent dimensions
        (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal((tf.shape(m)[0], 1)), "across the latent dimensions"),
        (lambda m, lv: m + tf.sqrt(lv) * tf.random.normal(tf.shape(m)), "NaN"),
    ],
)
def test_sampling_rejects(fn, fragment, rejects):
    rejects(vae.sampling_layer, _sampling(fn), fragment=fragment)


def test_sampling_rejects_noise_fixed_at_construction(rejects):
    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.eps = {}

        def call(self, inputs):
            mean, log_var = inputs
            key = tuple(mean.shape)
            if key not in self.eps:
                self.eps[key] = tf.random.normal(tf.shape(mean))
            return mean + tf.exp(0.5 * log_var) * self.eps[key]

    rejects(vae.sampling_layer, Sampling, fragment="identical samples")


def test_sampling_unfilled_is_todo():
    class Sampling(layers.Layer):
        def call(self, inputs):
            raise NotImplementedError("TODO 1")

    with pytest.raises(TodoNotDone):
        vae.sampling_layer(Sampling)


# ---------------------------------------------------------------- KL term
RIGHT_KL = [
    lambda m, lv: -0.5 * tf.reduce_sum(1 + lv - tf.square(m) - tf.exp(lv), axis=-1),
    lambda m, lv: 0.5 * tf.reduce_sum(tf.exp(lv) + m**2 - 1 - lv, axis=1),
    lambda m, lv: keras.ops.sum(0.5 * (keras.ops.exp(lv) + keras.ops.square(m) - 1.0 - lv), axis=-1),
]


@pytest.mark.parametrize("fn", RIGHT_KL)
def test_kl_accepts(fn, capsys):
    vae.kl_term(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda m, lv: 0.5 * tf.reduce_sum(1 + lv - m**2 - tf.exp(lv), axis=-1), "sign is flipped"),
        (lambda m, lv: -tf.reduce_sum(1 + lv - m**2 - tf.exp(lv), axis=-1), "factor 1/2"),
        (lambda m, lv: -0.5 * tf.reduce_mean(1 + lv - m**2 - tf.exp(lv), axis=-1), "averages over the latent"),
        (lambda m, lv: -0.5 * tf.reduce_sum(1 + tf.math.log(tf.square(lv) + 1e-12) - m**2 - tf.square(lv), axis=-1),
         "treated as sigma (the standard deviation)"),
        (lambda m, lv: -0.5 * tf.reduce_sum(1 + lv - m**2 - tf.exp(0.5 * lv), axis=-1), "exp(log_var / 2) (sigma)"),
        (lambda m, lv: -0.5 * tf.reduce_mean(tf.reduce_sum(1 + lv - m**2 - tf.exp(lv), axis=-1)), "one number"),
        (lambda m, lv: -0.5 * (1 + lv - m**2 - tf.exp(lv)), "one value per latent dimension"),
        (lambda m, lv: -0.5 * tf.reduce_sum(lv - m**2 - tf.exp(lv), axis=-1), "must be 0"),
        (lambda m, lv: -0.5 * tf.reduce_sum(1 + lv - tf.exp(lv), axis=-1), "mean^2 is missing"),
        (lambda m, lv: -0.5 * tf.reduce_sum(1 + lv - m**2 - tf.exp(lv), axis=0), "over the batch axis"),
        # right values eagerly, but NumPy: fit's compiled step has no values to convert
        (lambda m, lv: -0.5 * np.sum(1 + lv - np.square(m) - np.exp(lv), axis=-1), "inside a tf.function"),
        (lambda m, lv: -0.5 * np.sum(1 + lv.numpy() - m.numpy() ** 2 - np.exp(lv.numpy()), axis=-1),
         "inside a tf.function"),
        (lambda m, lv: -0.5 * tf.reduce_sum(1 + lv - tf.square(m) - tf.exp(lv), axis=-1, keepdims=True),
         "without keepdims"),
    ],
)
def test_kl_rejects(fn, fragment, rejects):
    rejects(vae.kl_term, fn, fragment=fragment)


# ---------------------------------------------------------------- VAE loss
def _kl(m, lv):
    return -0.5 * tf.reduce_sum(1 + lv - tf.square(m) - tf.exp(lv), axis=-1)


def _rec(x, logits):
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=[1, 2, 3])


def _loss(rec_fn=_rec, kl_reduce=tf.reduce_mean, combine=lambda r, k, b: r + b * k):
    def vae_loss(x, logits, mean, log_var, beta=1.0):
        rec = tf.reduce_mean(rec_fn(x, logits))
        kl = kl_reduce(_kl(mean, log_var))
        return combine(rec, kl, beta), rec, kl

    return vae_loss


def _keras_bce_loss(x, logits, mean, log_var, beta=1.0):
    per_pixel = keras.losses.binary_crossentropy(x, logits, from_logits=True)  # mean over the last axis (1 channel)
    rec = keras.ops.mean(keras.ops.sum(per_pixel, axis=(1, 2)))
    kl = keras.ops.mean(_kl(mean, log_var))
    return rec + beta * kl, rec, kl


def _per_example_total(x, logits, mean, log_var, beta=1.0):
    rec_each = tf.reduce_sum(tf.reshape(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), [tf.shape(x)[0], -1]), 1)
    kl_each = _kl(mean, log_var)
    return tf.reduce_mean(rec_each + beta * kl_each), tf.reduce_mean(rec_each), tf.reduce_mean(kl_each)


def _loss_over_static_batch(x, logits, mean, log_var, beta=1.0):
    rec = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)) / x.shape[0]
    kl = tf.reduce_sum(_kl(mean, log_var)) / mean.shape[0]
    return rec + beta * kl, rec, kl


@pytest.mark.parametrize("fn", [_loss(), _keras_bce_loss, _per_example_total])
def test_loss_accepts(fn, capsys):
    vae.vae_loss(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (_loss(rec_fn=lambda x, l: tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=l), axis=[1, 2, 3])),
         "averages the cross-entropy over the 784 pixels"),
        (_loss(rec_fn=lambda x, l: _rec(x, tf.sigmoid(l))), "applies a sigmoid"),
        (_loss(rec_fn=lambda x, l: tf.reduce_sum(tf.square(tf.sigmoid(l) - x), axis=[1, 2, 3])), "squared error"),
        (_loss(kl_reduce=tf.reduce_sum), "summed over the batch"),
        (_loss(combine=lambda r, k, b: r + k), "ignores beta"),
        (_loss(combine=lambda r, k, b: r - b * k), "subtracts the KL"),
        (_loss(combine=lambda r, k, b: b * r + k), "multiplies the reconstruction"),
        (lambda x, l, m, lv, beta=1.0: tf.reduce_mean(_rec(x, l)) + beta * tf.reduce_mean(_kl(m, lv)), "three numbers"),
        (lambda x, l, m, lv, beta=1.0: (_rec(x, l) + beta * _kl(m, lv), _rec(x, l), _kl(m, lv)), "average it over the batch"),
        (lambda x, l, m, lv, beta=1.0: tuple(float(v) for v in _loss()(x, l, m, lv, beta)), "inside a tf.function"),
        (lambda x, l, m, lv, beta=1.0: (lambda t, r, k: (t, k, r))(*_loss()(x, l, m, lv, beta)), "each other's places"),
        # from probabilities: right for moderate logits, wrong (clipped, or inf) for confident pixels
        (_loss(rec_fn=lambda x, l: tf.reduce_sum(keras.losses.binary_crossentropy(x, tf.sigmoid(l)), axis=[1, 2])),
         "confident logits"),
        (_loss(rec_fn=lambda x, l: -tf.reduce_sum(x * tf.math.log(tf.sigmoid(l)) + (1 - x) * tf.math.log(1 - tf.sigmoid(l)),
                                                   axis=[1, 2, 3])), "confident logits"),
        # the batch size read in Python: fine eagerly, fails in fit, whose step is traced with an open batch
        (_loss_over_static_batch, "no batch size read in Python"),
    ],
)
def test_loss_rejects(fn, fragment, rejects):
    rejects(vae.vae_loss, fn, fragment=fragment)


# ---------------------------------------------------------------- train step
def _vae_class(step_body, sampling=None):
    """A VAE like the notebook's, with ``step_body(self, x)`` as its train_step."""
    sample = sampling or (lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)))
    loss_fn = _loss()

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, beta=1.0, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder, self.beta = encoder, decoder, beta
            self.sample = sample
            self.loss_fn = loss_fn
            self.total_tracker = keras.metrics.Mean(name="loss")
            self.rec_tracker = keras.metrics.Mean(name="reconstruction")
            self.kl_tracker = keras.metrics.Mean(name="kl")

        @property
        def metrics(self):
            return [self.total_tracker, self.rec_tracker, self.kl_tracker]

        def train_step(self, x):
            return step_body(self, x)

    return VAE


def _right(self, x, variables=None, sign=1.0, training=True, beta=None, apply=True, report="tracker",
           sample=None, decode_mean=False, enc_training="same", dec_training="same", order=(0, 1, 2), stop=False):
    enc_training = training if enc_training == "same" else enc_training
    dec_training = training if dec_training == "same" else dec_training
    with tf.GradientTape() as tape:
        mean, log_var = self.encoder(x, training=enc_training)
        z = (sample or self.sample)(mean, log_var)
        if stop:
            z = tf.stop_gradient(z)
        logits = self.decoder(mean if decode_mean else z, training=dec_training)
        total, rec, kl = self.loss_fn(x, logits, mean, log_var, self.beta if beta is None else beta)
        objective = sign * total
    variables = self.trainable_weights if variables is None else variables(self)
    grads = tape.gradient(objective, variables)
    if apply:
        self.optimizer.apply_gradients(zip(grads, variables))
    values = (total, rec, kl)
    if report != "untracked":
        for tracker, i in zip(self.metrics, order):
            tracker.update_state(values[i])
    if report in ("tracker", "untracked"):
        return {m.name: m.result() for m in self.metrics}
    if report == "step":
        return {"loss": total, "reconstruction": rec, "kl": kl}
    if report == "wrong":
        return {"loss": rec}
    return None


def _seeded_keras_sample():
    generator = keras.random.SeedGenerator(7)
    return lambda m, lv: m + keras.ops.exp(0.5 * lv) * keras.random.normal(keras.ops.shape(m), seed=generator)


@pytest.mark.parametrize(
    "body",
    [
        _right,
        lambda self, x: _right(self, x, report="step"),
        lambda self, x: _right(self, x, variables=lambda s: s.encoder.trainable_variables + s.decoder.trainable_variables),
        # the noise drawn inline, bypassing the sampling helper, in three ways
        lambda self, x: _right(self, x, sample=lambda m, lv: m + tf.exp(lv / 2) * tf.random.normal((tf.shape(x)[0], 4))),
        lambda self, x: _right(self, x, sample=lambda m, lv: tf.random.normal(tf.shape(m), mean=m, stddev=1.0) * 0
                               + m + tf.sqrt(tf.exp(lv)) * tf.random.normal(tf.shape(m))),
        lambda self, x: _right(self, x, sample=_SEEDED),
    ],
)
def test_train_step_accepts(body, capsys):
    vae.train_step(_vae_class(body))
    assert "[ok]" in capsys.readouterr().out


_SEEDED = _seeded_keras_sample()


def _tracked_as_numpy(self, x):
    """Right, but the trackers get .numpy() values: fine eagerly, not in fit's compiled step."""
    with tf.GradientTape() as tape:
        mean, log_var = self.encoder(x, training=True)
        logits = self.decoder(self.sample(mean, log_var), training=True)
        total, rec, kl = self.loss_fn(x, logits, mean, log_var, self.beta)
    grads = tape.gradient(total, self.trainable_weights)
    self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
    for tracker, value in zip(self.metrics, (total, rec, kl)):
        tracker.update_state(value.numpy())
    return {m.name: m.result() for m in self.metrics}


def _forward_outside_the_tape(self, x):
    mean, log_var = self.encoder(x, training=True)
    logits = self.decoder(self.sample(mean, log_var), training=True)
    with tf.GradientTape() as tape:
        total, rec, kl = self.loss_fn(x, logits, mean, log_var, self.beta)
    grads = tape.gradient(total, self.trainable_weights)
    self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
    return {"loss": total}


@pytest.mark.parametrize(
    "body, fragment",
    [
        (lambda self, x: _right(self, x, apply=False), "no weight has changed"),
        (lambda self, x: _right(self, x, variables=lambda s: s.encoder.trainable_variables), "decoder weight"),
        (lambda self, x: _right(self, x, variables=lambda s: s.decoder.trainable_variables), "encoder weight"),
        (lambda self, x: _right(self, x, sign=-1.0), "uphill"),
        (lambda self, x: _right(self, x, beta=1.0), "differs from a reference step"),
        (lambda self, x: _right(self, x, training=False), "without training=True"),
        (lambda self, x: _right(self, x, enc_training=False), "encoder is called without training=True"),
        (lambda self, x: _right(self, x, dec_training=None), "decoder is called without training=True"),
        (lambda self, x: _right(self, x, report=None), "return the metrics"),
        (lambda self, x: _right(self, x, report="wrong"), "trackers are swapped"),
        (lambda self, x: _right(self, x, order=(0, 2, 1)), "trackers are swapped"),
        (lambda self, x: _right(self, x, report="untracked"), "never updated"),
        # the VAE-specific mistakes: the mean decoded, noise that does not vary, the wrong scale
        (lambda self, x: _right(self, x, decode_mean=True), "receives the mean itself"),
        (lambda self, x: _right(self, x, sample=lambda m, lv: m), "receives the mean itself"),
        (lambda self, x: _right(self, x, sample=lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.stateless_normal(
            tf.shape(m), seed=[1, 2])), "same at every step"),
        (lambda self, x: _right(self, x, sample=lambda m, lv: m + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(m)[1:])),
         "same noise"),
        (lambda self, x: _right(self, x, sample=lambda m, lv: m + tf.exp(lv) * tf.random.normal(tf.shape(m))),
         "standard deviation"),
        (lambda self, x: _right(self, x, sample=lambda m, lv: m + tf.random.uniform(tf.shape(m))), "expected about 0 and 1"),
        (lambda self, x: _right(self, x, stop=True), "no stop_gradient"),
        (_tracked_as_numpy, "inside a tf.function"),
        (_forward_outside_the_tape, "inside the `with tf.GradientTape()` block"),
    ],
)
def test_train_step_rejects(body, fragment, rejects):
    rejects(vae.train_step, _vae_class(body), fragment=fragment)


def test_train_step_unfilled_is_todo():
    def body(self, x):
        raise NotImplementedError("TODO 4")

    with pytest.raises(TodoNotDone):
        vae.train_step(_vae_class(body))
