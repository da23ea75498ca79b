"""Checks of notebook 06 accept correct variants (the networks written with either API,
sum or mean of the two discriminator terms, one-sided label smoothing, every update order
in the step, noise drawn with or without the notebook's helper) and reject the classic
mistakes: a missing hidden layer or batch norm, Keras's batch norm where the
twice-differentiable one is asked, ReLU where LeakyReLU(0.2) is asked, any nonlinearity
on the logits, real/fake labels swapped, a generator trained toward "fake", probabilities
given to from-logits losses, a discriminator updated with the generator's gradients,
networks stepped outside training mode, noise from a fixed seed, trackers swapped."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from utils.checks import TodoNotDone, gan
from utils.normalization import TwiceDifferentiableBatchNorm

bce = keras.losses.BinaryCrossentropy(from_logits=True)


# ---------------------------------------------------------------- models
def _generator(out_activation="tanh", act=layers.ReLU, norm=layers.BatchNormalization, skip=(), up=True,
               channels=1, last_kernel=5, norm_at=(0, 1, 2), act_first=False):
    """The notebook's generator, with one thing changed per argument."""
    def build(latent_dim):
        def block(i):
            out = []
            if i in norm_at and norm is not None:
                out.append(norm())
            if act is not None:
                out.insert(0, act()) if act_first else out.append(act())
            return out

        stack = [keras.Input((latent_dim,)), layers.Dense(7 * 7 * 128, use_bias=False), *block(0),
                 layers.Reshape((7, 7, 128))]
        if up:
            if 1 not in skip:
                stack += [layers.Conv2DTranspose(64, 4, strides=2, padding="same", use_bias=False), *block(1)]
            if 2 not in skip:
                stack += [layers.Conv2DTranspose(32, 4, strides=2, padding="same", use_bias=False), *block(2)]
            if 3 not in skip:
                stack += [layers.Conv2D(channels, last_kernel, padding="same", activation=out_activation)]
        else:
            stack += [layers.Flatten(), layers.Dense(784 * channels, activation=out_activation),
                      layers.Reshape((28, 28, channels))]
        return keras.Sequential(stack)

    return build


def _functional_generator(latent_dim):
    """Written differently: the functional API, activations as strings, biases kept."""
    z = keras.Input((latent_dim,))
    h = layers.Activation("relu")(layers.BatchNormalization()(layers.Dense(7 * 7 * 128)(z)))
    h = layers.Reshape((7, 7, 128))(h)
    h = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2DTranspose(64, (4, 4), (2, 2), "same")(h)))
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2DTranspose(32, 4, 2, "same")(h)))
    return keras.Model(z, layers.Activation("tanh")(layers.Conv2D(1, 5, padding="same")(h)))


@pytest.mark.parametrize("build", [_generator(), _functional_generator,
                                   _generator(norm=TwiceDifferentiableBatchNorm)])
