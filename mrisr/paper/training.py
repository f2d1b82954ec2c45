"""Training the CNN: the paper's phased fit with early stopping, checkpoints each epoch, and resume."""

import dataclasses
from pathlib import Path
from typing import Optional

import keras

from mrisr.core.callbacks import PauseAfter, StopOnNonFinite, TimeLimit
from mrisr.core.files import load_json
from mrisr.core.messages import inform
from mrisr.core.precision import policy_scope
from mrisr.core.runs import TrainingRun, guarded_run
from mrisr.errors import UserError
from mrisr.nets.losses import LOSS_FUNCTIONS, loss_phases
from mrisr.paper.cnn_callbacks import EpochRecorder, ResumableEarlyStopping, ema_callbacks
from mrisr.paper.datasets import make_dataset, prepare_training
from mrisr.paper.names import cnn_stem
from mrisr.paper.provenance import data_differences


@dataclasses.dataclass
class CNNSettings:
    """Everything that decides a CNN run; the defaults are the paper's."""

    loss_setup: str = "MSE"
    arch: str = "paper"
    epochs: int = 1000  # per phase
    batch_size: int = 32
    learning_rate: float = 1e-5
    decay: float = 1e-6  # old Keras decay: lr / (1 + decay * iterations)
    patience: int = 5
    restore_best: bool = False
    limit: Optional[int] = None
    seed: Optional[int] = None
    xla: bool = True
    validation_batch_size: int = 128
    # Beyond the paper (the defaults keep the paper's recipe):
    lr_schedule: str = "inverse-time"  # the paper's decay; or "cosine" (to 1% over `epochs`), "constant"
    augment: bool = False  # random flips and 90-degree rotations of each training pair
    ema: bool = False  # validate and keep an exponential moving average of the weights
    time_limit_minutes: Optional[float] = None  # stop training (all phases) after this long
    pairs: str = "paper"  # "paper" (the crops as they are) or "consistent" (see crops.consistent_pairs)
    scale: Optional[int] = None  # the upscaling factor of consistent pairs
    precision: str = "float32"  # or a Keras mixed policy: mixed_float16, mixed_bfloat16 (see precision.py)


def make_optimizer(settings, steps_per_epoch=1, time_limited=False):
    """Adam with the paper's decay, as Keras's InverseTimeDecay: lr / (1 + decay * step); or, as
    options, a cosine decay over all epochs (over the time limit when there is one, `time_progress`
    being the variable that holds its elapsed share) or a constant rate, and an EMA of the weights."""

    if settings.lr_schedule == "inverse-time":
        schedule = keras.optimizers.schedules.InverseTimeDecay(
            settings.learning_rate, decay_steps=1, decay_rate=settings.decay
        )
    elif settings.lr_schedule == "cosine" and time_limited:
        schedule = settings.learning_rate  # set before every batch by runs.TimeLimit
    elif settings.lr_schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            settings.learning_rate, decay_steps=max(1, settings.epochs * steps_per_epoch), alpha=0.01
        )
    elif settings.lr_schedule == "constant":
        schedule = settings.learning_rate
    else:
        raise ValueError(f"unknown learning-rate schedule {settings.lr_schedule!r}")
    return keras.optimizers.Adam(learning_rate=schedule, use_ema=settings.ema)


