"""The paper's GAN: paired adversarial training, its scores, and SRGAN's content loss as an option."""

import dataclasses
from pathlib import Path
from typing import Optional

import keras
import numpy as np

from mrisr.cli import UserError
from mrisr.datasets import prepare_training
from mrisr.runs import StopOnNonFinite, TrainingRun, check_finite_epoch, guarded_run
from mrisr.storage import save_model

CONTENT_LOSSES = ("none", "mse", "ssim", "l1")


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
    from mrisr.losses import l1_loss, mse_loss, ssim_loss

    if name == "none":
        return None
    return {"mse": mse_loss, "ssim": ssim_loss, "l1": l1_loss}[name]


def gan_scores(real_probabilities, fake_probabilities):
    """The paper's scores: generator = mean D(G(x)); discriminator = 0.5 mean D(y) + 0.5 mean(1 - D(G(x)))."""
    real, fake = np.asarray(real_probabilities, float), np.asarray(fake_probabilities, float)
    return float(fake.mean()), float(0.5 * real.mean() + 0.5 * (1.0 - fake).mean())


class PairedGAN(keras.Model):
    """One step per batch of pairs: the discriminator on real targets and generated images, then the
    generator through the frozen discriminator (labels 1), with an optional content loss."""

    def __init__(self, generator, discriminator, content_loss=None, adversarial_weight=1.0):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.content_loss, self.adversarial_weight = content_loss, adversarial_weight
        self.bce = keras.losses.BinaryCrossentropy()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, jit_compile=True):
        super().compile(jit_compile=jit_compile)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def build_optimizers(self):
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def train_step(self, data):
        import tensorflow as tf  # the TensorFlow backend's step: gradients by GradientTape

        inputs, targets = data
        batch = keras.ops.shape(inputs)[0]
        # As the authors' code: fakes from generator.predict (inference mode) for the discriminator.
        generated = self.generator(inputs, training=False)
        with tf.GradientTape() as tape:
            # One discriminator pass over real and generated images together, as the authors'
            # train_on_batch on the concatenated batch (and faster than two passes).
            probabilities = self.discriminator(keras.ops.concatenate([targets, generated], axis=0), training=True)
            labels = keras.ops.concatenate([keras.ops.ones((batch, 1)), keras.ops.zeros((batch, 1))], axis=0)
            d_loss = self.bce(labels, probabilities)
        gradients = tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply(gradients, self.discriminator.trainable_variables)

        with tf.GradientTape() as tape:
            generated = self.generator(inputs, training=True)
            adversarial = self.bce(keras.ops.ones((batch, 1)), self.discriminator(generated, training=True))
            if self.content_loss is None:
                g_loss = adversarial
            else:
                g_loss = keras.ops.mean(self.content_loss(targets, generated)) \
                    + self.adversarial_weight * adversarial
        gradients = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply(gradients, self.generator.trainable_variables)

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def build_gan(settings, input_size=25, output_size=50, channels=4):
    """Generator, discriminator and the compiled PairedGAN for the settings."""
    from mrisr.models import build_generator, paper_discriminator

    generator = build_generator(settings.generator, input_size, output_size, channels)
    discriminator = paper_discriminator(output_size, channels, settings.disc_strides)
    gan = PairedGAN(generator, discriminator, content_loss_function(settings.content_loss),
                              settings.weight())
    gan.compile(rmsprop(settings.discriminator_lr, settings.discriminator_decay),
                rmsprop(settings.generator_lr, settings.generator_decay), jit_compile=settings.xla)
    return gan


def score_epoch(gan, validation, batch_size=256):
    """The paper's scores and the generator's PSNR and SSIM on the validation set, all batched."""
    from mrisr.evaluation import predict
    from mrisr.metrics import score_images

    generated = predict(gan.generator, validation.inputs, batch_size)
    real = gan.discriminator.predict(validation.targets, batch_size=batch_size, verbose=0)
    fake = gan.discriminator.predict(generated, batch_size=batch_size, verbose=0)
    score_generator, score_discriminator = gan_scores(real, fake)
    quality = score_images(validation.targets, generated)
    return {"score_generator": score_generator, "score_discriminator": score_discriminator,
            "val_psnr": quality.mean_psnr, "val_ssim": quality.mean_ssim}, generated


class GANRun(TrainingRun):
    """One GAN training run: files, history, per-epoch scores, checkpoints, figures."""

    def __init__(self, settings, models_dir, score_plot_dir="GAN_Score_plot", extra=None, data=None):
        self.models_dir = Path(models_dir)
        self.generator_path = self.models_dir / "generator.keras"
        self.discriminator_path = self.models_dir / "discriminator.keras"
        self.snapshot_dir = self.models_dir / "snapshots"
        self.score_plot_dir = Path(score_plot_dir)
        history_path = self.models_dir / "history.json"
        super().__init__(settings, data, extra, self.models_dir / "GAN.lock",
                         [self.generator_path, self.discriminator_path, history_path],
                         self.models_dir / "checkpoint", history_path,
                         ("epoch", "phase", "d_loss", "g_loss", "score_generator", "score_discriminator", "val_psnr",
                          "val_ssim"))

    def objects(self, gan):
        return {"generator": gan.generator, "discriminator": gan.discriminator,
                "d_optimizer": gan.d_optimizer, "g_optimizer": gan.g_optimizer}

    def end_of_epoch(self, gan, phase, losses, validation):
        from mrisr.plots import plot_gan_scores, plot_snapshot

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
              extra=None, overwrite=False):
    """Train the GAN on a split CropSet; returns the finished GANRun."""
    from mrisr.provenance import data_record

    if settings.pretrain_epochs and settings.content_loss == "none":
        raise UserError("--pretrain-epochs needs a --content-loss")
    train, validation, train_data = prepare_training(crop_set, split, settings.batch_size, settings.seed,
                                                     settings.limit)
    gan = build_gan(settings, crop_set.inputs.shape[1], crop_set.targets.shape[1], crop_set.inputs.shape[3])
    run = GANRun(settings, models_dir, score_plot_dir, extra, data_record(crop_set, split, "paper", None))
    print(f"Training the GAN (generator {gan.generator.count_params():,} and discriminator "
          f"{gan.discriminator.count_params():,} parameters, discriminator strides "
          f"{','.join(map(str, settings.disc_strides))}, content loss {settings.content_loss}) on {len(train)} "
          f"pairs, scoring on {len(validation)} validation pairs; {settings.epochs} epochs")
    with guarded_run(run, resume, overwrite):
        run.train(gan, train_data, validation, resume=resume, verbose=verbose)
    return run


def find_generator(path):
    """A generator .keras file, or a GAN models folder holding generator.keras."""
    path = Path(path)
    if path.is_dir():
        path = path / "generator.keras"
    if not path.is_file():
        raise UserError(f"generator model {path} does not exist (train one with GAN.py train)")
    return path

