"""The paper's GAN: paired adversarial training, its scores, and SRGAN's content loss as an option."""

import dataclasses
from pathlib import Path
from typing import Optional

import keras
import numpy as np
from keras import ops

from mrisr.core.callbacks import StopOnNonFinite, check_finite_epoch
from mrisr.core.model_files import save_model
from mrisr.core.precision import policy_scope
from mrisr.core.runs import TrainingRun, guarded_run
from mrisr.errors import UserError
from mrisr.paper.datasets import prepare_training
from mrisr.paper.names import DISCRIMINATOR, GAN_HISTORY, GENERATOR
from mrisr.paper.provenance import data_differences


@dataclasses.dataclass
class GANSettings:
    """Everything that decides a GAN run; the defaults are the paper's (optimisers as the authors' code)."""

    epochs: int = 1000
    batch_size: int = 128
    disc_strides: tuple = (1, 1, 1, 1)
    generator: str = "paper"
    content_loss: str = "none"
    adversarial_weight: Optional[float] = None  # 1e-3 when a content loss is set
    pretrain_epochs: int = 0
    discriminator_lr: float = 2e-4
    discriminator_decay: float = 6e-8
    generator_lr: float = 1e-4
    generator_decay: float = 3e-8
    limit: Optional[int] = None
    seed: Optional[int] = None
    xla: bool = False  # XLA's CPU convolutions are slower here (benchmarks/gan_throughput.py)
    snapshot_every: int = 10
    validation_batch_size: int = 256
    precision: str = "float32"  # or a Keras mixed policy: mixed_float16, mixed_bfloat16 (see precision.py)

    def weight(self):
        if self.content_loss == "none":
            return 1.0
        return 1e-3 if self.adversarial_weight is None else self.adversarial_weight


def rmsprop(learning_rate, decay):
    """RMSprop with the old Keras decay, lr / (1 + decay * step), as Keras's InverseTimeDecay."""
    import keras

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


def gan_precision(settings, crop_set, train_data, devices=None, say=print):
    """The policy of `--mixed-precision auto`: float32 or 16 bits, whichever runs this run's paired GAN
    step (both networks, both optimizers) faster here (precision.measured_policy)."""
    from mrisr.core.precision import measured_policy

    batch = train_data[0]

    def trial(policy):
        gan = build_gan(dataclasses.replace(settings, precision=policy), crop_set.inputs.shape[1],
                        crop_set.targets.shape[1], crop_set.inputs.shape[3], devices)
        # fit, as training runs it (train_on_batch hands the step a sample weight it does not take)
        return lambda: gan.fit(*batch, batch_size=len(batch[0]), epochs=1, verbose=0)

    return measured_policy(trial, "a GAN step", say)[0]


def score_epoch(gan, validation, batch_size=256):
    """The paper's scores and the generator's PSNR and SSIM on the validation set, all batched."""
    from mrisr.nets.metrics import score_images
    from mrisr.paper.evaluation import predict

    generated = predict(gan.generator, validation.inputs, batch_size)
    real = gan.discriminator.predict(validation.targets, batch_size=batch_size, verbose=0)
    fake = gan.discriminator.predict(generated, batch_size=batch_size, verbose=0)
    score_generator, score_discriminator = gan_scores(real, fake)
    quality = score_images(validation.targets, generated)
    return {"score_generator": score_generator, "score_discriminator": score_discriminator,
            "val_psnr": quality.mean_psnr, "val_ssim": quality.mean_ssim}, generated


