"""Checks for ``notebooks/05_vae.ipynb``: the sampling layer (reparameterisation), the
KL term, the VAE loss and the model's ``train_step``.

Each check compares behaviour with the reference terms of :mod:`utils.vae` on inputs
made for it -- statistics of 20,000 samples for the sampling layer, values for the
loss terms, weights after two steps for the training step -- so any correct formulation
passes, and the classic mistakes are named: a KL with the wrong sign, ``sigma`` where
``log sigma^2`` is meant, sampling without the variance or without a path for the
gradient, terms reduced on different scales, gradients not applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import call, expect_shape, fail, filled, kind, matches, ok, to_array, tracker_verdict

_MEAN = np.array([0.0, 1.5, -2.0, 0.5], dtype="float32")
_LOG_VAR = np.array([0.4, -2.0, 1.5, -0.8], dtype="float32")


def _r(values: Any, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in np.ravel(values)]


def _pair(rows: int) -> tuple[Any, Any]:
    import tensorflow as tf

    mean = tf.constant(np.tile(_MEAN, (rows, 1)))
    log_var = tf.constant(np.tile(_LOG_VAR, (rows, 1)))
    return mean, log_var


def sampling_layer(sampling_cls: Any) -> None:
    """``Sampling()((mean, log_var))`` must return ``mean + exp(log_var / 2) * eps`` with
    fresh ``eps ~ N(0, I)`` for every element, of the same shape as ``mean``, and let
    gradients flow to both ``mean`` and ``log_var`` (the reparameterisation trick)."""
    import tensorflow as tf

    filled(sampling_cls, "Sampling")
    layer = call(sampling_cls, what="Sampling()")
    rows = 20_000
    mean, log_var = _pair(rows)
    z = to_array(call(layer, (mean, log_var), what="Sampling()((mean, log_var))"), "Sampling()((mean, log_var))")
    expect_shape(z, (rows, 4), "Sampling()((mean, log_var))",
                 hint="One sample per row and latent dimension: the output has the shape of mean.")
    small = to_array(call(layer, _pair(3), what="Sampling() on a batch of 3"), "Sampling() on a batch of 3")
    expect_shape(small, (3, 4), "Sampling() on a batch of 3",
                 hint="Take the noise's shape from the input (tf.shape(mean)), not from a fixed batch size.")
    if not np.all(np.isfinite(z)):
        fail("Some samples are NaN or infinite: a square root or a logarithm of log_var? log_var is any real number, "
             "often negative; sigma = exp(0.5 * log_var) is always defined.")
    std_want = np.exp(0.5 * _LOG_VAR)
    got_mean, got_std = z.mean(axis=0), z.std(axis=0)
    if np.allclose(got_std, 0, atol=1e-6):
        fail("Every sample equals the mean: the layer ignores the variance. "
             "Add the noise: mean + exp(0.5 * log_var) * epsilon with epsilon ~ N(0, 1).")
    column = z[:, int(np.argmax(got_std))]
    if abs(float(np.corrcoef(column[:-1], column[1:])[0, 1])) > 0.05 or np.allclose(z[0], z[1:5], atol=1e-6):
        fail("The noise is the same (or correlated) from one example to the next: draw one epsilon per "
             "entry of mean, taking the noise's shape from mean when the layer runs.")
    if np.all(got_std > 1e-6):
        corr = np.corrcoef(((z - got_mean) / got_std).T)
        if np.max(np.abs(corr - np.eye(len(corr)))) > 0.05:
            fail("The noise is the same (or correlated) across the latent dimensions of an example: draw one "
                 "independent epsilon per example *and* per dimension, with the full shape of mean.")
    if not np.allclose(got_mean, _MEAN, atol=5 * got_std / np.sqrt(rows) + 1e-3):
        fail(f"The samples' average per dimension is {_r(got_mean, 2)}, expected the mean "
             f"{_MEAN.tolist()}: z = mean + (standard deviation) * epsilon, with epsilon of mean 0.")
    if not np.allclose(got_std, std_want, rtol=0.05):
        named = {
            "exp(log_var)": np.exp(_LOG_VAR),
            "log_var itself": np.abs(_LOG_VAR),
            "exp(log_var / 4)": np.exp(0.25 * _LOG_VAR),
            "sqrt(log_var)": np.sqrt(np.abs(_LOG_VAR)),
            "1 (the noise alone)": np.ones(4),
        }
        used = next((name for name, std in named.items() if np.allclose(got_std, std, rtol=0.05)), None)
        because = f" -- that is {used} used as the standard deviation" if used else ""
        fail(f"The samples' standard deviations are {_r(got_std, 3)}, expected "
             f"exp(0.5 * log_var) = {_r(std_want, 3)}{because}. The encoder outputs log sigma^2, "
             f"so sigma = exp(0.5 * log_var).")
    again = to_array(call(layer, _pair(rows), what="Sampling() called again"), "Sampling() called again")
    if matches(again, z, rtol=0, atol=0):
        fail("Two calls give identical samples: draw new noise on every call (inside call(), not in __init__).")
    compiled = tf.function(lambda pair: layer(pair))
    label = "Sampling() inside a tf.function (as fit runs it)"
    hint = "The layer must also run in a compiled train step: use TensorFlow or keras.random operations, no .numpy()."
    first = to_array(call(compiled, _pair(5), what=label, hint=hint), label)
    second = to_array(call(compiled, _pair(5), what=label, hint=hint), label)
    if matches(first, second, rtol=0, atol=0):
        fail("Inside a tf.function (as fit runs the train step) the layer returns the same samples on every call: "
             "NumPy or Python random numbers are drawn once, when the function is traced. Draw the noise with "
             "keras.random.normal or tf.random.normal.")
    # fit traces the step with the batch size unknown (the last validation batch is smaller)
    spec = tf.TensorSpec((None, 4), tf.float32)
    open_batch = tf.function(lambda m, lv: layer((m, lv)), input_signature=[spec, spec])
    label = "Sampling() traced with the batch size unknown (as fit traces it)"
    out = to_array(call(open_batch, *_pair(6), what=label, hint=(
        "While fit traces the step the batch size is not known yet, so mean.shape[0] is None: take the noise's "
        "shape from the tensor at run time (keras.ops.shape or tf.shape), not from .shape.")), label)
    expect_shape(out, (6, 4), label, hint="The output has the shape of mean.")
    m, lv = tf.Variable(_pair(8)[0]), tf.Variable(_pair(8)[1])
    with tf.GradientTape() as tape:
        out = call(layer, (m, lv), what="Sampling() under a GradientTape")
        total = tf.reduce_sum(tf.convert_to_tensor(out) ** 2)
    grad_mean, grad_log_var = tape.gradient(total, [m, lv])
    if grad_mean is None or grad_log_var is None:
        missing = "mean" if grad_mean is None else "log_var"
        fail(f"No gradient flows back to {missing}: build z from mean, log_var and separately drawn "
             f"noise with TensorFlow operations (the rewrite above the TODO) rather than sampling N(mean, sigma) "
             f"directly -- that is the reparameterisation trick.")
    if not np.any(np.abs(np.asarray(grad_log_var)) > 0):
        fail("The gradient with respect to log_var is zero: the noise must be scaled by exp(0.5 * log_var).")
    ok(f"Sampling draws z = mean + exp(log_var / 2) * eps (20,000 samples: standard deviations "
       f"{_r(got_std, 2)}), and gradients reach mean and log_var.")


def _kl_reference(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    return -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=-1)


def _kl_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng.normal(size=(6, 5)).astype("float32"), rng.normal(scale=0.8, size=(6, 5)).astype("float32")


def _same_in_a_graph(fn: Callable[..., Any], arrays: tuple[np.ndarray, ...], eager: Any, label: str,
                     *extra: Any) -> None:
    """``fn`` traced by ``tf.function`` under a tape, as ``fit`` runs it, must give what it gave
    eagerly, as tensors that carry gradients."""
    import tensorflow as tf

    # traced with the batch size left open, as fit traces a step whose last batch may be smaller
    specs = [tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in arrays]

    def traced(*tensors: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            result = fn(*tensors, *extra)
            first = result[0] if isinstance(result, (tuple, list)) else result
            total = tf.reduce_sum(first)
        return result, tape.gradient(total, list(tensors))

    what = f"{label} inside a tf.function (as fit runs the training step)"
    result, grads = call(tf.function(traced, input_signature=specs), *(tf.constant(a) for a in arrays), what=what,
                         hint=(
        "In a compiled step the tensors have no values yet and the batch size is not known: keep to TensorFlow "
        "(or keras.ops) operations and return tensors -- no .numpy(), float() or np.* on them, and no batch size "
        "read in Python (len(x), x.shape[0]); averaging over the batch needs none."))
    values = result if isinstance(result, (tuple, list)) else [result]
    wanted = eager if isinstance(eager, (tuple, list)) else [eager]
    if any(not matches(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5) for a, b in zip(values, wanted)):
        fail(f"{what} gives other values than when it runs eagerly: keep to TensorFlow operations on the tensors "
             f"you are given.")
    if any(g is None for g in grads):
        fail(f"{what}: no gradient flows back to its inputs, so training could not learn from it. Keep to "
             f"TensorFlow operations (no .numpy(), np.* or tf.stop_gradient).")


def kl_term(kl_divergence: Callable[[Any, Any], Any]) -> None:
    """``kl_divergence(mean, log_var)`` must return ``KL(N(mean, exp(log_var)) || N(0, I))``
    for every example, summed over the latent dimensions: shape ``(batch,)``."""
    import tensorflow as tf

    filled(kl_divergence, "kl_divergence")
    mean, log_var = _kl_inputs()
    want = _kl_reference(mean, log_var)
    label = "kl_divergence(mean, log_var)"
    got = to_array(call(kl_divergence, tf.constant(mean), tf.constant(log_var), what=label), label)
    if got.shape == () and (np.isclose(float(got), want.mean(), rtol=1e-4)
                            or np.isclose(float(got), want.sum(), rtol=1e-4)):
        fail(f"{label} returns one number for the whole batch; return one KL per example (shape "
             f"(batch,)): sum over the latent axis only, axis=-1. The loss averages over the batch later.")
    if got.shape == (mean.shape[1],):
        fail(f"{label} has shape {got.shape}, one value per latent dimension: it is summed over the batch axis "
             f"(axis 0). Sum over the latent axis instead (axis=-1), one KL per example.")
    if got.shape == mean.shape:
        fail(f"{label} has shape {got.shape}, one value per latent dimension: sum them (axis=-1) to get "
             f"one KL per example.")
    if got.shape == (*want.shape, 1):
        fail(f"{label} has shape {got.shape}: one KL per example, but with the reduced axis kept. Return shape "
             f"{want.shape} (the batch's KL values in a vector), without keepdims.")
    expect_shape(got, want.shape, label, hint="One KL per example: reduce over the latent axis (axis=-1) only.")
    if matches(got, want):
        _same_in_a_graph(kl_divergence, (mean, log_var), got, label)
        ok(f"kl_divergence matches the closed form on random inputs (first values {_r(got[:3], 3)}).")
        return
    wrongs = {
        "the sign is flipped (a KL divergence is never negative): -0.5 * sum(1 + log_var - mean^2 - exp(log_var))":
            -want,
        "the factor 1/2 is missing": 2 * want,
        "it averages over the latent dimensions instead of summing them (so the KL is on a smaller scale than "
        "the summed reconstruction term)": want / mean.shape[1],
        "log_var is treated as sigma (the standard deviation); the encoder outputs log sigma^2, so "
        "sigma^2 = exp(log_var)": -0.5 * np.sum(1 + np.log(log_var**2 + 1e-12) - mean**2 - log_var**2, axis=-1),
        "log_var is treated as sigma^2; the encoder outputs log sigma^2, so sigma^2 = exp(log_var)":
            -0.5 * np.sum(1 + np.log(np.abs(log_var) + 1e-12) - mean**2 - log_var, axis=-1),
        "exp(log_var / 2) (sigma) is used where exp(log_var) (sigma^2) belongs":
            -0.5 * np.sum(1 + log_var - mean**2 - np.exp(0.5 * log_var), axis=-1),
        "mean^2 is missing": -0.5 * np.sum(1 + log_var - np.exp(log_var), axis=-1),
    }
    for why, candidate in wrongs.items():
        if matches(got, candidate, rtol=1e-3):
            fail(f"{label} is wrong: {why}.")
    zero = to_array(call(kl_divergence, tf.zeros((2, 5)), tf.zeros((2, 5)), what=f"{label} at the prior"),
                    f"{label} at the prior")
    if not np.allclose(zero, 0, atol=1e-6):
        fail(f"At mean = 0 and log_var = 0 the posterior equals the prior, so the KL must be 0; yours gives "
             f"{_r(zero, 4)}. Check the '1 +' inside the sum.")
    if np.any(got < -1e-4):
        fail(f"{label} returns negative values ({_r(got[got < -1e-4][:3], 3)}...), but a KL divergence is "
             f"never negative: check the sign.")
    i = int(np.argmax(np.abs(got - want)))
    fail(f"{label} is wrong for example {i}: expected {want[i]:.4f}, got {got[i]:.4f}. The closed form is "
         f"-0.5 * sum(1 + log_var - mean^2 - exp(log_var)) over the latent axis.")


def _bce_sum(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    per_pixel = np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits)))
    return per_pixel.reshape(len(x), -1).sum(axis=1)


def _loss_inputs() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(12)
    x = (rng.random((8, 28, 28, 1)) < 0.3).astype("float32")
    logits = rng.normal(scale=2.0, size=(8, 28, 28, 1)).astype("float32")
    mean = rng.normal(size=(8, 6)).astype("float32")
    log_var = rng.normal(scale=0.5, size=(8, 6)).astype("float32")
    return x, logits, mean, log_var


def _three(value: Any, label: str) -> tuple[float, float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        fail(f"{label} returned {kind(value)}; it must return three numbers: (total, reconstruction, kl).")
    numbers = []
    for name, item in zip(("total", "reconstruction", "kl"), value):
        array = to_array(item, f"{label}'s {name}", what="a number")
        if array.size != 1:
            fail(f"{label}'s {name} has shape {array.shape}; average it over the batch to one number "
                 f"(tf.reduce_mean over the per-example values).")
        numbers.append(float(array.reshape(())))
    return numbers[0], numbers[1], numbers[2]


def vae_loss(loss_fn: Callable[..., Any]) -> None:
    """``vae_loss(x, logits, mean, log_var, beta)`` must return ``(total, reconstruction,
    kl)``, each averaged over the batch: the reconstruction term is the Bernoulli negative
    log-likelihood summed over pixels (from logits), the KL term is summed over latent
    dimensions, and ``total = reconstruction + beta * kl``."""
    import tensorflow as tf

    filled(loss_fn, "vae_loss")
    x, logits, mean, log_var = _loss_inputs()
    rec_per, kl_per = _bce_sum(x, logits), _kl_reference(mean, log_var)
    rec_want, kl_want = float(rec_per.mean()), float(kl_per.mean())
    beta = 2.5
    label = "vae_loss(x, logits, mean, log_var, beta=2.5)"
    got = call(loss_fn, tf.constant(x), tf.constant(logits), tf.constant(mean), tf.constant(log_var), beta,
               what=label)
    total, rec, kl = _three(got, label)
    if np.isclose(rec, kl_want, rtol=1e-4) and np.isclose(kl, rec_want, rtol=1e-4):
        fail("The reconstruction and KL terms come back in each other's places: return (total, reconstruction, "
             "kl), in that order.")
    if not np.isclose(rec, rec_want, rtol=1e-4):
        pixels = x[0].size
        probs = 1 / (1 + np.exp(-logits))
        named = {
            f"averages the cross-entropy over the {pixels} pixels instead of summing it (the log-likelihood of an "
            f"image is the sum over its pixels, and the KL is summed too, so the two terms end up on different "
            f"scales)": rec_want / pixels,
            "sums over the whole batch instead of averaging over it": rec_per.sum(),
            "applies a sigmoid to the logits and then treats the probabilities as logits: pass the decoder's "
            "logits to the from-logits cross-entropy": _bce_sum(x, probs).mean(),
            "uses a squared error; the decoder models Bernoulli pixels, so use the binary cross-entropy from logits":
                float(((probs - x) ** 2).reshape(len(x), -1).sum(axis=1).mean()),
            "has x and the logits swapped": float(_bce_sum(np.clip(logits, 0, 1), x).mean()),
        }
        for why, candidate in named.items():
            if np.isclose(rec, candidate, rtol=1e-3):
                fail(f"The reconstruction term {why}.")
        fail(f"The reconstruction term is {rec:.4f}, expected {rec_want:.4f}: the binary cross-entropy "
             f"from logits, summed over the pixels of each image and averaged over the batch.")
    if not np.isclose(kl, kl_want, rtol=1e-4):
        if np.isclose(kl, kl_want * beta, rtol=1e-4):
            fail("The returned kl already includes beta: return the plain KL term and use beta only in the total.")
        if np.isclose(kl, kl_per.sum(), rtol=1e-4):
            fail("The KL term is summed over the batch; average it over the batch, like the reconstruction term.")
        fail(f"The KL term is {kl:.4f}, expected {kl_want:.4f}: kl_divergence(mean, log_var) averaged over the batch.")
    want = rec_want + beta * kl_want
    if not np.isclose(total, want, rtol=1e-4):
        if np.isclose(total, rec_want + kl_want, rtol=1e-4):
            fail("The total ignores beta: total = reconstruction + beta * kl.")
        if np.isclose(total, rec_want - beta * kl_want, rtol=1e-4):
            fail("The total subtracts the KL term: the negative ELBO is reconstruction + beta * kl.")
        if np.isclose(total, beta * rec_want + kl_want, rtol=1e-4):
            fail("beta multiplies the reconstruction term; it belongs on the KL term.")
        fail(f"The total is {total:.4f}, expected reconstruction + beta * kl = {want:.4f}.")
    # Confident pixels (logits of +-30): a cross-entropy computed from sigmoid probabilities
    # rounds them to exactly 0 or 1 (inf, or Keras's clipping), one from the logits does not.
    confident = logits.copy()
    confident[:, :3, :3, 0], confident[:, -3:, -3:, 0] = 30.0, -30.0
    label_confident = "vae_loss(x, logits with some at +-30, mean, log_var, beta=2.5)"
    _, rec_confident, _ = _three(call(loss_fn, tf.constant(x), tf.constant(confident), tf.constant(mean),
                                      tf.constant(log_var), beta, what=label_confident), label_confident)
    want_confident = float(_bce_sum(x, confident).mean())
    if not (np.isfinite(rec_confident) and np.isclose(rec_confident, want_confident, rtol=1e-4)):
        fail(f"With confident logits (some at +-30) the reconstruction term is {rec_confident:.4f}, expected "
             f"{want_confident:.4f}: it is computed from sigmoid probabilities, which round to exactly 0 or 1 there "
             f"(and Keras's probability losses clip them). Use a cross-entropy that takes the logits themselves.")
    _same_in_a_graph(loss_fn, (x, logits, mean, log_var), (total, rec, kl), label, beta)
    ok(f"vae_loss: reconstruction {rec:.2f} + beta x KL {kl:.2f} = {total:.2f} nats per image, as expected.")


_BATCH, _LATENT = 32, 4


def _tiny_vae_parts(seed: int) -> tuple[Any, Any]:
    """An encoder (8 x 8 x 1 images -> mean, log_var of 4 dims, sigma about 0.6, so the
    sample differs clearly from the mean) and a decoder, both with batch norm, so
    ``training=True`` matters in each. Each starts with a probe layer: the encoder's
    records the training flag, the decoder's also the ``z`` it receives, so the check can
    replay the learner's own noise in the reference step, however it was drawn."""
    import keras
    from keras import layers

    from utils.checks._core import probe_layer

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    h = layers.Flatten()(probe_layer("encoder_probe", "the encoder")(inputs))
    h = layers.Activation("tanh")(layers.BatchNormalization()(layers.Dense(12)(h)))
    mean = layers.Dense(_LATENT, name="mean")(h)
    log_var = layers.Dense(_LATENT, kernel_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed),
                           bias_initializer=keras.initializers.Constant(-1.0), name="log_var")(h)
    encoder = keras.Model(inputs, [mean, log_var], name="tiny_encoder")
    decoder = keras.Sequential(
        [keras.Input((_LATENT,)), probe_layer("decoder_probe", "the decoder"), layers.Dense(16), layers.BatchNormalization(),
         layers.ReLU(), layers.Dense(64), layers.Reshape((8, 8, 1))],
        name="tiny_decoder",
    )
    return encoder, decoder


