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

import functools

from collections.abc import Callable
from typing import Any

import numpy as np

from utils.checks._core import call, fail, filled, kind, matches, ok, to_array, tracker_verdict
from utils.checks._models import expect_shapes_before_running

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
    expect_shapes_before_running(
        model, f"The model from {label} does not start with a keras.Input, so its size and its layers' shapes are "
               f"unknown until it first runs -- and the cells below print its summary before any training. Start "
               f"it with a keras.Input of the shape it reads, as the TODO says.")
    if model.count_params() > MAX_PARAMS:
        fail(f"{label} has {model.count_params():,} parameters; keep it under {MAX_PARAMS:,} so it trains on a CPU.")
    return model


# ------------------------------------------------------------------ the two networks
_PROBE_VALUES = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], dtype="float32")


def _weight_layers() -> tuple[type, ...]:
    import keras

    return (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def _describe(layer: Any) -> str:
    import keras

    if isinstance(layer, keras.layers.Dense):
        return f"Dense({layer.units})"
    kernel = "x".join(str(k) for k in layer.kernel_size)
    return f"{type(layer).__name__}({layer.filters}, {kernel}, strides={layer.strides[0]})"


def _signature(layer: Any) -> tuple[Any, ...]:
    import keras

    if isinstance(layer, keras.layers.Dense):
        return ("Dense", layer.units)
    kind_ = "Conv2DTranspose" if isinstance(layer, keras.layers.Conv2DTranspose) else "Conv2D"
    return (kind_, layer.filters, tuple(layer.kernel_size), tuple(layer.strides))


def _blocks(model: Any) -> list[tuple[Any, list[Any]]]:
    """Each weight layer (Dense, Conv2D, Conv2DTranspose) with the layers that follow it
    up to the next weight layer, in the model's order."""
    blocks: list[tuple[Any, list[Any]]] = []
    for layer in _layers(model):
        if isinstance(layer, _weight_layers()):
            blocks.append((layer, []))
        elif blocks:
            blocks[-1][1].append(layer)
    return blocks


def _nonlinearity(layer: Any, followers: list[Any]) -> str:
    """What the block applies elementwise after its weight layer, found by running its
    activation and activation layers on a few numbers: 'identity', 'relu',
    'leaky_relu(slope)', 'tanh', 'sigmoid', 'softmax' or 'other'."""
    import keras
    import tensorflow as tf

    acts = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU,
            keras.layers.Softmax, keras.layers.Lambda)
    v = tf.constant(_PROBE_VALUES[None, :])
    out = v
    if getattr(layer, "activation", None) is not None:
        out = layer.activation(out)
    for follower in followers:
        if isinstance(follower, acts):
            try:
                out = follower(out)
            except Exception:  # noqa: BLE001, S112 - a Lambda that is not elementwise: not an activation
                continue
    y, x = np.asarray(out)[0], _PROBE_VALUES
    if y.shape != x.shape:
        return "other"
    named = {"identity": x, "relu": np.maximum(x, 0), "tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)),
             "softmax": np.exp(x) / np.exp(x).sum()}
    for name, want in named.items():
        if np.allclose(y, want, atol=1e-4):
            return name
    pos, neg = x > 0, x < 0
    if np.allclose(y[pos], x[pos], atol=1e-4) and np.all(y[neg] < 0):
        slope = y[neg] / x[neg]
        if np.allclose(slope, slope[0], atol=1e-4):
            return f"leaky_relu({float(slope[0]):.2g})"
    return "other"


def _norms(followers: list[Any]) -> list[Any]:
    import keras

    norm_types = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization,
                  keras.layers.UnitNormalization)
    return [f for f in followers if isinstance(f, norm_types)]


def _activation_before_norm(layer: Any, followers: list[Any]) -> bool:
    """Whether the block applies a non-linearity (the weight layer's own activation, or an
    activation layer) before its batch norm, where the TODOs ask for batch norm first."""
    import keras

    norms = _norms(followers)
    if not norms:
        return False
    if getattr(layer, "activation", None) not in (None, keras.activations.linear):
        return True
    acts = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)
    return any(isinstance(f, acts) for f in followers[: followers.index(norms[0])])


def _check_layers(model: Any, who: str, want: list[tuple[Any, ...]], names: list[str]) -> list[tuple[Any, list[Any]]]:
    """The weight layers must be the ones the TODO asks for, in order (a missing hidden
    layer, a wrong width or kernel size is named)."""
    blocks = _blocks(model)
    got = [_signature(layer) for layer, _ in blocks]
    if got == want:
        return blocks
    have = ", ".join(_describe(layer) for layer, _ in blocks) or "none"
    asked = ", ".join(names)
    if len(got) < len(want):
        missing = next((names[i] for i in range(len(want)) if i >= len(got) or got[i] != want[i]), names[-1])
        fail(f"The {who} has {len(got)} layers with weights ({have}); the TODO asks for {len(want)}: {asked}. "
             f"The first one missing or different is {missing}.")
    i = next(i for i in range(min(len(got), len(want)) + 1) if i >= len(got) or i >= len(want) or got[i] != want[i])
    if i < len(want) and i < len(got):
        fail(f"The {who}'s layer {i + 1} with weights is {_describe(blocks[i][0])}, expected {names[i]} "
             f"(the TODO asks for {asked}).")
    fail(f"The {who} has {len(got)} layers with weights ({have}); the TODO asks for {len(want)}: {asked}.")