def test_generator_accepts(build, capsys):
    gan.generator_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (_generator(out_activation="sigmoid"), "never negative"),
        (_generator(out_activation=None), "end with activation='tanh'"),
        (_generator(out_activation="relu"), "end with activation='tanh'"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Dense(784, activation="tanh"), layers.Reshape((28, 28, 1))]),
         "No transposed convolution"),
        (_generator(channels=3), "to 1 channel"),
        (_generator(skip=(3,)), "(16, 28, 28, 32)"),
        (_generator(skip=(2,)), "(16, 14, 14, 1)"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Dense(7 * 7 * 4), layers.Reshape((7, 7, 4)),
                                     layers.Conv2DTranspose(1, 4, 2, padding="same", activation="tanh")]), "(16, 14, 14, 1)"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Lambda(lambda z: 0 * z[:, :1]), layers.Dense(7 * 7 * 4),
                                     layers.Reshape((7, 7, 4)), layers.Conv2DTranspose(1, 4, 4, padding="same", activation="tanh")]),
         "same image"),
        # a missing hidden layer, the wrong widths or kernels
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Dense(7 * 7 * 128), layers.BatchNormalization(), layers.ReLU(),
                                     layers.Reshape((7, 7, 128)),
                                     layers.Conv2DTranspose(64, 4, 2, padding="same"), layers.BatchNormalization(), layers.ReLU(),
                                     layers.Conv2DTranspose(1, 4, 2, padding="same", activation="tanh")]),
         "the TODO asks for 4"),
        (_generator(last_kernel=3), "expected Conv2D(1, 5x5, strides=1)"),
        # batch norm and ReLU
        (_generator(norm=None), "No batch norm after the generator's Dense(6272)"),
        (_generator(norm_at=(0, 2)), "No batch norm after the generator's Conv2DTranspose(64"),
        (_generator(act=None), "No nonlinearity"),
        (_generator(act=lambda: layers.LeakyReLU(0.2)), "asks for ReLU"),
        (_generator(act=lambda: layers.Activation("tanh")), "asks for ReLU"),
        (_generator(norm=lambda: layers.BatchNormalization(trainable=False)), "batch norm has no effect"),
        (_generator(act_first=True), "the ReLU comes before the batch norm"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Dense(7 * 7 * 128, activation="relu"),
                                     layers.BatchNormalization(), layers.Reshape((7, 7, 128)),
                                     layers.Conv2DTranspose(64, 4, 2, padding="same"), layers.BatchNormalization(),
                                     layers.ReLU(), layers.Conv2DTranspose(32, 4, 2, padding="same"),
                                     layers.BatchNormalization(), layers.ReLU(),
                                     layers.Conv2D(1, 5, padding="same", activation="tanh")]),
         "the ReLU comes before the batch norm"),
        # something after the tanh: in [-1, 1] in inference, not in training
        (lambda d: keras.Sequential([keras.Input((d,)), *_generator()(d).layers, layers.BatchNormalization()]),
         "after the tanh"),
        (lambda d: keras.Sequential(_generator()(d).layers), "does not start with a keras.Input"),
    ],
)
def test_generator_rejects(build, fragment, rejects):
    rejects(gan.generator_model, build, fragment=fragment)


def _discriminator(final=None, act=lambda: layers.LeakyReLU(0.2), norm=TwiceDifferentiableBatchNorm, hidden=True,
                   conv=True, after=None, norm_at=(1, 2), first_norm=False, act_first=False, padding="same"):
    """The notebook's discriminator, with one thing changed per argument."""
    def build():
        def block(i):
            out = [norm()] if (i in norm_at and norm is not None) or (i == 0 and first_norm) else []
            acts = [act()] if act is not None else []
            return acts + out if act_first else out + acts

        stack = [keras.Input((28, 28, 1))]
        if conv:
            stack += [layers.Conv2D(64, 4, strides=2, padding=padding), *block(0),
                      layers.Conv2D(128, 4, strides=2, padding=padding, use_bias=False), *block(1)]
        stack += [layers.Flatten()]
        if hidden:
            stack += [layers.Dense(256, use_bias=False), *block(2)]
        stack += [layers.Dense(1, activation=final)]
        if after is not None:
            stack += [after]
        return keras.Sequential(stack)

    return build


def _averaged_discriminator():
    """The feature maps averaged over the image (GlobalAveragePooling2D) instead of flattened."""
    return keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(64, 4, strides=2, padding="same"), layers.LeakyReLU(0.2),
        layers.Conv2D(128, 4, strides=2, padding="same", use_bias=False), TwiceDifferentiableBatchNorm(),
        layers.LeakyReLU(0.2), layers.GlobalAveragePooling2D(), layers.Dense(256, use_bias=False),
        TwiceDifferentiableBatchNorm(), layers.LeakyReLU(0.2), layers.Dense(1)])


class _Squash(layers.Layer):
    """A custom layer that hides a ReLU."""

    def call(self, t):
        return keras.ops.relu(t)


def _functional_discriminator():
    x = keras.Input((28, 28, 1))
    h = layers.Conv2D(64, (4, 4), strides=(2, 2), padding="same", activation="leaky_relu")(x)
    h = layers.Conv2D(128, 4, strides=2, padding="same")(h)
    h = layers.LeakyReLU(negative_slope=0.2)(TwiceDifferentiableBatchNorm()(h))
    h = layers.Dense(256)(layers.Flatten()(h))
    h = layers.Activation("leaky_relu")(TwiceDifferentiableBatchNorm()(h))
    return keras.Model(x, layers.Dense(1)(h))