def _probe(model: Any) -> Any:
    return next(layer for layer in model.layers if layer.name.endswith("_probe"))


def _reference_vae_step(encoder: Any, decoder: Any, optimizer: Any, x: Any, beta: float,
                        z_seen: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """One reference step that decodes the learner's own sample ``z_seen``: its noise
    ``eps = (z - mean) / sigma`` is recovered and held fixed, and ``z = mean + sigma * eps``
    is rebuilt so that the gradient reaches mean and log_var. Returns the total,
    reconstruction and KL terms and the recovered noise."""
    import tensorflow as tf

    from utils.vae import bernoulli_nll, gaussian_kl

    variables = encoder.trainable_variables + decoder.trainable_variables
    with tf.GradientTape() as tape:
        mean, log_var = encoder(x, training=True)
        sigma = tf.exp(0.5 * log_var)
        eps = tf.stop_gradient((tf.constant(z_seen) - mean) / sigma)
        logits = decoder(mean + sigma * eps, training=True)
        rec = tf.reduce_mean(bernoulli_nll(x, logits))
        kl = tf.reduce_mean(gaussian_kl(mean, log_var))
        loss = rec + beta * kl
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return float(loss), float(rec), float(kl), eps.numpy()


def _step_hint(error: str) -> str:
    """What an error raised inside the learner's train_step most likely means."""
    low = error.lower()
    if "no gradients provided" in low:
        return ("The tape recorded no path from the weights to the loss: run the encoder, the sampling and the "
                "decoder inside the `with tf.GradientTape()` block, together with the loss.")
    if "shape" in low or "dimension" in low or "incompatible" in low:
        return ("If the shapes clash at the decoder: it receives one latent vector per image, of shape "
                "(batch, latent_dim).")
    return ("One step: encode, sample z, decode, vae_loss, then the gradients of its total applied with "
            "self.optimizer, and the trackers updated.")


def train_step(vae_cls: Any) -> None:
    """``VAE(encoder, decoder, beta).train_step(x)`` must encode ``x`` in training mode,
    decode a fresh *sample* ``z = mean + sigma * eps`` (not the mean), compute ``vae_loss``
    with the model's ``beta``, apply the gradients of the total to every trainable weight
    (encoder and decoder) with ``self.optimizer``, and return the metrics: ``"loss"``
    (and ``"reconstruction"``, ``"kl"`` where reported) from their own trackers.

    The reference step replays the noise the learner's step drew (recorded at the
    decoder's input), so any correct way of sampling passes; the noise itself must look
    like fresh standard-normal draws: not zero, not shared by the images, not repeated
    from one step to the next."""
    import keras
    import tensorflow as tf

    from utils.checks._core import CallLog, logged_train_step

    filled(vae_cls, "VAE")
    beta = 2.0
    encoder, decoder = _tiny_vae_parts(0)
    ref_encoder, ref_decoder = _tiny_vae_parts(0)
    ref_encoder.set_weights(encoder.get_weights())
    ref_decoder.set_weights(decoder.get_weights())
    enc_log, dec_log = CallLog(), CallLog((_BATCH, _LATENT), slots=4)
    _probe(encoder).log, _probe(decoder).log = enc_log, dec_log
    vae = call(vae_cls, encoder, decoder, beta=beta, what="VAE(encoder, decoder, beta=2.0)")
    call(vae.compile, optimizer=keras.optimizers.SGD(0.05), what="vae.compile(optimizer=SGD(0.05))")
    ref_optimizer = keras.optimizers.SGD(0.05)
    rng = np.random.default_rng(13)
    x = tf.constant((rng.random((_BATCH, 8, 8, 1)) < 0.4).astype("float32"))
    parts = encoder.trainable_variables + decoder.trainable_variables
    names = [v.path for v in parts]
    start = [v.numpy().copy() for v in parts]
    steps: list[dict[str, float]] = []
    noise: list[np.ndarray] = []
    for step_number in (1, 2):
        result, seen = logged_train_step(
            vae.train_step, x, ((enc_log, "encoder"), (dec_log, "decoder")), dec_log, what="vae.train_step(x)",
            hint=_step_hint,
            never_called="vae.train_step(x) never calls the decoder: decode the sampled z inside the tape.",
            consequence="its batch norm (and dropout) then behave as in inference, with the moving averages "
                        "instead of the batch's statistics. Call it with training=True.")
        loss, rec, kl, eps = _reference_vae_step(ref_encoder, ref_decoder, ref_optimizer, x, beta, seen[-1])
        steps.append({"loss": loss, "reconstruction": rec, "kl": kl})
        noise.append(eps)
        if np.allclose(eps, 0, atol=1e-4):
            fail("The decoder receives the mean itself (z = mean): decode a sample z = mean + sigma * epsilon "
                 "from the sampling layer. Without the noise, the log-variance head never learns from the "
                 "reconstruction and the model is an autoencoder with a penalty.")
        if np.allclose(eps, eps[:1], atol=1e-4):
            fail("Every image in the batch gets the same noise: draw epsilon with the full shape of mean, "
                 "one independent draw per image and latent dimension.")
        if step_number == 2 and np.allclose(noise[0], noise[1], atol=1e-5):
            fail("The noise is the same at every step (a fixed seed?): each call of the sampler must draw new "
                 "noise -- a SeedGenerator, not a fixed stateless seed.")
        # 128 draws per step: a standard normal's sample mean stays within 0.4 and its standard
        # deviation within 0.7..1.4 except with odds below 1e-5
        if not (0.7 < float(eps.std()) < 1.4 and abs(float(eps.mean())) < 0.4):
            fail(f"Relative to sigma = exp(0.5 * log_var), the noise in z has mean {eps.mean():.2f} and standard "
                 f"deviation {eps.std():.2f}, expected about 0 and 1: sample z = mean + exp(0.5 * log_var) * "
                 f"epsilon with standard-normal epsilon (the sampling layer of TODO 1).")
        now = [v.numpy() for v in parts]
        ref_now = [v.numpy() for v in ref_encoder.trainable_variables + ref_decoder.trainable_variables]
        moved = [not matches(a, s, rtol=0, atol=0) for a, s in zip(now, start)]
        if not any(moved):
            fail("After vae.train_step(x) no weight has changed: apply the gradients of the total loss with the "
                 "model's optimizer, to every trainable weight (the encoder's and the decoder's).")
        for i, was_moved in enumerate(moved):
            if not was_moved:
                part = "encoder" if i < len(encoder.trainable_variables) else "decoder"
                fail(f"The {part} weight {names[i]} never changed: take the gradients with respect to "
                     f"self.trainable_weights (the encoder's and the decoder's).")
        for i, (a, b) in enumerate(zip(now, ref_now)):
            if not matches(a, b, rtol=1e-3, atol=1e-5):
                if matches(a - start[i], -(b - start[i]), rtol=1e-2, atol=1e-5):
                    fail("The weights moved uphill: apply the gradients of the total loss (not of -loss, the ELBO).")
                fail(f"After step {step_number}, {names[i]} differs from a reference step (largest difference "
                     f"{float(np.max(np.abs(a - b))):.3g}). Compute vae_loss with the model's beta "
                     f"and differentiate its total, with the tape around the encoder, the sampling and the "
                     f"decoder (no stop_gradient or .numpy() in between).")
    if not isinstance(result, dict) or "loss" not in result:
        fail(f"vae.train_step(x) returned {kind(result)}; return the metrics as a dict with a 'loss' entry "
             f"(e.g. {{m.name: m.result() for m in self.metrics}}).")
    for key in ("loss", "reconstruction", "kl"):
        if key in result:
            tracker_verdict(result, key, steps, {"loss": "total loss", "reconstruction": "reconstruction term",
                                                 "kl": "KL term"},
                            "Update each tracker with its own loss (in the order vae_loss returns them).")
    label = "vae.train_step(x) inside a tf.function (as fit runs it)"
    compiled = call(tf.function(vae.train_step), x, what=label, hint=(
        "fit compiles the step: keep the losses tensors until the trackers take them (no .numpy() or float())."))
    if not isinstance(compiled, dict) or "loss" not in compiled:
        fail(f"{label} returned {kind(compiled)}; return the metrics as a dict with a 'loss' entry.")
    ok("train_step: two steps that decode a fresh sample of the code match a reference step on every weight "
       "of the encoder and the decoder.")


__all__ = ["kl_term", "sampling_layer", "train_step", "vae_loss"]