class CNNRun(TrainingRun):
    """One training run of a CNN: its files, its loss phases (each until early stopping), its
    checkpoints each epoch, the time limit and the EMA."""

    data_differences = staticmethod(data_differences)

    def __init__(self, settings, models_dir, extra=None, data=None, crop_scale=2, writes=True):
        self.models_dir = Path(models_dir)
        stem = cnn_stem(settings.loss_setup, settings.arch, settings.pairs, settings.scale, crop_scale)
        self.model_path = self.models_dir / f"{stem}.keras"
        self.checkpoint_dir = self.models_dir / f"{stem}_checkpoint"
        super().__init__(settings, data, extra, self.models_dir / f"{stem}.lock",
                         [self.model_path, self.models_dir / f"{stem}_history.json"], self.checkpoint_dir,
                         self.models_dir / f"{stem}_history.json", ("epoch", "phase", "loss", "val_loss"), writes)
        self.phases = loss_phases(settings.loss_setup)
        self.phase_records = []
        self.model = None
        self.steps_per_epoch = 1
        self.time_limit = None
        self.pause = None

    def save_checkpoint(self, phase_index, epochs_in_phase, early_stopping_state, phase_done=False):
        """Write the model, its optimizer and where the run is in its phases."""
        self.write_checkpoint({"model": self.model, "optimizer": self.model.optimizer}, {
            "phase_index": phase_index, "epochs_in_phase": epochs_in_phase, "phase_done": phase_done,
            "early_stopping": early_stopping_state, "phase_records": self.phase_records})

    def compile(self, phase_index):
        """Compile for a phase: its loss and a fresh Adam (the paper's second phase starts anew)."""
        self.model.compile(
            optimizer=make_optimizer(self.settings, self.steps_per_epoch, self.time_limit is not None),
            loss=LOSS_FUNCTIONS[self.phases[phase_index]],
            jit_compile=self.settings.xla,
        )

    def resume_point(self):
        """Restore the checkpoint; returns (first phase, epochs done in it, its early-stopping state)."""
        def build():
            self.compile(saved_phase())
            self.model.optimizer.build(self.model.trainable_variables)

        def saved_phase():
            return load_json(self.checkpoints.state_path)["phase_index"]

        state = self.read_checkpoint(lambda: {"model": self.model, "optimizer": self.model.optimizer}, build)
        self.phase_records = state["phase_records"]
        if state["phase_done"]:
            return state["phase_index"] + 1, 0, None
        return state["phase_index"], state["epochs_in_phase"], state["early_stopping"]

    def train(self, model, train_data, validation_data, resume=False, verbose=1, pause_after_minutes=None):
        """Fit phase by phase, each until early stopping or the epoch limit; save model and history. With
        `pause_after_minutes`, raise `Paused` after the first epoch that ends that long after the start
        (its checkpoint written; resume continues it)."""
        self.model = model
        self.start_clock()
        self.pause = None if pause_after_minutes is None else PauseAfter(pause_after_minutes)
        self.steps_per_epoch = len(train_data)
        limit = self.settings.time_limit_minutes
        cosine_from = self.settings.learning_rate if self.settings.lr_schedule == "cosine" else None
        self.time_limit = None if limit is None else TimeLimit(limit, cosine_from)
        start_phase, done_in_phase, early_state = self.resume_point() if resume else (0, 0, None)
        for phase_index in range(start_phase, len(self.phases)):
            if self.time_limit is not None and self.time_limit.reached:
                inform(f"Time limit of {limit} minutes reached: phase {phase_index + 1} not started")
                break
            continuing = phase_index == start_phase and early_state is not None
            self.fit_phase(phase_index, train_data, validation_data, done_in_phase if continuing else 0,
                           early_state if continuing else None, verbose)
            if phase_index + 1 < len(self.phases):
                self.save_checkpoint(phase_index, 0, None, phase_done=True)
        self.stop_clock()
        self.finish()
        return self.history

    def fit_phase(self, phase_index, train_data, validation_data, epochs_done, early_state, verbose):
        """One loss phase until early stopping, the epoch limit or the time limit; a fresh optimizer
        unless it continues a checkpointed phase."""
        phase = self.phases[phase_index]
        if early_state is None:
            self.compile(phase_index)
        if len(self.phases) > 1:
            inform(f"Phase {phase_index + 1} of {len(self.phases)}: {phase} loss")
        early_stopping = ResumableEarlyStopping(
            initial_state=early_state, monitor="val_loss", patience=self.settings.patience,
            restore_best_weights=self.settings.restore_best, verbose=1)
        first_epoch = len(self.history["epoch"]) + 1 - epochs_done
        # With an EMA, validation, early stopping and checkpoints see the averaged weights.
        swap_ema, keep_ema = ema_callbacks() if self.settings.ema else (None, None)
        callbacks = [c for c in (swap_ema, StopOnNonFinite(), early_stopping,
                                 EpochRecorder(self, phase_index, early_stopping), self.time_limit, keep_ema,
                                 self.pause)
                     if c is not None]
        self.model.fit(train_data, validation_data=validation_data, epochs=self.settings.epochs,
                       initial_epoch=epochs_done, callbacks=callbacks, verbose=verbose,
                       shuffle=False)  # the data pipeline shuffles
        self.phase_records.append({
            "phase": phase,
            "first_epoch": first_epoch,
            "last_epoch": len(self.history["epoch"]),
            "stopped_early": bool(early_stopping.stopped_epoch > 0),
            "stopped_by_time_limit": bool(self.time_limit is not None and self.time_limit.reached),
        })

    def finish(self):
        """Save the final model (without optimizer) and the history; remove the checkpoint."""
        records = self.phase_records
        super().finish({self.model_path: self.model}, {
            "model": self.model_path.name,
            "loss_setup": self.settings.loss_setup,
            "phases": records,
            "switch_epoch": records[1]["first_epoch"] if len(records) > 1 else None,
            "epochs_to_early_stop": [r["last_epoch"] - r["first_epoch"] + 1 for r in records],
            "parameters": int(self.model.count_params()),
        })