@pytest.mark.parametrize("build", [_discriminator(), _functional_discriminator])
def test_discriminator_accepts(build, capsys):
    gan.discriminator_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (_discriminator(final="sigmoid"), "ends in a sigmoid"),
        (_discriminator(after=layers.Activation("sigmoid")), "ends in a sigmoid"),
        (_discriminator(after=layers.Lambda(lambda t: 1 / (1 + keras.ops.exp(-t)))), "ends in a sigmoid"),
        # any nonlinearity on the logits
        (_discriminator(final="relu"), "goes through relu"),
        (_discriminator(final="tanh"), "goes through tanh"),
        (_discriminator(after=layers.Softmax()), "goes through softmax"),
        (_discriminator(after=layers.Lambda(lambda t: keras.ops.relu(t))), "goes through relu"),
        (_discriminator(after=layers.Lambda(lambda t: keras.ops.tanh(t) * 0.5)), "goes through an activation"),
        (_discriminator(after=_Squash()), "something after that layer changes its value"),
        (_discriminator(conv=False), "No Conv2D"),
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 4, 2), layers.Dense(1)]), "Flatten"),
        # the hidden layer, LeakyReLU, the twice-differentiable batch norm
        (_discriminator(hidden=False), "the TODO asks for 4"),
        (_discriminator(act=layers.ReLU), "LeakyReLU(0.2)"),
        (_discriminator(act=layers.LeakyReLU), "keras.layers.LeakyReLU's default is 0.3"),
        (_discriminator(act=None), "No nonlinearity"),
        (_discriminator(norm=layers.BatchNormalization), "drops the second-derivative terms"),
        (_discriminator(norm=None), "No batch norm after the discriminator's Conv2D(128"),
        (_discriminator(norm_at=(1,)), "No batch norm after the discriminator's Dense(256)"),
        (_discriminator(norm=lambda: TwiceDifferentiableBatchNorm(trainable=False)), "batch norm has no effect"),
        (_averaged_discriminator, "throws away where in the image"),
        (_discriminator(act_first=True), "LeakyReLU comes before the batch norm"),
        # the first block has no batch norm (TODO 2, hint 1), of either kind
        (_discriminator(first_norm=True), "first block has a TwiceDifferentiableBatchNorm"),
        (_discriminator(first_norm=True, norm=layers.BatchNormalization), "first block has a BatchNormalization"),
        (_discriminator(padding="valid"), "28 -> 14 -> 7"),
        (lambda: keras.Sequential(_discriminator()().layers), "does not start with a keras.Input"),
    ],
)
def test_discriminator_rejects(build, fragment, rejects):
    rejects(gan.discriminator_model, build, fragment=fragment)


def test_models_unfilled_are_todo():
    def build(*args):
        raise NotImplementedError("TODO 1")

    for check in (gan.generator_model, gan.discriminator_model):
        with pytest.raises(TodoNotDone):
            check(build)


# ---------------------------------------------------------------- losses
def d_loss_sum(real, fake):
    return bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)


RIGHT_D = [
    d_loss_sum,
    lambda r, f: 0.5 * (bce(tf.ones_like(r), r) + bce(tf.zeros_like(f), f)),
    lambda r, f: tf.reduce_mean(tf.nn.softplus(-r)) + tf.reduce_mean(tf.nn.softplus(f)),
    lambda r, f: bce(0.9 * tf.ones_like(r), r) + bce(tf.zeros_like(f), f),
    lambda r, f: tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(r), logits=r))
    + tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(f), logits=f)),
]


@pytest.mark.parametrize("fn", RIGHT_D)
def test_discriminator_loss_accepts(fn, capsys):
    gan.discriminator_loss(fn)
    assert "[ok]" in capsys.readouterr().out


