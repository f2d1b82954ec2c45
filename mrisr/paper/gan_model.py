"""The paper's GAN as one Keras model: the paired adversarial step on every backend, its optimizers (RMSprop
with the old Keras decay), the paper's scores, and SRGAN's content loss as an option."""

import keras
import numpy as np
from keras import ops

from mrisr.core.precision import policy_scope


def rmsprop(learning_rate, decay):
    """RMSprop with the old Keras decay, lr / (1 + decay * step), as Keras's InverseTimeDecay."""
    schedule = keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay)
    return keras.optimizers.RMSprop(learning_rate=schedule)


def content_loss_function(name):
    """The content loss of SRGAN's objective: a per-sample function, or None for the paper's pure GAN."""
    from mrisr.nets.losses import l1_loss, mse_loss, ssim_loss

    if name == "none":
        return None
    return {"mse": mse_loss, "ssim": ssim_loss, "l1": l1_loss}[name]


def gan_scores(real_probabilities, fake_probabilities):
    """The paper's scores: generator = mean D(G(x)); discriminator = 0.5 mean D(y) + 0.5 mean(1 - D(G(x)))."""
    real, fake = np.asarray(real_probabilities, float), np.asarray(fake_probabilities, float)
    return float(fake.mean()), float(0.5 * real.mean() + 0.5 * (1.0 - fake).mean())


class OptimizerPair:
    """The discriminator's and the generator's optimizers seen as one by Keras's JAX trainer, which
    carries `model.optimizer.variables` through its compiled step (Keras has no two-optimizer model)."""

    built = True

    def __init__(self, first, second):
        self.first, self.second = first, second

    @property
    def variables(self):
        return list(self.first.variables) + list(self.second.variables)


