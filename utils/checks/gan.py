"""Checks for ``notebooks/06_gan.ipynb``: the generator, the discriminator, both losses
and the GAN's ``train_step``.

The losses are compared with the cross-entropy computed here from the logits, on
logits made for it; the training step is compared, weight by weight, with reference
steps that use the learner's own (already checked) losses -- updating the discriminator
first and the generator through the updated discriminator, or both from the same fakes:
both orders are correct and both pass. Named mistakes: real/fake labels swapped, a
generator trained toward "fake", the saturating minimax loss, probabilities given to a
from-logits loss, a discriminator updated with the generator's gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import call, fail, filled, kind, matches, ok, to_array

IMAGE_SHAPE = (28, 28, 1)
MAX_PARAMS = 5_000_000


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _bce(target: float, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against a constant target."""
    return float(np.mean(target * _softplus(-logits) + (1 - target) * _softplus(logits)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _layers(model: Any) -> list[Any]:
    return list(model._flatten_layers(include_self=False))


def _model(builder: Callable[..., Any], label: str, *args: Any) -> Any:
    import keras

    model = call(builder, *args, what=label)
    if not isinstance(model, keras.Model):
        fail(f"{label} returned {kind(model)}; expected a keras.Model (e.g. keras.Sequential([...])).")
    if model.count_params() > MAX_PARAMS:
        fail(f"{label} has {model.count_params():,} parameters; keep it under {MAX_PARAMS:,} so it trains on a CPU.")
    return model


def generator_model(build_generator: Callable[[int], Any]) -> None:
    """``build_generator(latent_dim)`` must map noise ``(n, latent_dim)`` to images
    ``(n, 28, 28, 1)`` in ``[-1, 1]`` (a ``tanh`` output), through transposed
    convolutions (or up-sampling), and different noise must give different images."""
    import keras
    import tensorflow as tf

    filled(build_generator, "build_generator")
    latent_dim = 24
    generator = _model(build_generator, f"build_generator({latent_dim})", latent_dim)
    z = tf.random.normal((16, latent_dim), seed=3) * 2.0
    label = f"the generator on noise of shape (16, {latent_dim})"
    images = to_array(call(generator, z, training=False, what=label,
                           hint=f"Its input is keras.Input(shape=(latent_dim,)) -- here ({latent_dim},)."), label)
    if images.shape != (16, *IMAGE_SHAPE):
        hint = " End with Conv2DTranspose(1, ...) so there is one channel." if images.shape[1:3] == (28, 28) else ""
        fail(f"{label} gives images of shape {images.shape}, expected (16, 28, 28, 1): start from a 7x7 map "
             f"(Dense -> Reshape((7, 7, channels))) and double it twice with strided Conv2DTranspose.{hint}")
    if images.min() < -1 - 1e-5 or images.max() > 1 + 1e-5:
        fail(f"The generator's pixels reach {images.min():.2f}..{images.max():.2f}; the real images are scaled "
             f"to [-1, 1], so end with activation='tanh'.")
    if float(np.std(images, axis=0).mean()) < 1e-4:
        fail("Different noise vectors give the same image: the output must depend on z.")
    loud = to_array(call(generator, z * 50.0, training=False, what="the generator on large noise"),
                    "the generator on large noise")
    if loud.min() < -1 - 1e-5 or loud.max() > 1 + 1e-5:
        fail(f"On large noise the generator's pixels reach {loud.min():.1f}..{loud.max():.1f}: its output is not "
             f"bounded. The real images are scaled to [-1, 1], so end with activation='tanh'.")
    if images.min() >= -1e-6:
        fail("The generator's pixels are never negative: the real images are scaled to [-1, 1], so end with "
             "activation='tanh' (a sigmoid or ReLU output cannot draw the black background at -1).")
    upsamplers = (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D)
    if not any(isinstance(layer, upsamplers) for layer in _layers(generator)):
        fail("No Conv2DTranspose (or UpSampling2D) layer: a DCGAN generator grows the image with transposed "
             "convolutions, e.g. Conv2DTranspose(64, 4, strides=2, padding='same').")
    ok(f"generator: ({latent_dim},) noise -> (28, 28, 1) images in [-1, 1], {generator.count_params():,} parameters.")


def discriminator_model(build_discriminator: Callable[[], Any]) -> None:
    """``build_discriminator()`` must map images ``(n, 28, 28, 1)`` to one **logit** per
    image ``(n, 1)`` (no sigmoid), with convolutions, and pass gradients to its input
    (the generator learns through them)."""
    import keras
    import tensorflow as tf

    filled(build_discriminator, "build_discriminator")
    discriminator = _model(build_discriminator, "build_discriminator()")
    x = tf.Variable(tf.random.uniform((32, *IMAGE_SHAPE), -1, 1, seed=4) * np.linspace(0.2, 8, 32)[:, None, None, None])
    label = "the discriminator on images of shape (32, 28, 28, 1)"
    with tf.GradientTape() as tape:
        out = call(discriminator, x, training=False, what=label,
                   hint="Its input is keras.Input(shape=(28, 28, 1)).")
        total = tf.reduce_sum(tf.convert_to_tensor(out))
    logits = to_array(out, label)
    if logits.shape != (32, 1):
        hint = " Flatten the feature maps before the last Dense(1)." if logits.ndim > 2 else ""
        fail(f"{label} gives shape {logits.shape}, expected (32, 1): one real-vs-fake score per image.{hint}")
    last = [layer for layer in _layers(discriminator) if hasattr(layer, "activation") or isinstance(layer, keras.layers.Activation)]
    sigmoid = keras.activations.sigmoid
    if last and getattr(last[-1], "activation", None) is sigmoid:
        fail("The discriminator ends in a sigmoid; return logits (Dense(1) with no activation) and let the "
             "loss apply the sigmoid with from_logits=True -- it is numerically safer.")
    loud = to_array(call(discriminator, x * 100.0, training=False, what="the discriminator on bright images"),
                    "the discriminator on bright images")
    if np.all((logits >= 0) & (logits <= 1)) and np.all((loud >= 0) & (loud <= 1)):
        fail("The discriminator's outputs all lie in (0, 1) for inputs of very different scales, like "
             "probabilities: return logits (no sigmoid at the end).")
    if not any(isinstance(layer, keras.layers.Conv2D) for layer in _layers(discriminator)):
        fail("No Conv2D layer: the DCGAN discriminator is a CNN with strided convolutions "
             "(Conv2D(64, 4, strides=2, padding='same'), LeakyReLU, ...).")
    grad = tape.gradient(total, x)
    if grad is None or not np.any(np.asarray(grad) != 0):
        fail("No gradient reaches the discriminator's input, so the generator could not learn through it.")
    ok(f"discriminator: (28, 28, 1) images -> one logit each, {discriminator.count_params():,} parameters.")


def _logits(seed: int, n: int = 32, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(scale=2.0, size=(n, 1)) + shift).astype("float32")


def _value(got: Any, label: str) -> float:
    array = to_array(got, label, what="a number")
    if array.size != 1:
        fail(f"{label} has shape {array.shape}; reduce it to one number, the mean over the batch.")
    return float(array.reshape(()))


def _keras_bce_probabilities(target: float, logits: np.ndarray) -> float:
    """What ``BinaryCrossentropy(from_logits=False)`` gives for logits (clipped as probabilities)."""
    p = np.clip(logits, 1e-7, 1 - 1e-7)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def discriminator_loss(loss_fn: Callable[[Any, Any], Any]) -> None:
    """``discriminator_loss(real_logits, fake_logits)`` must be the binary cross-entropy
    from logits with target 1 for real images and 0 for fakes, each averaged over the
    batch and added (or averaged; one-sided label smoothing of the real target to 0.9 is
    accepted too)."""
    import tensorflow as tf

    filled(loss_fn, "discriminator_loss")
    real, fake = _logits(21, shift=1.0), _logits(22, shift=-1.0)
    label = "discriminator_loss(real_logits, fake_logits)"
    got = _value(call(loss_fn, tf.constant(real), tf.constant(fake), what=label), label)
    accepted = {}
    for target in (1.0, 0.9):
        both = _bce(target, real) + _bce(0.0, fake)
        accepted[both] = f"real target {target}" if target != 1.0 else "sum of the two terms"
        accepted[both / 2] = "average of the two terms"
    if any(np.isclose(got, value, rtol=1e-4) for value in accepted):
        what = next(name for value, name in accepted.items() if np.isclose(got, value, rtol=1e-4))
        ok(f"discriminator_loss: cross-entropy from logits, real -> 1, fake -> 0 ({what}); {got:.4f} here.")
        return
    named = {
        "the labels are swapped: real images must get target 1 (ones_like(real_logits)) and fakes target 0":
            _bce(0.0, real) + _bce(1.0, fake),
        "only the real images are scored; add the fakes' term with target 0": _bce(1.0, real),
        "only the fakes are scored; add the real images' term with target 1": _bce(0.0, fake),
        "sigmoid probabilities are passed to a from-logits loss (a sigmoid applied twice); pass the logits":
            _bce(1.0, _sigmoid(real)) + _bce(0.0, _sigmoid(fake)),
        "the loss treats the logits as probabilities (from_logits=False); use "
        "BinaryCrossentropy(from_logits=True)":
            _keras_bce_probabilities(1.0, real) + _keras_bce_probabilities(0.0, fake),
        "the terms are summed over the batch; average them (the loss must not grow with the batch size)":
            len(real) * (_bce(1.0, real) + _bce(0.0, fake)),
    }
    for why, value in named.items():
        if np.isclose(got, value, rtol=1e-3) or np.isclose(got, value / 2, rtol=1e-3):
            fail(f"{label}: {why}.")
    fail(f"{label} gives {got:.4f}; the cross-entropy from logits with real -> 1 and fake -> 0 gives "
         f"{_bce(1.0, real) + _bce(0.0, fake):.4f} here.")


def generator_loss(loss_fn: Callable[[Any], Any]) -> None:
    """``generator_loss(fake_logits)`` must be the non-saturating generator loss: the
    binary cross-entropy from logits of the fakes against target 1 ("real"), averaged."""
    import tensorflow as tf

    filled(loss_fn, "generator_loss")
    fake = _logits(23, shift=-1.5)
    label = "generator_loss(fake_logits)"
    got = _value(call(loss_fn, tf.constant(fake), what=label), label)
    want = _bce(1.0, fake)
    if np.isclose(got, want, rtol=1e-4):
        ok(f"generator_loss: the fakes scored against target 1 (non-saturating), {got:.4f} here.")
        return
    named = {
        "it trains the generator toward 'fake' (target 0); the generator wants its images called real: "
        "target ones_like(fake_logits)": _bce(0.0, fake),
        "it is the saturating minimax loss -log(1 - D(G(z))) negated; its gradient vanishes exactly when the "
        "discriminator wins early on. Use the non-saturating form: cross-entropy with target 1": -_bce(0.0, fake),
        "sigmoid probabilities are passed to a from-logits loss (a sigmoid applied twice); pass the logits":
            _bce(1.0, _sigmoid(fake)),
        "the loss treats the logits as probabilities (from_logits=False); use BinaryCrossentropy(from_logits=True)":
            _keras_bce_probabilities(1.0, fake),
        "it is summed over the batch; average it": len(fake) * want,
    }
    for why, value in named.items():
        if np.isclose(got, value, rtol=1e-3):
            fail(f"{label}: {why}.")
    fail(f"{label} gives {got:.4f}; the cross-entropy from logits of the fakes against target 1 gives {want:.4f}.")


# ------------------------------------------------------------------ the training step
_LATENT = 5
_SMALL = (4, 4, 1)


def _tiny_pair(seed: int) -> tuple[Any, Any]:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    generator = keras.Sequential(
        [keras.Input((_LATENT,)), layers.Dense(8), layers.BatchNormalization(), layers.ReLU(),
         layers.Dense(16, activation="tanh"), layers.Reshape(_SMALL)],
        name="tiny_generator",
    )
    discriminator = keras.Sequential(
        [keras.Input(_SMALL), layers.Flatten(), layers.Dense(8), layers.LeakyReLU(0.2), layers.Dense(1)],
        name="tiny_discriminator",
    )
    return generator, discriminator


def _reference(order: str, d_loss_fn: Any, g_loss_fn: Any, real: Any, z: Any, steps: int) -> list[list[np.ndarray]]:
    """Trainable weights (generator, then discriminator) after each of ``steps`` reference steps."""
    import keras
    import tensorflow as tf

    generator, discriminator = _tiny_pair(0)
    d_opt, g_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1)
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables

    def d_step() -> None:
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            loss = d_loss_fn(discriminator(real, training=True), discriminator(fake, training=True))
        d_opt.apply_gradients(zip(tape.gradient(loss, d_vars), d_vars))

    def g_step() -> None:
        with tf.GradientTape() as tape:
            loss = g_loss_fn(discriminator(generator(z, training=True), training=True))
        g_opt.apply_gradients(zip(tape.gradient(loss, g_vars), g_vars))

    def together() -> None:
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = generator(z, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = d_loss_fn(discriminator(real, training=True), fake_logits)
            g_loss = g_loss_fn(fake_logits)
        d_grads, g_grads = d_tape.gradient(d_loss, d_vars), g_tape.gradient(g_loss, g_vars)
        d_opt.apply_gradients(zip(d_grads, d_vars))
        g_opt.apply_gradients(zip(g_grads, g_vars))

    plan = {"d_then_g": (d_step, g_step), "g_then_d": (g_step, d_step), "together": (together,)}[order]
    after = []
    for _ in range(steps):
        for part in plan:
            part()
        after.append([v.numpy().copy() for v in g_vars + d_vars])
    return after


def train_step(gan_cls: Any, discriminator_loss_fn: Callable[[Any, Any], Any],
               generator_loss_fn: Callable[[Any], Any]) -> None:
    """``GAN(generator, discriminator, latent_dim).train_step(real_images)`` must draw
    noise with ``self.sample_latent(batch_size)``, update the discriminator with the
    gradients of ``discriminator_loss`` (real vs generated images) with ``self.d_optimizer``,
    update the generator with the gradients of ``generator_loss`` with ``self.g_optimizer``,
    and return the metrics with ``"d_loss"`` and ``"g_loss"``."""
    import keras
    import tensorflow as tf

    filled(gan_cls, "GAN")
    generator, discriminator = _tiny_pair(0)
    gan = call(gan_cls, generator, discriminator, _LATENT, what=f"GAN(generator, discriminator, latent_dim={_LATENT})")
    call(gan.compile, d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1),
         what="gan.compile(d_optimizer=..., g_optimizer=...)")
    rng = np.random.default_rng(24)
    real = tf.constant(rng.uniform(-1, 1, size=(8, *_SMALL)).astype("float32"))
    z = tf.constant(rng.normal(size=(8, _LATENT)).astype("float32"))
    gan.sample_latent = lambda n: z[:n]  # the same noise every time, so the step is reproducible
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    names = [f"generator's {v.path}" for v in g_vars] + [f"discriminator's {v.path}" for v in d_vars]
    start = [v.numpy().copy() for v in g_vars + d_vars]
    references: dict[str, list[list[np.ndarray]]] = {}
    for step_number in (1, 2):
        result = call(gan.train_step, real, what="gan.train_step(real_images)",
                      hint="Draw z with self.sample_latent(batch_size); one GradientTape per network.")
        if not references:  # after the learner's step, so an unfilled TODO 5 is reported first
            for order in ("d_then_g", "together", "g_then_d"):
                references[order] = call(_reference, order, discriminator_loss_fn, generator_loss_fn, real, z, 2,
                                         what="the reference step with your discriminator_loss and generator_loss")
        now = [v.numpy() for v in g_vars + d_vars]
        moved = [not matches(a, s, rtol=0, atol=0) for a, s in zip(now, start)]
        n_g = len(g_vars)
        if not any(moved[n_g:]):
            fail("The discriminator's weights never change: apply the gradients of discriminator_loss to "
                 "self.discriminator.trainable_variables with self.d_optimizer.")
        if not any(moved[:n_g]):
            fail("The generator's weights never change: apply the gradients of generator_loss to "
                 "self.generator.trainable_variables with self.g_optimizer.")
        for i, was_moved in enumerate(moved):
            if not was_moved:
                fail(f"The {names[i]} never changed: apply gradients to all of its network's trainable variables.")
        best, worst_i, worst = None, 0, np.inf
        for order, after in references.items():
            ref = after[step_number - 1]
            bad = [i for i, (a, b) in enumerate(zip(now, ref)) if not matches(a, b, rtol=1e-3, atol=1e-5)]
            if not bad:
                best = order
                break
            if len(bad) < worst:
                worst, worst_i = len(bad), bad[0]
        if best is None:
            d_ok = any(all(matches(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(now[n_g:], after[step_number - 1][n_g:]))
                       for after in references.values())
            if not d_ok:
                swapped = _reference("d_then_g", lambda r, f: discriminator_loss_fn(f, r), generator_loss_fn, real, z, 2)
                if all(matches(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(now[n_g:], swapped[step_number - 1][n_g:])):
                    fail("The discriminator is trained with real and fake swapped: call "
                         "discriminator_loss(real_logits, fake_logits) in that order.")
                fail(f"After step {step_number} the discriminator's weights differ from a reference step "
                     f"({names[worst_i]}): update it with the gradients of discriminator_loss only, taken with "
                     f"respect to self.discriminator.trainable_variables (not the generator loss's gradients), "
                     f"and call both networks with training=True.")
            fail(f"After step {step_number} the generator's weights differ from a reference step ({names[worst_i]}): "
                 f"update it with the gradients of generator_loss(discriminator(fakes)) with respect to "
                 f"self.generator.trainable_variables, with both networks called with training=True.")
    if not isinstance(result, dict) or not {"d_loss", "g_loss"} <= set(result):
        got = sorted(result) if isinstance(result, dict) else kind(result)
        fail(f"gan.train_step returned {got}; return a dict with 'd_loss' and 'g_loss' "
             f"(e.g. {{m.name: m.result() for m in self.metrics}}).")
    ok(f"train_step: two steps match a reference step ({best.replace('_', ' ')}) on every weight of both networks.")


__all__ = ["discriminator_loss", "discriminator_model", "generator_loss", "generator_model", "train_step"]