probs_bce = keras.losses.BinaryCrossentropy(from_logits=False)


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda r, f: bce(tf.zeros_like(r), r) + bce(tf.ones_like(f), f), "labels are swapped"),
        (lambda r, f: bce(tf.ones_like(r), r), "only the real images"),
        (lambda r, f: bce(tf.zeros_like(f), f), "only the fakes"),
        (lambda r, f: bce(tf.ones_like(r), tf.sigmoid(r)) + bce(tf.zeros_like(f), tf.sigmoid(f)), "sigmoid applied twice"),
        (lambda r, f: probs_bce(tf.ones_like(r), r) + probs_bce(tf.zeros_like(f), f), "from_logits=False"),
        (lambda r, f: tf.reduce_sum(tf.nn.softplus(-r)) + tf.reduce_sum(tf.nn.softplus(f)), "summed over the batch"),
        (lambda r, f: tf.reduce_mean(tf.nn.softplus(-r)) - tf.reduce_mean(tf.nn.softplus(f)), "cross-entropy from logits"),
        (lambda r, f: tf.nn.softplus(-r) + tf.nn.softplus(f), "reduce it to one number"),
        (lambda r, f: bce(r, tf.ones_like(r)) + bce(f, tf.zeros_like(f)), "two arguments are the other way round"),
        (lambda r, f: 0.5 * (bce(r, tf.ones_like(r)) + bce(f, tf.zeros_like(f))), "targets first"),
        # right for the first batches; a batch size written in, or probabilities, show on others
        (lambda r, f: bce(tf.ones((32, 1)), r) + bce(tf.zeros((32, 1)), f), "batch size written into the code"),
        (lambda r, f: -tf.reduce_mean(tf.math.log(tf.sigmoid(r))) - tf.reduce_mean(tf.math.log(1 - tf.sigmoid(f))),
         "round to exactly 0 or 1"),
    ],
)
def test_discriminator_loss_rejects(fn, fragment, rejects):
    rejects(gan.discriminator_loss, fn, fragment=fragment)


def g_loss(fake):
    return bce(tf.ones_like(fake), fake)


@pytest.mark.parametrize("fn", [
    g_loss,
    lambda f: tf.reduce_mean(tf.nn.softplus(-f)),
    lambda f: -tf.reduce_mean(tf.math.log_sigmoid(f)),
])
def test_generator_loss_accepts(fn, capsys):
    gan.generator_loss(fn)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragment",
    [
        (lambda f: bce(tf.zeros_like(f), f), "toward 'fake'"),
        (lambda f: -bce(tf.zeros_like(f), f), "saturating"),
        (lambda f: bce(tf.ones_like(f), tf.sigmoid(f)), "sigmoid applied twice"),
        (lambda f: probs_bce(tf.ones_like(f), f), "from_logits=False"),
        (lambda f: tf.reduce_sum(tf.nn.softplus(-f)), "summed over the batch"),
        (lambda f: tf.reduce_mean(tf.square(f - 1.0)), "target 1 gives"),
        (lambda f: bce(tf.ones((32, 1)), f), "batch size written into the code"),
        (lambda f: -tf.reduce_mean(tf.math.log(tf.sigmoid(f))), "round to exactly 0 or 1"),
    ],
)
def test_generator_loss_rejects(fn, fragment, rejects):
    rejects(gan.generator_loss, fn, fragment=fragment)


# ---------------------------------------------------------------- train step
def _gan_class(body, report="tracker"):
    class GAN(keras.Model):
        def __init__(self, generator, discriminator, latent_dim, **kwargs):
            super().__init__(**kwargs)
            self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
            self.seed_generator = keras.random.SeedGenerator(42)
            self.d_tracker = keras.metrics.Mean(name="d_loss")
            self.g_tracker = keras.metrics.Mean(name="g_loss")

        def compile(self, d_optimizer, g_optimizer):
            super().compile()
            self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

        @property
        def metrics(self):
            return [self.d_tracker, self.g_tracker]

        def sample_latent(self, n):
            return keras.random.normal((n, self.latent_dim), seed=self.seed_generator)

        def train_step(self, real):
            d_loss, g_loss_value = body(self, real)
            if report == "swapped":
                self.d_tracker.update_state(g_loss_value)
                self.g_tracker.update_state(d_loss)
            elif report != "untracked":
                self.d_tracker.update_state(d_loss)
                self.g_tracker.update_state(g_loss_value)
            if report == "step":
                return {"d_loss": d_loss, "g_loss": g_loss_value}
            return {m.name: m.result() for m in self.metrics}

    return GAN