def read_cnn_history(path):
    """Read a CNN_<LOSS>_model_history.json written by a CNN run, checking its shape (UserError)."""
    record = load_json(path)
    history = record.get("history") if isinstance(record, dict) else None
    keys = ("epoch", "phase", "loss", "val_loss")
    if not isinstance(history, dict) or not all(isinstance(history.get(key), list) for key in keys):
        raise UserError(f"{path} is not a CNN history file: expected 'history' with the lists "
                        f"{', '.join(keys)} (as CNN.py train writes)")
    if len({len(history[key]) for key in keys}) != 1:
        raise UserError(f"{path}: the history lists {', '.join(keys)} differ in length")
    try:
        [float(value) for key in ("loss", "val_loss") for value in history[key]]
    except (TypeError, ValueError):
        raise UserError(f"{path}: a loss value is not a number") from None
    if not isinstance(record.get("phases", []), list):
        raise UserError(f"{path}: 'phases' is not a list")
    switch = record.get("switch_epoch")
    if switch is not None and not isinstance(switch, (int, float)):
        raise UserError(f"{path}: 'switch_epoch' is not a number")
    return record


def cnn_precision(settings, crop_set, train_data, devices, say=inform):
    """The policy of `--mixed-precision auto`: float32 or 16 bits, whichever runs this run's training
    step (its network, first loss, batch and XLA setting) faster here (precision.measured_policy)."""

    from mrisr.core.precision import measured_policy
    from mrisr.nets.models import build_cnn

    batch = train_data[0]

    def trial(policy):
        with devices.scope():
            model = build_cnn(settings.arch, crop_set.inputs.shape[1], crop_set.targets.shape[1],
                              crop_set.inputs.shape[3])
            model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                          loss=LOSS_FUNCTIONS[loss_phases(settings.loss_setup)[0]], jit_compile=settings.xla)
        return lambda: model.train_on_batch(*batch)

    return measured_policy(trial, "a training step", say)[0]


def train_cnn(crop_set, split, settings, models_dir, resume=False, verbose=1, extra=None, overwrite=False,
              devices=None, pause_after_minutes=None):
    """Train a CNN on a split CropSet as the settings say, on `devices` (distribution.Devices; default
    one); returns the finished CNNRun. With `pause_after_minutes`, the run may end in `Paused` after a
    checkpointed epoch instead (resume continues it)."""
    from mrisr.core.distribution import Devices, without_xla
    from mrisr.nets.models import build_cnn
    from mrisr.paper.pairs import make_pairs
    from mrisr.paper.provenance import data_record

    devices = devices or Devices()
    settings = without_xla(settings, devices)
    if devices.processes > 1 and settings.time_limit_minutes is not None:
        raise UserError("`time_limit_minutes` with several machines: each would stop by its own clock, at different "
                        "batches; limit the run with `epochs`")

    crop_scale = max(1, crop_set.targets.shape[1] // crop_set.inputs.shape[1])
    data = data_record(crop_set, split, settings.pairs, settings.scale)
    crop_set = make_pairs(crop_set, settings.pairs, settings.scale)
    train, validation, train_data = prepare_training(crop_set, split, settings.batch_size, settings.seed,
                                                     settings.limit, settings.augment, **devices.batch_options())
    validation_data = make_dataset(validation.inputs, validation.targets, settings.validation_batch_size,
                                   **devices.batch_options())
    if settings.precision == "auto":
        settings = dataclasses.replace(settings, precision=cnn_precision(settings, crop_set, train_data, devices))
    try:
        with policy_scope(settings.precision), devices.scope():
            model = build_cnn(settings.arch, crop_set.inputs.shape[1], crop_set.targets.shape[1],
                              crop_set.inputs.shape[3])
    except ValueError as error:  # e.g. a fully convolutional network on 13x13 -> 50x50 crops
        raise UserError(str(error)) from None
    run = CNNRun(settings, models_dir, extra, data, crop_scale, writes=devices.chief)
    low, high = crop_set.inputs.shape[1], crop_set.targets.shape[1]
    inform(f"Training {settings.arch} CNN ({model.count_params():,} parameters), loss {settings.loss_setup}, "
          f"on {len(train)} {settings.pairs} pairs ({low}x{low} -> {high}x{high}), validating on {len(validation)}; "
          f"up to {settings.epochs} epochs per phase"
          + ("" if settings.time_limit_minutes is None else f" and {settings.time_limit_minutes:g} minutes")
          + ("" if devices.replicas == 1 else f"; on {devices.description}"))
    with guarded_run(run, resume, overwrite), devices.scope():
        run.train(model, train_data, validation_data, resume=resume, verbose=verbose,
                  pause_after_minutes=pause_after_minutes)
    return run

