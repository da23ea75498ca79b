"""Checks of notebook 06 accept correct variants (sum or mean of the two discriminator
terms, one-sided label smoothing, either update order in the step) and reject the
classic mistakes: real/fake labels swapped, a generator trained toward "fake",
probabilities given to from-logits losses, a discriminator updated with the
generator's gradients."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf
from keras import layers

from utils.checks import TodoNotDone, gan

bce = keras.losses.BinaryCrossentropy(from_logits=True)


# ---------------------------------------------------------------- models
def _generator(out_activation="tanh", up=True, channels=1):
    def build(latent_dim):
        stack = [keras.Input((latent_dim,)), layers.Dense(7 * 7 * 16), layers.ReLU(), layers.Reshape((7, 7, 16))]
        if up:
            stack += [layers.Conv2DTranspose(8, 4, 2, padding="same", activation="relu"),
                      layers.Conv2DTranspose(channels, 4, 2, padding="same", activation=out_activation)]
        else:
            stack += [layers.Flatten(), layers.Dense(784 * channels, activation=out_activation),
                      layers.Reshape((28, 28, channels))]
        return keras.Sequential(stack)

    return build


def _upsampling_generator(latent_dim):
    return keras.Sequential([keras.Input((latent_dim,)), layers.Dense(7 * 7 * 8), layers.Reshape((7, 7, 8)),
                             layers.UpSampling2D(), layers.Conv2D(8, 3, padding="same", activation="relu"),
                             layers.UpSampling2D(), layers.Conv2D(1, 3, padding="same", activation="tanh")])


@pytest.mark.parametrize("build", [_generator(), _upsampling_generator])
def test_generator_accepts(build, capsys):
    gan.generator_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (_generator(out_activation="sigmoid"), "never negative"),
        (_generator(out_activation=None), "end with activation='tanh'"),
        (_generator(up=False), "No Conv2DTranspose"),
        (_generator(channels=3), "one channel"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Dense(7 * 7 * 4), layers.Reshape((7, 7, 4)),
                                     layers.Conv2DTranspose(1, 4, 2, padding="same", activation="tanh")]), "(16, 28, 28, 1)"),
        (lambda d: keras.Sequential([keras.Input((d,)), layers.Lambda(lambda z: 0 * z[:, :1]), layers.Dense(7 * 7 * 4),
                                     layers.Reshape((7, 7, 4)), layers.Conv2DTranspose(1, 4, 4, padding="same", activation="tanh")]),
         "same image"),
    ],
)
def test_generator_rejects(build, fragment, rejects):
    rejects(gan.generator_model, build, fragment=fragment)


def _discriminator(final=None, conv=True):
    def build():
        stack = [keras.Input((28, 28, 1))]
        if conv:
            stack += [layers.Conv2D(8, 4, 2, padding="same"), layers.LeakyReLU(0.2)]
        stack += [layers.Flatten(), layers.Dense(1, activation=final)]
        return keras.Sequential(stack)

    return build


@pytest.mark.parametrize("build", [_discriminator(), lambda: keras.Sequential(
    [keras.Input((28, 28, 1)), layers.Conv2D(8, 3, 2), layers.LeakyReLU(0.2), layers.Dropout(0.3),
     layers.GlobalAveragePooling2D(), layers.Dense(1)])])
def test_discriminator_accepts(build, capsys):
    gan.discriminator_model(build)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "build, fragment",
    [
        (_discriminator(final="sigmoid"), "ends in a sigmoid"),
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 4, 2), layers.Flatten(), layers.Dense(1),
                                   layers.Activation("sigmoid")]), "ends in a sigmoid"),
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 4, 2), layers.Flatten(), layers.Dense(1),
                                   layers.Lambda(lambda t: 1 / (1 + keras.ops.exp(-t)))]), "probabilities"),
        (_discriminator(conv=False), "No Conv2D"),
        (lambda: keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 4, 2), layers.Dense(1)]), "Flatten"),
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
    ],
)
def test_generator_loss_rejects(fn, fragment, rejects):
    rejects(gan.generator_loss, fn, fragment=fragment)


# ---------------------------------------------------------------- train step
def _gan_class(body):
    class GAN(keras.Model):
        def __init__(self, generator, discriminator, latent_dim, **kwargs):
            super().__init__(**kwargs)
            self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim
            self.d_tracker = keras.metrics.Mean(name="d_loss")
            self.g_tracker = keras.metrics.Mean(name="g_loss")

        def compile(self, d_optimizer, g_optimizer):
            super().compile()
            self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

        @property
        def metrics(self):
            return [self.d_tracker, self.g_tracker]

        def sample_latent(self, n):
            return tf.random.normal((n, self.latent_dim))

        def train_step(self, real):
            d_loss, g_loss_value = body(self, real)
            self.d_tracker.update_state(d_loss)
            self.g_tracker.update_state(g_loss_value)
            return {m.name: m.result() for m in self.metrics}

    return GAN


def together(self, real, d_fn=d_loss_sum, swap=False, d_vars=None, g_vars=None, training=True, leak=False,
             apply_d=True, apply_g=True):
    z = self.sample_latent(tf.shape(real)[0])
    with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
        fake = self.generator(z, training=training)
        real_logits = self.discriminator(real, training=training)
        fake_logits = self.discriminator(fake, training=training)
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


@pytest.mark.parametrize("body", [together, sequential])
def test_train_step_accepts(body, capsys):
    gan.train_step(_gan_class(body), d_loss_sum, g_loss)
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
        (lambda s, r: together(s, r, leak=True), "not the generator loss's gradients"),
        (one_tape_for_both, "not the generator loss's gradients"),
        (lambda s, r: together(s, r, apply_d=False), "discriminator's weights never change"),
        (lambda s, r: together(s, r, apply_g=False), "generator's weights never change"),
        (lambda s, r: together(s, r, g_vars=lambda m: m.generator.trainable_variables[:2]), "never changed"),
        (lambda s, r: together(s, r, training=False), "training=True"),
    ],
)
def test_train_step_rejects(body, fragment, rejects):
    rejects(gan.train_step, _gan_class(body), d_loss_sum, g_loss, fragment=fragment)


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