def together(self, real, d_fn=d_loss_sum, swap=False, d_vars=None, g_vars=None, training=True, leak=False,
             apply_d=True, apply_g=True, noise=None, d_training="same"):
    z = (noise or (lambda s, n: s.sample_latent(n)))(self, tf.shape(real)[0])
    d_training = training if d_training == "same" else d_training
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake = self.generator(z, training=training)
        real_logits = self.discriminator(real, training=d_training)
        fake_logits = self.discriminator(fake, training=d_training)
        d_loss = d_fn(fake_logits, real_logits) if swap else d_fn(real_logits, fake_logits)
        g = g_loss(fake_logits)
        d_objective = d_loss + g if leak else d_loss
    dv = self.discriminator.trainable_variables if d_vars is None else d_vars(self)
    gv = self.generator.trainable_variables if g_vars is None else g_vars(self)
    d_grads, g_grads = d_tape.gradient(d_objective, dv), g_tape.gradient(g, gv)
    if apply_d:
        self.d_optimizer.apply_gradients(zip(d_grads, dv))
    if apply_g:
        self.g_optimizer.apply_gradients(zip(g_grads, gv))
    return d_loss, g


def optimizers_swapped(self, real):
    """Each network updated by the other's optimizer (in the notebook they differ in schedule)."""
    z = self.sample_latent(tf.shape(real)[0])
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake_logits = self.discriminator(self.generator(z, training=True), training=True)
        d_loss = d_loss_sum(self.discriminator(real, training=True), fake_logits)
        g = g_loss(fake_logits)
    dv, gv = self.discriminator.trainable_variables, self.generator.trainable_variables
    self.g_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, dv), dv))
    self.d_optimizer.apply_gradients(zip(g_tape.gradient(g, gv), gv))
    return d_loss, g


def fakes_outside_the_tape(self, real):
    """The fakes scored before the tapes start: no path from the generator's variables to its loss."""
    fake_logits = self.discriminator(self.generator(self.sample_latent(tf.shape(real)[0]), training=True), training=True)
    with tf.GradientTape() as tape:
        g = g_loss(fake_logits)
    gv = self.generator.trainable_variables
    self.g_optimizer.apply_gradients(zip(tape.gradient(g, gv), gv))
    return g, g


def sequential(self, real):
    n = tf.shape(real)[0]
    with tf.GradientTape() as tape:
        fake = self.generator(self.sample_latent(n), training=True)
        d_loss = d_loss_sum(self.discriminator(real, training=True), self.discriminator(fake, training=True))
    grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
    self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
    with tf.GradientTape() as tape:
        g = g_loss(self.discriminator(self.generator(self.sample_latent(n), training=True), training=True))
    grads = tape.gradient(g, self.generator.trainable_weights)
    self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
    return d_loss, g


def one_call_for_both(self, real):
    """Real and fake images scored in one call of the discriminator: its batch norm mixes them."""
    n = tf.shape(real)[0]
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake = self.generator(self.sample_latent(n), training=True)
        logits = self.discriminator(tf.concat([real, fake], axis=0), training=True)
        d_loss = d_loss_sum(logits[:n], logits[n:])
        g = g_loss(logits[n:])
    dv, gv = self.discriminator.trainable_variables, self.generator.trainable_variables
    self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, dv), dv))
    self.g_optimizer.apply_gradients(zip(g_tape.gradient(g, gv), gv))
    return d_loss, g


def two_draws_together(self, real):
    """Correct: both losses from the weights before the step, each on its own draw of noise."""
    n = tf.shape(real)[0]
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake_for_d = self.generator(self.sample_latent(n), training=True)
        d_loss = d_loss_sum(self.discriminator(real, training=True), self.discriminator(fake_for_d, training=True))
        fake_for_g = self.generator(self.sample_latent(n), training=True)
        g = g_loss(self.discriminator(fake_for_g, training=True))
    dv, gv = self.discriminator.trainable_variables, self.generator.trainable_variables
    d_grads, g_grads = d_tape.gradient(d_loss, dv), g_tape.gradient(g, gv)
    self.d_optimizer.apply_gradients(zip(d_grads, dv))
    self.g_optimizer.apply_gradients(zip(g_grads, gv))
    return d_loss, g