def _batch_dependent(model: Any, x: Any) -> bool:
    """In training mode, batch norm makes each output depend on the other images of the batch."""
    import tensorflow as tf

    a = np.asarray(model(x, training=True))[:1]
    other = tf.concat([x[:1], tf.reverse(x[1:], axis=[0]) * 0.5 + 0.3], axis=0)
    b = np.asarray(model(other, training=True))[:1]
    return not np.allclose(a, b, atol=1e-6)


def generator_model(build_generator: Callable[[int], Any]) -> None:
    """``build_generator(latent_dim)`` must map noise ``(n, latent_dim)`` to images
    ``(n, 28, 28, 1)`` in ``[-1, 1]`` (a ``tanh`` output) through the layers TODO 1 asks
    for -- ``Dense(7*7*128)``, ``Conv2DTranspose(64, 4, 2)``, ``Conv2DTranspose(32, 4, 2)``,
    ``Conv2D(1, 5)`` -- each hidden one followed by batch norm (working in training mode)
    and ReLU; different noise must give different images."""
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
        hint = " End with a convolution to 1 channel." if images.shape[1:3] == (28, 28) else ""
        fail(f"{label} gives images of shape {images.shape}, expected (16, 28, 28, 1): start from a 7x7 map "
             f"(the dense layer's output, reshaped) and double it twice with stride-2 transposed convolutions."
             f"{hint}")
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
    trained = to_array(call(generator, z, training=True, what=f"{label}, in training mode"), label)
    if trained.min() < -1 - 1e-5 or trained.max() > 1 + 1e-5:
        fail(f"In training mode the generator's pixels reach {trained.min():.2f}..{trained.max():.2f}: something "
             f"after the tanh changes them (a batch norm or a rescaling?). The last layer's tanh is the output: "
             f"nothing after it.")
    if images.min() >= -1e-6:
        fail("The generator's pixels are never negative: the real images are scaled to [-1, 1], so end with "
             "activation='tanh' (a sigmoid or ReLU output cannot draw the black background at -1).")
    upsamplers = (keras.layers.Conv2DTranspose, keras.layers.UpSampling2D)
    if not any(isinstance(layer, upsamplers) for layer in _layers(generator)):
        fail("No transposed convolution: the generator doubles its map twice, 7 -> 14 -> 28, with stride-2 "
             "transposed convolutions (TODO 1 gives their sizes).")
    want = [("Dense", 7 * 7 * 128), ("Conv2DTranspose", 64, (4, 4), (2, 2)), ("Conv2DTranspose", 32, (4, 4), (2, 2)),
            ("Conv2D", 1, (5, 5), (1, 1))]
    names = ["Dense(6272) (7*7*128)", "Conv2DTranspose(64, 4x4, strides=2)", "Conv2DTranspose(32, 4x4, strides=2)",
             "Conv2D(1, 5x5, strides=1)"]
    blocks = _check_layers(generator, "generator", want, names)
    for (layer, followers), name in zip(blocks[:-1], names):
        if not _norms(followers):
            fail(f"No batch norm after the generator's {name}: every hidden layer is followed by "
                 f"BatchNormalization, which keeps the signal's scale stable while the generator trains.")
        act = _nonlinearity(layer, followers)
        if act == "identity":
            fail(f"No nonlinearity after the generator's {name}: add a ReLU after its batch norm (without it, "
                 f"stacked layers collapse into one linear map).")
        if act != "relu":
            fail(f"The generator's {name} is followed by {act}; TODO 1 asks for ReLU after each batch norm "
                 f"(LeakyReLU is the discriminator's).")
        if _activation_before_norm(layer, followers):
            fail(f"After the generator's {name} the ReLU comes before the batch norm: TODO 1 asks for batch "
                 f"normalisation, then ReLU (the norm's learned shift then decides where the ReLU cuts).")
    if _nonlinearity(*blocks[-1]) != "tanh":
        fail(f"The generator's last layer applies {_nonlinearity(*blocks[-1])}; end with activation='tanh'.")
    if not _batch_dependent(generator, z):
        fail("In training mode the generator's batch norm has no effect (each image ignores the rest of the "
             "batch): did you freeze it (trainable=False makes Keras run it in inference mode)?")
    ok(f"generator: ({latent_dim},) noise -> (28, 28, 1) images in [-1, 1], {generator.count_params():,} parameters.")