class GANRun(TrainingRun):
    """One GAN training run: files, history, per-epoch scores, checkpoints, figures."""

    data_differences = staticmethod(data_differences)

    def __init__(self, settings, models_dir, score_plot_dir="GAN_Score_plot", extra=None, data=None, writes=True):
        self.models_dir = Path(models_dir)
        self.generator_path = self.models_dir / GENERATOR
        self.discriminator_path = self.models_dir / DISCRIMINATOR
        self.snapshot_dir = self.models_dir / "snapshots"
        self.score_plot_dir = Path(score_plot_dir)
        history_path = self.models_dir / GAN_HISTORY
        super().__init__(settings, data, extra, self.models_dir / "GAN.lock",
                         [self.generator_path, self.discriminator_path, history_path],
                         self.models_dir / "checkpoint", history_path,
                         ("epoch", "phase", "d_loss", "g_loss", "score_generator", "score_discriminator", "val_psnr",
                          "val_ssim"), writes)

    def objects(self, gan):
        return {"generator": gan.generator, "discriminator": gan.discriminator,
                "d_optimizer": gan.d_optimizer, "g_optimizer": gan.g_optimizer}

    def end_of_epoch(self, gan, phase, losses, validation):
        from mrisr.paper.plots import plot_gan_scores, plot_snapshot

        check_finite_epoch(losses, len(self.history["epoch"]) + 1, [gan.generator, gan.discriminator])
        scores, generated = score_epoch(gan, validation, self.settings.validation_batch_size)
        epoch = len(self.history["epoch"]) + 1
        d_loss = losses.get("d_loss")  # none while pre-training the generator alone
        record = {"epoch": epoch, "phase": phase, "d_loss": None if d_loss is None else float(d_loss),
                  "g_loss": float(losses.get("g_loss", losses.get("loss"))), **scores}
        for key, value in record.items():
            self.history[key].append(value)
        print(f"  epoch {epoch}: scoreGenerator {scores['score_generator']:.3f}, scoreDiscriminator "
              f"{scores['score_discriminator']:.3f}, validation PSNR {scores['val_psnr']:.2f} dB, "
              f"SSIM {scores['val_ssim']:.3f}", flush=True)
        if not self.writes:
            return
        self.save_models(gan)
        plot_gan_scores(self.history, self.score_plot_dir / "GAN_score_plot.png")
        every = self.settings.snapshot_every
        if every and epoch % every == 0:
            plot_snapshot(validation.inputs[:4], generated[:4], validation.targets[:4],
                          self.snapshot_dir / f"epoch_{epoch:04d}.png", f"Validation samples after epoch {epoch}")
        self.write_checkpoint(self.objects(gan))

    def save_models(self, gan):
        save_model(gan.generator, self.generator_path, include_optimizer=False)
        save_model(gan.discriminator, self.discriminator_path, include_optimizer=False)

    def train(self, gan, train_data, validation, resume=False, verbose=1):
        self.start_clock()
        if resume:
            self.read_checkpoint(lambda: self.objects(gan), gan.build_optimizers)
        pretrained = self.history["phase"].count("pretrain")
        if pretrained < self.settings.pretrain_epochs:
            print(f"Pre-training the generator on the {self.settings.content_loss} content loss")
            gan.generator.compile(optimizer=rmsprop(self.settings.generator_lr, self.settings.generator_decay),
                                  loss=gan.content_loss, jit_compile=self.settings.xla)
            gan.generator.fit(train_data, epochs=self.settings.pretrain_epochs, initial_epoch=pretrained,
                              verbose=verbose, shuffle=False,
                              callbacks=[StopOnNonFinite(), GANEpochEnd(self, gan, "pretrain", validation)])
        adversarial_done = len(self.history["epoch"]) - self.history["phase"].count("pretrain")
        gan.fit(train_data, epochs=self.settings.epochs, initial_epoch=adversarial_done, verbose=verbose,
                shuffle=False, callbacks=[StopOnNonFinite(), GANEpochEnd(self, gan, "adversarial", validation)])
        self.stop_clock()
        self.finish(gan)

    def finish(self, gan):
        super().finish({self.generator_path: gan.generator, self.discriminator_path: gan.discriminator}, {
            "parameters": {"generator": int(gan.generator.count_params()),
                           "discriminator": int(gan.discriminator.count_params())}})


class GANEpochEnd(keras.callbacks.Callback):
    """The run's end of each epoch (scores, models, figures, checkpoint) as a Keras callback."""

    def __init__(self, run, gan, phase, validation):
        super().__init__()
        self.run, self.gan, self.phase, self.validation = run, gan, phase, validation

    def on_epoch_end(self, epoch, logs=None):
        self.run.end_of_epoch(self.gan, self.phase, dict(logs or {}), self.validation)


def train_gan(crop_set, split, settings, models_dir, score_plot_dir="GAN_Score_plot", resume=False, verbose=1,
              extra=None, overwrite=False, devices=None):
    """Train the GAN on a split CropSet, on `devices` (distribution.Devices; default one); returns the
    finished GANRun."""
    from mrisr.core.distribution import Devices, without_xla
    from mrisr.paper.provenance import data_record

    devices = devices or Devices()
    settings = without_xla(settings, devices)

    if settings.pretrain_epochs and settings.content_loss == "none":
        raise UserError("--pretrain-epochs needs a --content-loss")
    if devices.processes > 1:
        raise UserError("GAN.py trains on one machine (its scoring predicts outside the training step); CNN.py "
                        "trains on several")
    train, validation, train_data = prepare_training(crop_set, split, settings.batch_size, settings.seed,
                                                     settings.limit, **devices.batch_options())
    if settings.precision == "auto":
        settings = dataclasses.replace(settings, precision=gan_precision(settings, crop_set, train_data, devices))
    gan = build_gan(settings, crop_set.inputs.shape[1], crop_set.targets.shape[1], crop_set.inputs.shape[3], devices)
    if devices.replicas > 1 and keras.backend.backend() == "jax" and any(
            isinstance(layer, keras.layers.BatchNormalization) for layer in gan.generator._flatten_layers()):
        raise UserError(f"--devices on JAX: the {settings.generator} generator's batch normalisation stalls XLA's "
                        "collectives in the GAN step (measured on CPU devices); use KERAS_BACKEND=tensorflow, "
                        "or one device")
    run = GANRun(settings, models_dir, score_plot_dir, extra, data_record(crop_set, split, "paper", None),
                 writes=devices.chief)
    print(f"Training the GAN (generator {gan.generator.count_params():,} and discriminator "
          f"{gan.discriminator.count_params():,} parameters, discriminator strides "
          f"{','.join(map(str, settings.disc_strides))}, content loss {settings.content_loss}) on {len(train)} "
          f"pairs, scoring on {len(validation)} validation pairs; {settings.epochs} epochs"
          + ("" if devices.replicas == 1 else f"; on {devices.description}"))
    with guarded_run(run, resume, overwrite), devices.scope():
        run.train(gan, train_data, validation, resume=resume, verbose=verbose)
    return run


def find_generator(path):
    """A generator .keras file, or a GAN models folder holding generator.keras."""
    path = Path(path)
    if path.is_dir():
        path = path / GENERATOR
    if not path.is_file():
        raise UserError(f"generator model {path} does not exist (train one with GAN.py train)")
    return path