def numpy_noise(self, real):
    """Right eagerly; inside fit's tf.function NumPy draws the noise once, at tracing."""
    return together(self, real, noise=lambda m, n: tf.constant(
        np.random.normal(size=(real.shape[0], m.latent_dim)).astype("float32")))


def tracker_fed_numpy(self, real):
    d_loss, g = together(self, real)
    return tf.constant(d_loss.numpy()), g


def one_tape_for_both(self, real):
    """D's update also follows the generator loss: the discriminator learns to be fooled."""
    z = self.sample_latent(tf.shape(real)[0])
    with tf.GradientTape(persistent=True) as tape:
        fake = self.generator(z, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss = d_loss_sum(self.discriminator(real, training=True), fake_logits)
        g = g_loss(fake_logits)
    both = self.generator.trainable_variables + self.discriminator.trainable_variables
    self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, self.discriminator.trainable_variables),
                                         self.discriminator.trainable_variables))
    self.g_optimizer.apply_gradients(zip(tape.gradient(g, both), both))
    return d_loss, g


def sequential_same_noise(self, real):
    """Discriminator first, then the generator through the updated discriminator, one draw of noise."""
    z = tf.random.normal((tf.shape(real)[0], self.latent_dim))
    with tf.GradientTape() as tape:
        d_loss = d_loss_sum(self.discriminator(real, training=True),
                            self.discriminator(self.generator(z, training=True), training=True))
    d_vars = self.discriminator.trainable_variables
    self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
    with tf.GradientTape() as tape:
        g = g_loss(self.discriminator(self.generator(z, training=True), training=True))
    g_vars = self.generator.trainable_variables
    self.g_optimizer.apply_gradients(zip(tape.gradient(g, g_vars), g_vars))
    return d_loss, g


def generator_first(self, real):
    n = tf.shape(real)[0]
    with tf.GradientTape() as tape:
        g = g_loss(self.discriminator(self.generator(self.sample_latent(n), training=True), training=True))
    self.g_optimizer.apply_gradients(zip(tape.gradient(g, self.generator.trainable_weights),
                                         self.generator.trainable_weights))
    with tf.GradientTape() as tape:
        fake = self.generator(self.sample_latent(n), training=True)
        d_loss = d_loss_sum(self.discriminator(real, training=True), self.discriminator(fake, training=True))
    self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, self.discriminator.trainable_weights),
                                         self.discriminator.trainable_weights))
    return d_loss, g


@pytest.mark.parametrize("body", [
    together, sequential, sequential_same_noise, generator_first, two_draws_together,
    # the noise drawn without the helper (the wrongly rejected variant), or with keras.random
    lambda s, r: together(s, r, noise=lambda m, n: tf.random.normal((n, m.latent_dim))),
    lambda s, r: together(s, r, noise=lambda m, n: keras.random.normal((n, m.latent_dim), seed=m.seed_generator)),
])
def test_train_step_accepts(body, capsys):
    gan.train_step(_gan_class(body), d_loss_sum, g_loss)
    assert "[ok]" in capsys.readouterr().out


def test_train_step_accepts_step_values_as_metrics(capsys):
    gan.train_step(_gan_class(together, report="step"), d_loss_sum, g_loss)
    assert "[ok]" in capsys.readouterr().out