def _expect_raw_output(model: Any, blocks: list[tuple[Any, list[Any]]], x: Any) -> None:
    """By behaviour: with the last layer's kernel zeroed and its bias set to -5 then +5, a
    model that returns logits outputs exactly -5 and +5 (whatever comes after the last
    layer, a custom layer included, shows)."""
    if not blocks or getattr(blocks[-1][0], "bias", None) is None:
        return
    last = blocks[-1][0]
    saved = last.get_weights()
    try:
        outs = []
        for value in (-5.0, 5.0):
            last.set_weights([np.zeros_like(saved[0]), np.full_like(saved[1], value)])
            outs.append(np.asarray(model(x, training=False)))
    finally:
        last.set_weights(saved)
    if not (np.allclose(outs[0], -5.0, atol=1e-4) and np.allclose(outs[1], 5.0, atol=1e-4)):
        fail(f"With the last Dense(1) fixed to output -5 and +5, the discriminator returns about "
             f"{float(outs[0].mean()):.3g} and {float(outs[1].mean()):.3g}: something after that layer changes its "
             f"value, so the output is not a logit. Leave the last Dense(1) without activation, and nothing "
             f"after it: the loss applies the sigmoid.")


def discriminator_model(build_discriminator: Callable[[], Any]) -> None:
    """``build_discriminator()`` must map images ``(n, 28, 28, 1)`` to one **logit** per
    image ``(n, 1)`` (nothing after the last Dense), through the layers TODO 2 asks for --
    ``Conv2D(64, 4, 2)``, ``Conv2D(128, 4, 2)``, ``Dense(256)``, ``Dense(1)`` -- with
    LeakyReLU(0.2) after each hidden one and ``TwiceDifferentiableBatchNorm`` (in training
    mode) after the second and third, and pass gradients to its input."""
    import keras
    import tensorflow as tf

    from utils.normalization import TwiceDifferentiableBatchNorm

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
    if not any(isinstance(layer, keras.layers.Conv2D) for layer in _layers(discriminator)):
        fail("No Conv2D layer: the discriminator is a CNN that starts with two strided convolutions (TODO 2 "
             "gives their sizes).")
    blocks = _blocks(discriminator)
    if blocks:
        last = _nonlinearity(*blocks[-1])
        if last == "sigmoid":
            fail("The discriminator ends in a sigmoid; return logits (Dense(1) with no activation) and let the "
                 "loss apply the sigmoid with from_logits=True -- it is numerically safer.")
        if last != "identity":
            last = "an activation" if last == "other" else last
            fail(f"The discriminator's output goes through {last}, so it is not a logit (a logit can be any real "
                 f"number, negative too): leave the last Dense(1) without activation, and nothing after it.")
    loud = to_array(call(discriminator, x * 100.0, training=False, what="the discriminator on bright images"),
                    "the discriminator on bright images")
    if np.all((logits >= 0) & (logits <= 1)) and np.all((loud >= 0) & (loud <= 1)):
        fail("The discriminator's outputs all lie in (0, 1) for inputs of very different scales, like "
             "probabilities: return logits (no sigmoid at the end).")
    _expect_raw_output(discriminator, blocks, x)
    want = [("Conv2D", 64, (4, 4), (2, 2)), ("Conv2D", 128, (4, 4), (2, 2)), ("Dense", 256), ("Dense", 1)]
    names = ["Conv2D(64, 4x4, strides=2)", "Conv2D(128, 4x4, strides=2)", "Dense(256) (the hidden layer)", "Dense(1)"]
    blocks = _check_layers(discriminator, "discriminator", want, names)
    first, second, hidden = (layer for layer, _ in blocks[:3])
    halved = first.compute_output_shape((None, *IMAGE_SHAPE))
    maps = second.compute_output_shape(halved)
    if tuple(halved[1:3]) != (14, 14) or tuple(maps[1:3]) != (7, 7):
        fail(f"The discriminator's convolutions make maps of {halved[1]}x{halved[2]}, then {maps[1]}x{maps[2]}; "
             f"TODO 2 asks for 28 -> 14 -> 7: stride 2 with padding='same' halves the size exactly.")
    width = int(np.prod(maps[1:]))
    if int(hidden.kernel.shape[0]) != width:
        fail(f"The hidden Dense(256) reads {int(hidden.kernel.shape[0])} numbers per image, but the second "
             f"convolution's feature maps hold {width} ({' x '.join(str(int(m)) for m in maps[1:])}): flatten all "
             f"of them into the Dense layer. Pooling or averaging them first throws away where in the image each "
             f"feature was found.")
    for i, ((layer, followers), name) in enumerate(zip(blocks[:-1], names)):
        act = _nonlinearity(layer, followers)
        if act == "relu":
            fail(f"The discriminator's {name} is followed by ReLU; TODO 2 asks for LeakyReLU(0.2): its small slope "
                 f"for negative inputs keeps gradients flowing back to the generator.")
        if act == "identity":
            fail(f"No nonlinearity after the discriminator's {name}: add LeakyReLU(0.2).")
        if act.startswith("leaky_relu(") and act != "leaky_relu(0.2)":
            fail(f"The discriminator's {name} is followed by {act}: set the slope to 0.2 "
                 f"(keras.layers.LeakyReLU's default is 0.3).")
        if act != "leaky_relu(0.2)":
            fail(f"The discriminator's {name} is followed by {act}; TODO 2 asks for LeakyReLU(0.2).")
        norms = _norms(followers)
        if i == 0:
            if norms:
                fail(f"The discriminator's first block has a {type(norms[0]).__name__} after its {name}; TODO 2 "
                     f"has batch norm on the second convolution and the hidden layer only (the DCGAN paper leaves it "
                     f"off the discriminator's input layer: on every layer it made training unstable).")
            continue
        if not norms:
            fail(f"No batch norm after the discriminator's {name}: TODO 2 asks for "
                 f"normalization.TwiceDifferentiableBatchNorm() there.")
        if _activation_before_norm(layer, followers):
            fail(f"After the discriminator's {name} the LeakyReLU comes before the batch norm: TODO 2 asks for "
                 f"batch norm, then LeakyReLU(0.2).")
        if not all(isinstance(n, TwiceDifferentiableBatchNorm) for n in norms):
            fail(f"After the discriminator's {name} the batch norm is {type(norms[0]).__name__}, expected "
                 f"normalization.TwiceDifferentiableBatchNorm(): the R1 penalty differentiates the discriminator "
                 f"twice, and Keras's own BatchNormalization drops the second-derivative terms through the batch "
                 f"mean on TensorFlow, so R1 would follow a partly wrong gradient.")
    if not _batch_dependent(discriminator, x):
        fail("In training mode the discriminator's batch norm has no effect (each verdict ignores the rest of "
             "the batch): did you freeze it (trainable=False makes Keras run it in inference mode)?")
    grad = tape.gradient(total, x)
    if grad is None or not np.any(np.asarray(grad) != 0):
        fail("No gradient reaches the discriminator's input, so the generator could not learn through it.")
    ok(f"discriminator: (28, 28, 1) images -> one logit each, {discriminator.count_params():,} parameters.")