class PairedGAN(keras.Model):
    """One step per batch of pairs: the discriminator on real targets and generated images, then the
    generator through the frozen discriminator (labels 1), with an optional content loss. Keras 3 has
    no shared two-optimizer step, so there is one `train_step` per backend, all computing the same."""

    def __init__(self, generator, discriminator, content_loss=None, adversarial_weight=1.0):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.content_loss, self.adversarial_weight = content_loss, adversarial_weight
        self.replicas = 1  # the devices sharing a step: set by compile under a TensorFlow strategy
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, jit_compile=True):
        from mrisr.core.distribution import replicas_in_sync, synchronize_batch_norm

        super().compile(jit_compile=jit_compile)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        self.replicas = replicas_in_sync()
        synchronize_batch_norm(self.generator)
        # Built now, not at the first step: under a TensorFlow strategy, variables cannot be made
        # inside the step (and JAX's trainer carries them through it).
        self.build_optimizers()
        if keras.backend.backend() == "jax":
            self.optimizer = OptimizerPair(d_optimizer, g_optimizer)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def build_optimizers(self):
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def labels(self, batch):
        """Real targets 1, generated images 0 (the discriminator's batch), and 1 for the generator."""
        return (ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0), ops.ones((batch, 1)))

    def bce(self, labels, probabilities):
        """Binary cross-entropy, the mean over the batch (this device's share of it under a strategy)."""
        return ops.mean(keras.losses.binary_crossentropy(labels, probabilities))

    def generator_loss(self, targets, generated, probabilities):
        adversarial = self.bce(ops.ones((ops.shape(generated)[0], 1)), probabilities)
        if self.content_loss is None:
            return adversarial
        return ops.mean(self.content_loss(targets, generated)) + self.adversarial_weight * adversarial

    def train_step(self, *arguments):
        backend = keras.backend.backend()
        if backend == "jax":
            return self.jax_train_step(*arguments)
        if backend == "torch":
            return self.torch_train_step(*arguments)
        return self.tensorflow_train_step(*arguments)

    def report(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def tensorflow_train_step(self, data):
        import tensorflow as tf

        inputs, targets = data
        d_labels, _ = self.labels(ops.shape(inputs)[0])
        # As the authors' code: fakes from generator.predict (inference mode) for the discriminator.
        generated = self.generator(inputs, training=False)
        with tf.GradientTape() as tape:
            # One discriminator pass over real and generated images together, as the authors'
            # train_on_batch on the concatenated batch (and faster than two passes).
            probabilities = self.discriminator(ops.concatenate([targets, generated], axis=0), training=True)
            d_loss = self.bce(d_labels, probabilities)
            # Each device's mean over its share, divided by their number: the strategy's sum of the
            # gradients is then the gradient of the mean over the global batch.
            scaled = self.d_optimizer.scale_loss(d_loss / self.replicas)
        gradients = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply(gradients, self.discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            generated = self.generator(inputs, training=True)
            g_loss = self.generator_loss(targets, generated, self.discriminator(generated, training=True))
            scaled = self.g_optimizer.scale_loss(g_loss / self.replicas)
        gradients = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply(gradients, self.generator.trainable_variables)
        return self.report(d_loss, g_loss)

    def torch_train_step(self, data):
        import torch

        inputs, targets = data
        d_labels, _ = self.labels(ops.shape(inputs)[0])
        with torch.no_grad():
            generated = self.generator(inputs, training=False)
        self.zero_grad()
        probabilities = self.discriminator(ops.concatenate([targets, generated], axis=0), training=True)
        d_loss = self.bce(d_labels, probabilities)
        self.d_optimizer.scale_loss(d_loss).backward()
        weights = self.discriminator.trainable_weights
        with torch.no_grad():
            self.d_optimizer.apply([weight.value.grad for weight in weights], weights)
        self.zero_grad()
        generated = self.generator(inputs, training=True)
        g_loss = self.generator_loss(targets, generated, self.discriminator(generated, training=True))
        self.g_optimizer.scale_loss(g_loss).backward()
        weights = self.generator.trainable_weights
        with torch.no_grad():
            self.g_optimizer.apply([weight.value.grad for weight in weights], weights)
        return self.report(d_loss.detach(), g_loss.detach())

    def jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_variables, metrics_variables = state
        inputs, targets = data
        d_labels, _ = self.labels(inputs.shape[0])
        split = self.jax_positions()
        g_train, d_train = ([trainable[i] for i in positions] for positions in split["trainable"])
        g_fixed, d_fixed = ([non_trainable[i] for i in positions] for positions in split["non_trainable"])
        d_count = len(self.d_optimizer.variables)
        d_optimizer_variables, g_optimizer_variables = optimizer_variables[:d_count], optimizer_variables[d_count:]

        generated, _ = self.generator.stateless_call(g_train, g_fixed, inputs, training=False)

        def discriminator_loss(d_train, d_fixed):
            probabilities, d_fixed = self.discriminator.stateless_call(
                d_train, d_fixed, ops.concatenate([targets, generated], axis=0), training=True)
            return self.bce(d_labels, probabilities), d_fixed

        (d_loss, d_fixed), gradients = jax.value_and_grad(discriminator_loss, has_aux=True)(d_train, d_fixed)
        d_train, d_optimizer_variables = self.d_optimizer.stateless_apply(d_optimizer_variables, gradients, d_train)

        def generator_loss(g_train, g_fixed, d_fixed):
            generated, g_fixed = self.generator.stateless_call(g_train, g_fixed, inputs, training=True)
            probabilities, d_fixed = self.discriminator.stateless_call(d_train, d_fixed, generated, training=True)
            return self.generator_loss(targets, generated, probabilities), (g_fixed, d_fixed)

        (g_loss, (g_fixed, d_fixed)), gradients = jax.value_and_grad(generator_loss, has_aux=True)(
            g_train, g_fixed, d_fixed)
        g_train, g_optimizer_variables = self.g_optimizer.stateless_apply(g_optimizer_variables, gradients, g_train)

        logs, metrics_variables = {}, list(metrics_variables)
        offset = 0
        for tracker, value in ((self.d_loss_tracker, d_loss), (self.g_loss_tracker, g_loss)):
            count = len(tracker.variables)
            updated = tracker.stateless_update_state(metrics_variables[offset:offset + count], value)
            metrics_variables[offset:offset + count] = updated
            logs[tracker.name] = tracker.stateless_result(updated)
            offset += count
        trainable, non_trainable = list(trainable), list(non_trainable)
        for values, positions, target in ((g_train, split["trainable"][0], trainable),
                                          (d_train, split["trainable"][1], trainable),
                                          (g_fixed, split["non_trainable"][0], non_trainable),
                                          (d_fixed, split["non_trainable"][1], non_trainable)):
            for value, position in zip(values, positions):
                target[position] = value
        return logs, (trainable, non_trainable, list(d_optimizer_variables) + list(g_optimizer_variables),
                      metrics_variables)

    def jax_positions(self):
        """Where the generator's and the discriminator's variables sit in the model's flat lists."""
        def positions(everything, part):
            index = {id(variable): k for k, variable in enumerate(everything)}
            return [index[id(variable)] for variable in part]

        return {
            "trainable": [positions(self.trainable_variables, self.generator.trainable_variables),
                          positions(self.trainable_variables, self.discriminator.trainable_variables)],
            "non_trainable": [positions(self.non_trainable_variables, self.generator.non_trainable_variables),
                              positions(self.non_trainable_variables, self.discriminator.non_trainable_variables)],
        }


def build_gan(settings, input_size=25, output_size=50, channels=4, devices=None):
    """Generator, discriminator and the compiled PairedGAN for the settings (on distribution.Devices)."""
    from mrisr.core.distribution import Devices
    from mrisr.nets.models import build_generator, paper_discriminator

    with policy_scope(settings.precision), (devices or Devices()).scope():
        generator = build_generator(settings.generator, input_size, output_size, channels)
        discriminator = paper_discriminator(output_size, channels, settings.disc_strides)
        gan = PairedGAN(generator, discriminator, content_loss_function(settings.content_loss), settings.weight())
        optimizers = [rmsprop(settings.discriminator_lr, settings.discriminator_decay),
                      rmsprop(settings.generator_lr, settings.generator_decay)]
        if settings.precision == "mixed_float16":  # float16 gradients underflow without a loss scale
            optimizers = [keras.optimizers.LossScaleOptimizer(optimizer) for optimizer in optimizers]
        gan.compile(*optimizers, jit_compile=settings.xla)
    return gan
