"""The paper's GAN: paired adversarial training, its scores, and SRGAN's content loss as an option."""

import dataclasses
from pathlib import Path

import keras

from mrisr.core.callbacks import PauseAfter, StopOnNonFinite, check_finite_epoch
from mrisr.core.messages import inform
from mrisr.core.model_files import save_model
from mrisr.core.runs import TrainingRun, guarded_run
from mrisr.errors import UserError
from mrisr.paper.datasets import prepare_training
from mrisr.paper.gan_model import build_gan, gan_scores, rmsprop
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
    adversarial_weight: float | None = None  # 1e-3 when a content loss is set
    pretrain_epochs: int = 0
    discriminator_lr: float = 2e-4
    discriminator_decay: float = 6e-8
    generator_lr: float = 1e-4
    generator_decay: float = 3e-8
    limit: int | None = None
    seed: int | None = None
    xla: bool = False  # XLA's CPU convolutions are slower here (benchmarks/gan_throughput.py)
    snapshot_every: int = 10
    validation_batch_size: int = 256
    precision: str = "float32"  # or a Keras mixed policy: mixed_float16, mixed_bfloat16 (see precision.py)

    def weight(self):
        if self.content_loss == "none":
            return 1.0
        return 1e-3 if self.adversarial_weight is None else self.adversarial_weight


def gan_precision(settings, crop_set, train_data, devices=None, say=inform):
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
        inform(f"  epoch {epoch}: scoreGenerator {scores['score_generator']:.3f}, scoreDiscriminator "
              f"{scores['score_discriminator']:.3f}, validation PSNR {scores['val_psnr']:.2f} dB, "
              f"SSIM {scores['val_ssim']:.3f}")
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

    def train(self, gan, train_data, validation, resume=False, verbose=1, pause_after_minutes=None):
        """Pre-train the generator when asked, then the adversarial epochs; save the models and the history.
        With `pause_after_minutes`, raise `Paused` after the first epoch that ends that long after the start
        (its checkpoint written; resume continues it)."""
        self.start_clock()
        pause = [] if pause_after_minutes is None else [PauseAfter(pause_after_minutes)]
        if resume:
            self.read_checkpoint(lambda: self.objects(gan), gan.build_optimizers)
        pretrained = self.history["phase"].count("pretrain")
        if pretrained < self.settings.pretrain_epochs:
            inform(f"Pre-training the generator on the {self.settings.content_loss} content loss")
            gan.generator.compile(optimizer=rmsprop(self.settings.generator_lr, self.settings.generator_decay),
                                  loss=gan.content_loss, jit_compile=self.settings.xla)
            gan.generator.fit(train_data, epochs=self.settings.pretrain_epochs, initial_epoch=pretrained,
                              verbose=verbose, shuffle=False,
                              callbacks=[StopOnNonFinite(), GANEpochEnd(self, gan, "pretrain", validation), *pause])
        adversarial_done = len(self.history["epoch"]) - self.history["phase"].count("pretrain")
        gan.fit(train_data, epochs=self.settings.epochs, initial_epoch=adversarial_done, verbose=verbose,
                shuffle=False,
                callbacks=[StopOnNonFinite(), GANEpochEnd(self, gan, "adversarial", validation), *pause])
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
              extra=None, overwrite=False, devices=None, pause_after_minutes=None):
    """Train the GAN on a split CropSet, on `devices` (distribution.Devices; default one); returns the
    finished GANRun. With `pause_after_minutes`, the run may end in `Paused` after a checkpointed epoch
    instead (resume continues it)."""
    from mrisr.core.distribution import Devices, without_xla
    from mrisr.paper.provenance import data_record

    devices = devices or Devices()
    settings = without_xla(settings, devices)

    if settings.pretrain_epochs and settings.content_loss == "none":
        raise UserError("`pretrain_epochs` needs a `content_loss`")
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
        raise UserError(f"`devices` on JAX: the {settings.generator} generator's batch normalisation stalls XLA's "
                        "collectives in the GAN step (measured on CPU devices); use KERAS_BACKEND=tensorflow, "
                        "or one device")
    run = GANRun(settings, models_dir, score_plot_dir, extra, data_record(crop_set, split, "paper", None),
                 writes=devices.chief)
    inform(f"Training the GAN (generator {gan.generator.count_params():,} and discriminator "
          f"{gan.discriminator.count_params():,} parameters, discriminator strides "
          f"{','.join(map(str, settings.disc_strides))}, content loss {settings.content_loss}) on {len(train)} "
          f"pairs, scoring on {len(validation)} validation pairs; {settings.epochs} epochs"
          + ("" if devices.replicas == 1 else f"; on {devices.description}"))
    with guarded_run(run, resume, overwrite), devices.scope():
        run.train(gan, train_data, validation, resume=resume, verbose=verbose,
                  pause_after_minutes=pause_after_minutes)
    return run


def find_generator(path):
    """A generator .keras file, or a GAN models folder holding generator.keras."""
    path = Path(path)
    if path.is_dir():
        path = path / GENERATOR
    if not path.is_file():
        raise UserError(f"generator model {path} does not exist (train one with GAN.py train)")
    return path