def _logits(seed: int, n: int = 32, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(scale=2.0, size=(n, 1)) + shift).astype("float32")


def _other_batch(loss_fn: Callable[..., Any], arrays: list[np.ndarray], want: list[float], label: str) -> None:
    """The loss on batches of other sizes holding confident logits (+-120) must still be one
    of ``want``: a target written for one batch size, or a cross-entropy computed from sigmoid
    probabilities (which round to exactly 0 or 1 there), shows."""
    import tensorflow as tf

    got = _value(call(loss_fn, *(tf.constant(a) for a in arrays), what=label, hint=(
        "If the shapes clash: build each target from its own logits' shape (ones_like / zeros_like), not from a "
        "batch size written into the code -- batches differ in size.")), label)
    if not np.isfinite(got):
        fail(f"{label} gives {got} for logits of +-120, which a confident discriminator can produce: it is computed "
             f"from sigmoid probabilities, which round to exactly 0 or 1 there. Use the notebook's cross_entropy, "
             f"which works from the logits.")
    if not any(np.isclose(got, value, rtol=1e-4) for value in want):
        fail(f"{label} gives {got:.4f}, expected {want[0]:.4f}: on batches of other sizes, with some confident "
             f"logits (+-120), the loss must stay the cross-entropy from logits, averaged over each batch.")


def _value(got: Any, label: str) -> float:
    array = to_array(got, label, what="a number")
    if array.size != 1:
        fail(f"{label} has shape {array.shape}; reduce it to one number, the mean over the batch.")
    return float(array.reshape(()))