def test_train_step_accepts_smoothed_loss(capsys):
    def smoothed(r, f):
        return bce(0.9 * tf.ones_like(r), r) + bce(tf.zeros_like(f), f)

    gan.train_step(_gan_class(lambda s, r: together(s, r, d_fn=smoothed)), smoothed, g_loss)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body, fragment",
    [
        (lambda s, r: together(s, r, swap=True), "real and fake swapped"),
        (lambda s, r: together(s, r, leak=True), "not the generator loss's"),
        (one_tape_for_both, "not the generator loss's"),
        (one_call_for_both, "scored 32 images in one call"),
        (numpy_noise, "same noise at every step: random numbers drawn with NumPy"),
        (tracker_fed_numpy, "inside a tf.function (as fit runs it) raised"),
        (lambda s, r: together(s, r, apply_d=False), "discriminator's weights never change"),
        (lambda s, r: together(s, r, apply_g=False), "generator's weights never change"),
        (lambda s, r: together(s, r, g_vars=lambda m: m.generator.trainable_variables[:2]), "never changed"),
        (lambda s, r: together(s, r, training=False), "training=True"),
        (lambda s, r: together(s, r, d_training=False), "discriminator is called without training=True"),
        (lambda s, r: together(s, r, d_training=None), "discriminator is called without training=True"),
        (lambda s, r: together(s, r, training=None, d_training=True), "generator is called without training=True"),
        # noise: a fixed stateless seed, one vector for the whole batch, a hard-coded batch, not N(0, 1)
        (lambda s, r: together(s, r, noise=lambda m, n: tf.random.stateless_normal((n, m.latent_dim), seed=[1, 2])),
         "same noise at every step"),
        (lambda s, r: together(s, r, noise=lambda m, n: keras.random.normal((n, m.latent_dim), seed=7)),
         "same noise at every step"),
        (lambda s, r: together(s, r, noise=lambda m, n: tf.tile(tf.random.normal((1, m.latent_dim)), [n, 1])),
         "same noise vector"),
        (lambda s, r: together(s, r, noise=lambda m, n: tf.random.normal((64, m.latent_dim))),
         "the generator received an input of shape (64, 6), expected (16, 6)"),
        (optimizers_swapped, "The optimizers are swapped"),
        (fakes_outside_the_tape, "inside the `with tf.GradientTape()` block"),
        (lambda s, r: together(s, r, noise=lambda m, n: tf.random.uniform((n, m.latent_dim))), "standard normal"),
    ],
)
def test_train_step_rejects(body, fragment, rejects):
    rejects(gan.train_step, _gan_class(body), d_loss_sum, g_loss, fragment=fragment)


@pytest.mark.parametrize("report, fragment", [("swapped", "trackers are swapped"), ("untracked", "never updated")])
def test_train_step_rejects_trackers(report, fragment, rejects):
    rejects(gan.train_step, _gan_class(together, report=report), d_loss_sum, g_loss, fragment=fragment)


def test_train_step_blames_the_network_it_names(rejects):
    """A discriminator-side mistake names a discriminator weight (it once named a generator's)."""
    message = rejects(gan.train_step, _gan_class(lambda s, r: together(s, r, leak=True)), d_loss_sum, g_loss,
                      fragment="discriminator's weights differ")
    assert "(discriminator's " in message, message
    message = rejects(gan.train_step, _gan_class(lambda s, r: together(s, r, g_vars=lambda m: m.generator.trainable_variables,
                                                                        d_fn=d_loss_sum)), d_loss_sum,
                      lambda f: 2.0 * g_loss(f), fragment="generator's weights differ")
    assert "(generator's " in message, message


def test_train_step_unfilled_is_todo():
    def body(self, real):
        raise NotImplementedError("TODO 5")

    with pytest.raises(TodoNotDone):
        gan.train_step(_gan_class(body), d_loss_sum, g_loss)


def test_train_step_with_unfilled_losses_reports_a_todo():
    """In an untouched lab the losses are unfilled too: the check must still say TODO."""
    def unfilled(*args):
        raise NotImplementedError("TODO 3")

    with pytest.raises(TodoNotDone):
        gan.train_step(_gan_class(lambda s, r: together(s, r, d_fn=unfilled)), unfilled, unfilled)
    with pytest.raises(TodoNotDone, match="TODO 5"):
        def body(self, real):
            raise NotImplementedError("TODO 5")
        gan.train_step(_gan_class(body), unfilled, unfilled)


def test_no_check_rebinds_a_module_global():
    """The grader snapshots every attribute of the checks' modules and fails a TODO as
    tampering when one changes during its check: a check must not rebind a global."""
    import ast
    from pathlib import Path

    import utils.checks

    folder = Path(utils.checks.__file__).parent
    rebinding = [f"{path.name}:{node.lineno}" for path in sorted(folder.glob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Global)]
    assert rebinding == []