def _keras_bce_probabilities(target: float, logits: np.ndarray) -> float:
    """What ``BinaryCrossentropy(from_logits=False)`` gives for logits (clipped as probabilities)."""
    p = np.clip(logits, 1e-7, 1 - 1e-7)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def _targets_as_logits(target: float, logits: np.ndarray) -> float:
    """What ``BinaryCrossentropy(from_logits=True)(logits, full_like(logits, target))``
    gives: the arguments swapped, the target read as a logit and the logits as targets."""
    return float(np.mean(max(target, 0.0) - target * logits + np.log1p(np.exp(-abs(target)))))


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
        real2, fake2 = _logits(31, n=19, shift=1.0), _logits(32, n=13, shift=-1.0)
        real2[0], fake2[0] = -120.0, 120.0  # confidently wrong
        want2 = [_bce(target, real2) + _bce(0.0, fake2) for target in (1.0, 0.9)]
        _other_batch(loss_fn, [real2, fake2], want2 + [v / 2 for v in want2],
                     "discriminator_loss(19 real logits, 13 fake logits)")
        ok(f"discriminator_loss: cross-entropy from logits, real -> 1, fake -> 0 ({what}); {got:.4f} here.")
        return
    named = {
        "the cross-entropy's two arguments are the other way round: a Keras loss takes the targets first, "
        "then the logits": _targets_as_logits(1.0, real) + _targets_as_logits(0.0, fake),
        "the labels are swapped: real images must get target 1 (ones_like(real_logits)) and fakes target 0":
            _bce(0.0, real) + _bce(1.0, fake),
        "only the real images are scored; add the fakes' term with target 0": _bce(1.0, real),
        "only the fakes are scored; add the real images' term with target 1": _bce(0.0, fake),
        "sigmoid probabilities are passed to a from-logits loss (a sigmoid applied twice); pass the logits":
            _bce(1.0, _sigmoid(real)) + _bce(0.0, _sigmoid(fake)),
        "the loss treats the logits as probabilities (from_logits=False); use the notebook's cross_entropy, "
        "which takes logits":
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
        fake2 = _logits(33, n=17, shift=-1.5)
        fake2[0] = -120.0  # a fake the discriminator rejects with certainty
        _other_batch(loss_fn, [fake2], [_bce(1.0, fake2)], "generator_loss(17 fake logits)")
        ok(f"generator_loss: the fakes scored against target 1 (non-saturating), {got:.4f} here.")
        return
    named = {
        "it trains the generator toward 'fake' (target 0); the generator wants its images called real, so its "
        "target is the 'real' label (1) for every fake": _bce(0.0, fake),
        "it is the minimax loss log(1 - D(G(z))), which is flat when the discriminator rejects the fakes -- "
        "as it does early on. Use the non-saturating form: the fakes against target 1": -_bce(0.0, fake),
        "sigmoid probabilities are passed to a from-logits loss (a sigmoid applied twice); pass the logits":
            _bce(1.0, _sigmoid(fake)),
        "the loss treats the logits as probabilities (from_logits=False); use the notebook's cross_entropy, "
        "which takes logits":
            _keras_bce_probabilities(1.0, fake),
        "it is summed over the batch; average it": len(fake) * want,
    }
    for why, value in named.items():
        if np.isclose(got, value, rtol=1e-3):
            fail(f"{label}: {why}.")
    fail(f"{label} gives {got:.4f}; the cross-entropy from logits of the fakes against target 1 gives {want:.4f}.")


# ------------------------------------------------------------------ the training step
_LATENT = 6
_BATCH = 16
_SMALL = (4, 4, 1)
_D_RATE, _G_RATE = 0.1, 0.05  # the check's two SGD learning rates: different, so a swap of optimizers shows
@functools.cache
def _fixed_dropout_class() -> Any:
    """The class of :func:`_fixed_dropout`, made once (a cache, not a module global that a
    check would rebind: the grader treats a changed module attribute as tampering)."""
    import keras

    class FixedDropout(keras.layers.Layer):
        def __init__(self, rate: float, seed: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.rate, self.seed = rate, seed

        def build(self, input_shape: Any) -> None:
            keep = np.random.default_rng(self.seed).random(int(input_shape[-1])) >= self.rate
            self.mask = keras.ops.convert_to_tensor((keep / (1 - self.rate)).astype("float32"))

        def call(self, x: Any, training: Any = None) -> Any:
            return x * self.mask if training else x

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    return FixedDropout


def _fixed_dropout(rate: float, seed: int) -> Any:
    """A dropout layer with a fixed mask (drawn once from ``seed``), so that a step with
    dropout can be compared exactly with a reference step; like Keras's Dropout it acts
    only in training mode."""
    return _fixed_dropout_class()(rate, seed)


def _tiny_pair(seed: int | None) -> tuple[Any, Any]:
    """A generator and a discriminator with batch norm and dropout (so training mode
    matters in both), each starting with a probe layer that records its calls. With
    ``seed=None`` the global random state is left alone (reference copies, built between
    the learner's steps, must not reset the learner's random draws)."""
    import keras
    from keras import layers

    from utils.checks._core import probe_layer
    from utils.normalization import TwiceDifferentiableBatchNorm

    if seed is not None:
        keras.utils.set_random_seed(seed)
    generator = keras.Sequential(
        [keras.Input((_LATENT,)), probe_layer("generator_probe", "the generator"), layers.Dense(8), layers.BatchNormalization(),
         layers.ReLU(), _fixed_dropout(0.25, 1), layers.Dense(16, activation="tanh"), layers.Reshape(_SMALL)],
        name="tiny_generator",
    )
    discriminator = keras.Sequential(
        [keras.Input(_SMALL), probe_layer("discriminator_probe", "the discriminator"), layers.Flatten(), layers.Dense(8),
         TwiceDifferentiableBatchNorm(), layers.LeakyReLU(0.2), _fixed_dropout(0.25, 2), layers.Dense(1)],
        name="tiny_discriminator",
    )
    return generator, discriminator


def _probe(model: Any) -> Any:
    return next(layer for layer in model.layers if layer.name.endswith("_probe"))


class _Reference:
    """A reference training run in one update order -- ``"together"`` (both losses from
    the same forward pass), ``"d_then_g"`` or ``"g_then_d"`` -- that takes the noise
    the learner's step drew (``z_index`` for the discriminator's and the generator's
    update), and keeps the losses of each step."""

    def __init__(self, order: str, d_index: int, g_index: int, d_loss_fn: Any, g_loss_fn: Any,
                 initial: tuple[list[np.ndarray], list[np.ndarray]],
                 rates: tuple[float, float] = (_D_RATE, _G_RATE)) -> None:
        import keras

        self.order, self.d_index, self.g_index = order, d_index, g_index
        self.d_loss_fn, self.g_loss_fn = d_loss_fn, g_loss_fn
        self.generator, self.discriminator = _tiny_pair(None)
        self.generator.set_weights(initial[0])
        self.discriminator.set_weights(initial[1])
        self.d_opt, self.g_opt = keras.optimizers.SGD(rates[0]), keras.optimizers.SGD(rates[1])
        self.losses: list[dict[str, float]] = []

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.generator.trainable_variables + self.discriminator.trainable_variables]

    def step(self, real: Any, zs: list[np.ndarray]) -> None:
        import tensorflow as tf

        g, d = self.generator, self.discriminator
        g_vars, d_vars = g.trainable_variables, d.trainable_variables
        zd, zg = tf.constant(zs[self.d_index]), tf.constant(zs[self.g_index])
        losses: dict[str, float] = {}

        def d_step() -> None:
            with tf.GradientTape() as tape:
                loss = self.d_loss_fn(d(real, training=True), d(g(zd, training=True), training=True))
            self.d_opt.apply_gradients(zip(tape.gradient(loss, d_vars), d_vars))
            losses["d_loss"] = float(loss)

        def g_step() -> None:
            with tf.GradientTape() as tape:
                loss = self.g_loss_fn(d(g(zg, training=True), training=True))
            self.g_opt.apply_gradients(zip(tape.gradient(loss, g_vars), g_vars))
            losses["g_loss"] = float(loss)

        def together() -> None:
            with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
                fake_logits = d(g(zd, training=True), training=True)
                d_loss = self.d_loss_fn(d(real, training=True), fake_logits)
                # the generator's loss on its own draw of noise, when the step drew twice
                g_logits = fake_logits if self.g_index == self.d_index else d(g(zg, training=True), training=True)
                g_loss = self.g_loss_fn(g_logits)
            d_grads, g_grads = d_tape.gradient(d_loss, d_vars), g_tape.gradient(g_loss, g_vars)
            self.d_opt.apply_gradients(zip(d_grads, d_vars))
            self.g_opt.apply_gradients(zip(g_grads, g_vars))
            losses["d_loss"], losses["g_loss"] = float(d_loss), float(g_loss)

        plan = {"d_then_g": (d_step, g_step), "g_then_d": (g_step, d_step), "together": (together,)}[self.order]
        for part in plan:
            part()
        self.losses.append(losses)


def _step_hint(error: str) -> str:
    """What an error raised inside the learner's train_step most likely means."""
    low = error.lower()
    if "no gradients provided" in low:
        return ("The tape recorded no path from those variables to the loss: generate the fakes, score them and "
                "compute each loss inside the `with tf.GradientTape()` block, and take each network's gradients "
                "of its own loss.")
    if "unknown variable" in low:
        return ("Each optimizer belongs to one network: self.d_optimizer updates the discriminator's variables, "
                "self.g_optimizer the generator's.")
    if "non-persistent" in low or "only be used to compute one set" in low:
        return ("A tape gives one set of gradients: use one tape per network (two `with` blocks, or both "
                "opened in one `with`), or a persistent tape.")
    if "shape" in low or "dimension" in low or "incompatible" in low:
        return (f"If the shapes clash at the generator's input: draw one noise vector per real image, shape "
                f"(batch_size, self.latent_dim), here ({_BATCH}, {_LATENT}).")
    return ("One step: noise, fakes, the discriminator's verdicts on the real and the fake images, both losses, and "
            "each network's gradients applied by its own optimizer.")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return matches(a, b, rtol=1e-3, atol=1e-5)


def _traced_steps(gan: Any, real: Any, g_log: Any, d_log: Any) -> None:
    """Two steps of ``gan.train_step`` compiled by ``tf.function``, as ``fit`` runs it: they
    must run, and draw new noise at each step (NumPy's random numbers are drawn once, when
    the step is traced)."""
    import tensorflow as tf

    from utils.checks._core import logged_train_step

    compiled = tf.function(gan.train_step)
    label = "gan.train_step(real_images) inside a tf.function (as fit runs it)"
    noises = []
    for _ in range(2):
        _, zs = logged_train_step(
            compiled, real, ((g_log, "generator"), (d_log, "discriminator")), g_log, what=label,
            hint="fit compiles the step, and there a tensor has no value yet: keep the losses tensors until the "
                 "trackers take them (no .numpy() or float()), draw the noise with TensorFlow or keras.random "
                 "(not NumPy), and take sizes from tensors at run time (tf.shape), not with len().",
            never_called="gan.train_step never calls the generator: generate the fakes from noise inside the step.",
            consequence="its batch norm and dropout then behave as in inference. Call both networks with "
                        "training=True in the step.")
        noises.append(np.concatenate(zs))
    if matches(noises[0], noises[1], rtol=0, atol=0):
        fail(f"{label} feeds the generator the same noise at every step: random numbers drawn with NumPy (or "
             f"Python) are drawn once, when the step is traced, and then replayed. Draw the noise with TensorFlow -- "
             f"self.sample_latent does.")


def train_step(gan_cls: Any, discriminator_loss_fn: Callable[[Any, Any], Any],
               generator_loss_fn: Callable[[Any], Any]) -> None:
    """``GAN(generator, discriminator, latent_dim).train_step(real_images)`` must draw
    standard-normal noise, one vector per real image and new at every step (with
    ``self.sample_latent`` or any other way), update the discriminator with the gradients
    of ``discriminator_loss`` (real vs generated images) with ``self.d_optimizer``, update
    the generator with the gradients of ``generator_loss`` with ``self.g_optimizer``, both
    networks in training mode, and return the metrics with ``"d_loss"`` and ``"g_loss"``
    from their own trackers.

    The reference networks contain batch norm and dropout; the reference steps replay the
    noise the learner's step drew (recorded at the generator's input) in each correct
    update order: both networks from the same forward pass, or one after the other."""
    import keras
    import tensorflow as tf

    from utils.checks._core import CallLog, logged_train_step

    filled(gan_cls, "GAN")
    generator, discriminator = _tiny_pair(0)
    g_log, d_log = CallLog((_BATCH, _LATENT), slots=4), CallLog()
    _probe(generator).log, _probe(discriminator).log = g_log, d_log
    gan = call(gan_cls, generator, discriminator, _LATENT, what=f"GAN(generator, discriminator, latent_dim={_LATENT})")
    # two learning rates, so that an update made with the other network's optimizer shows
    call(gan.compile, d_optimizer=keras.optimizers.SGD(_D_RATE), g_optimizer=keras.optimizers.SGD(_G_RATE),
         what="gan.compile(d_optimizer=..., g_optimizer=...)")
    rng = np.random.default_rng(24)
    real = tf.constant(rng.uniform(-1, 1, size=(_BATCH, *_SMALL)).astype("float32"))
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables
    n_g = len(g_vars)
    names = [f"generator's {v.path}" for v in g_vars] + [f"discriminator's {v.path}" for v in d_vars]
    start = [v.numpy().copy() for v in g_vars + d_vars]
    initial = (generator.get_weights(), discriminator.get_weights())
    plans: list[tuple[str, int, int]] | None = None
    history: list[list[np.ndarray]] = []
    built: dict[tuple[str, int, int], _Reference] = {}
    draws: list[np.ndarray] = []

    def reference(plan: tuple[str, int, int]) -> _Reference:
        """The reference run for ``plan``, built on first use and brought up to the current step."""
        if plan not in built:
            built[plan] = call(_Reference, *plan, discriminator_loss_fn, generator_loss_fn, initial,
                               what="the reference step with your discriminator_loss and generator_loss")
        run = built[plan]
        while len(run.losses) < len(history):
            call(run.step, real, history[len(run.losses)],
                 what="the reference step with your discriminator_loss and generator_loss")
        return run

    # the notebook's class keeps a moving average of the generator, updated after the TODO
    ema = getattr(gan, "ema_generator", None)
    ema_start = [np.asarray(w).copy() for w in ema.weights] if ema is not None else []
    best: _Reference | None = None
    best_plan: tuple[str, int, int] | None = None
    for step_number in (1, 2):
        result, zs = logged_train_step(
            gan.train_step, real, ((g_log, "generator"), (d_log, "discriminator")), g_log,
            what="gan.train_step(real_images)",
            hint=_step_hint,
            never_called="gan.train_step never calls the generator: generate the fakes from noise inside the step.",
            consequence="its batch norm and dropout then behave as in inference. Call both networks with "
                        "training=True in the step.")
        z = np.concatenate(zs)
        if np.allclose(z, z[:1], atol=1e-6):
            fail("Every fake in the batch comes from the same noise vector: draw one independent vector per image, "
                 "shape (batch_size, latent_dim).")
        if not (0.6 < float(z.std()) < 1.5 and abs(float(z.mean())) < 0.45):
            fail(f"The noise fed to the generator has mean {z.mean():.2f} and standard deviation {z.std():.2f}; "
                 f"draw it from the standard normal N(0, 1), as sample_latent does.")
        if step_number == 2 and any(matches(a, b, rtol=0, atol=1e-7) for a in zs for b in draws):
            fail("The generator gets the same noise at every step (a fixed seed?): each step must draw new noise, "
                 "e.g. with self.sample_latent(batch_size), which advances its seed generator.")
        draws = zs
        history.append(zs)
        if plans is None:  # after the learner's step, so an unfilled TODO 5 is reported first
            last = len(zs) - 1
            plans = sorted({("together", 0, 0), ("together", 0, last), ("d_then_g", 0, 0), ("d_then_g", 0, last),
                            ("g_then_d", 0, 0), ("g_then_d", last, 0)}, key=lambda plan: (plan[0] != "together", plan))
        now = [v.numpy() for v in g_vars + d_vars]
        moved = [not matches(a, s, rtol=0, atol=0) for a, s in zip(now, start)]
        if not any(moved[n_g:]):
            fail("The discriminator's weights never change: apply the gradients of discriminator_loss to "
                 "self.discriminator.trainable_variables with self.d_optimizer.")
        if not any(moved[:n_g]):
            fail("The generator's weights never change: apply the gradients of generator_loss to "
                 "self.generator.trainable_variables with self.g_optimizer.")
        for i, was_moved in enumerate(moved):
            if not was_moved:
                fail(f"The {names[i]} never changed: apply gradients to all of its network's trainable variables.")
        best = None
        for plan in ([best_plan] if best_plan else []) + (plans or []):  # the order that matched so far first
            if all(_close(a, b) for a, b in zip(now, reference(plan).weights())):
                best, best_plan = reference(plan), plan
                break
        if best is not None:
            continue
        own = getattr(gan, "optimizer", None)
        if own is not None and own is not gan.d_optimizer and own is not gan.g_optimizer and int(own.iterations) > 0:
            fail("The model's own optimizer (self.optimizer, which compile() creates) took a step: each network has "
                 "its own, self.d_optimizer for the discriminator and self.g_optimizer for the generator.")
        references = [reference(plan) for plan in plans or []]
        for plan in plans or []:
            crossed = _Reference(*plan, discriminator_loss_fn, generator_loss_fn, initial, rates=(_G_RATE, _D_RATE))
            for past in history:
                crossed.step(real, past)
            if all(_close(a, b) for a, b in zip(now, crossed.weights())):
                fail("The optimizers are swapped: the discriminator was updated by self.g_optimizer and the "
                     "generator by self.d_optimizer. Each network has its own (in the notebook, with its own "
                     "learning-rate schedule).")
        d_match = [r for r in references if all(_close(a, b) for a, b in zip(now[n_g:], r.weights()[n_g:]))]
        if not d_match:
            wrong = [i for i in range(n_g, len(now)) if not _close(now[i], references[0].weights()[i])]
            swapped = _Reference("together", 0, 0, lambda r, f: discriminator_loss_fn(f, r), generator_loss_fn, initial)
            for past in history:
                swapped.step(real, past)
            if step_number == 1 and all(_close(a, b) for a, b in zip(now[n_g:], swapped.weights()[n_g:])):
                fail("The discriminator is trained with real and fake swapped: call "
                     "discriminator_loss(real_logits, fake_logits) in that order.")
            if any(size is not None and size > _BATCH for size in d_log.batches):
                fail(f"The discriminator scored {max(s for s in d_log.batches if s is not None)} images in one call: "
                     f"the real and the fake images together. Score them in two separate calls, as TODO 5 asks: "
                     f"with batch norm, one call on both normalises them with shared statistics, which is not the "
                     f"step this notebook (or the DCGAN paper) trains: each kind gets a batch of its own.")
            fail(f"After step {step_number} the discriminator's weights differ from a reference step "
                 f"({names[wrong[0]] if wrong else names[n_g]}). Were the real and the fake images scored in two "
                 f"separate calls of the discriminator? Were its weights updated with the gradients of "
                 f"discriminator_loss only (not the generator loss's), taken with respect to "
                 f"self.discriminator.trainable_variables?")
        wrong = [i for i in range(n_g) if not _close(now[i], d_match[0].weights()[i])]
        fail(f"After step {step_number} the generator's weights differ from a reference step "
             f"({names[wrong[0]] if wrong else names[0]}): update it with the gradients of "
             f"generator_loss(discriminator(fakes)) with respect to self.generator.trainable_variables.")
    if ema is not None and all(matches(np.asarray(w), s, rtol=0, atol=0) for w, s in zip(ema.weights, ema_start)):
        fail("After two steps the averaged generator (ema_generator) has not moved: the lines after the TODO -- the "
             "moving average, the R1 step -- never ran. Does your code end with its own return? The return is "
             "already written, at the end of train_step.")
    if best is None:  # unreachable: each step either matched a reference or failed above
        fail("train_step could not be compared with a reference step.")
    if not isinstance(result, dict) or not {"d_loss", "g_loss"} <= set(result):
        got = sorted(result) if isinstance(result, dict) else kind(result)
        fail(f"gan.train_step returned {got}; return a dict with 'd_loss' and 'g_loss' "
             f"(e.g. {{m.name: m.result() for m in self.metrics}}).")
    for key in ("d_loss", "g_loss"):
        tracker_verdict(result, key, best.losses, {"d_loss": "discriminator's loss", "g_loss": "generator's loss"},
                        "Update d_tracker with the discriminator's loss and g_tracker with the generator's.")
    _traced_steps(gan, real, g_log, d_log)
    order = {"together": "both from one forward pass", "d_then_g": "discriminator first",
             "g_then_d": "generator first"}[best.order]
    ok(f"train_step: two steps match a reference step ({order}) on every weight of both networks.")


__all__ = ["discriminator_loss", "discriminator_model", "generator_loss", "generator_model", "train_step"]
