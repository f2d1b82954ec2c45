"""Training the CNN: the paper's phased fit with early stopping, checkpoints each epoch, and resume."""

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Optional


from mrisr.cli import RunFailed, UserError
from mrisr.losses import LOSS_FUNCTIONS, loss_phases
from mrisr.storage import CheckpointKeeper, RunLock, library_versions, load_json, save_json, save_model


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


LR_SCHEDULES = ("inverse-time", "cosine", "constant")


# Settings that change speed or reporting, not what a run computes: --resume accepts other values.
NOT_DEFINING = ("xla", "validation_batch_size", "snapshot_every")


def model_stem(settings, crop_scale=2):
    """File name stem of a run: CNN_<LOSS>_model for the paper's network on the paper's x2 crops, as
    the paper named them; other networks add their name, other pairs and scales theirs, so that runs
    that differ in them never write the same file."""
    name = "CNN" if settings.arch == "paper" else f"CNN_{settings.arch}"
    name += f"_{settings.loss_setup}"
    if settings.pairs == "consistent":
        name += f"_consistent_x{settings.scale or 2}"
    elif (settings.scale or crop_scale) != 2:
        name += f"_x{settings.scale or crop_scale}"
    return name + "_model"


class TrainingDiverged(RunFailed):
    """A loss or a weight became NaN or infinite: the run stops and saves nothing."""


def settings_differences(saved, settings):
    """The run-defining settings whose recorded value differs from `settings` (a dataclass)."""
    import json

    current = json.loads(json.dumps(dataclasses.asdict(settings), default=float))
    return [f"{key} (checkpoint {saved.get(key)!r}, now {value!r})" for key, value in current.items()
            if key not in NOT_DEFINING and saved.get(key) != value]


def stop_on_non_finite_callback():
    """A callback that ends training with TrainingDiverged as soon as a batch's loss is NaN or infinite
    (before any checkpoint of that epoch is written)."""
    import math

    import keras
    import numpy as np

    class StopOnNonFinite(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            for key, value in (logs or {}).items():
                number = float(np.asarray(value))
                if not math.isfinite(number):
                    raise TrainingDiverged(
                        f"training diverged: {key} became {number} in epoch {self.epoch}, batch {batch + 1}; "
                        "no model was saved (try a lower --lr)")

    return StopOnNonFinite()


def check_finite_epoch(logs, epoch, models=()):
    """Raise TrainingDiverged when an epoch's logged value (loss, val_loss...) or a weight of `models`
    is not finite. (Weights are checked too: TensorFlow's fused convolution + ReLU turns NaN into 0 in
    graph mode, so a loss can stay finite while the weights are NaN.)"""
    import math

    from mrisr.storage import weights_finite

    for key, value in (logs or {}).items():
        if value is not None and not math.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged: {key} is {float(value)} after epoch {epoch}; no model was "
                                   "saved (try a lower --lr)")
    for model in models:
        if not weights_finite(model):
            raise TrainingDiverged(f"training diverged: {model.name} has NaN or infinite weights after epoch "
                                   f"{epoch}; no model was saved (try a lower --lr)")


def _time_cosine_class():
    import keras
    import tensorflow as tf

    class TimeCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
        """Cosine decay from the rate to 1% of it over a run's time limit: `progress` is a variable
        holding the elapsed share of the time (set by the time-limit callback)."""

        def __init__(self, initial_learning_rate, progress):
            self.initial_learning_rate, self.progress = initial_learning_rate, progress

        def __call__(self, step):
            fraction = tf.clip_by_value(tf.cast(self.progress, tf.float32), 0.0, 1.0)
            cosine = 0.5 * (1.0 + tf.cos(3.141592653589793 * fraction))
            return self.initial_learning_rate * (0.01 + 0.99 * cosine)

        def get_config(self):
            return {"initial_learning_rate": self.initial_learning_rate}

    return TimeCosineDecay


def make_optimizer(settings, steps_per_epoch=1, time_progress=None):
    """Adam with the paper's decay, as Keras's InverseTimeDecay: lr / (1 + decay * step); or, as
    options, a cosine decay over all epochs (over the time limit when there is one, `time_progress`
    being the variable that holds its elapsed share) or a constant rate, and an EMA of the weights."""
    import keras

    if settings.lr_schedule == "inverse-time":
        schedule = keras.optimizers.schedules.InverseTimeDecay(
            settings.learning_rate, decay_steps=1, decay_rate=settings.decay
        )
    elif settings.lr_schedule == "cosine" and time_progress is not None:
        schedule = _time_cosine_class()(settings.learning_rate, time_progress)
    elif settings.lr_schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            settings.learning_rate, decay_steps=max(1, settings.epochs * steps_per_epoch), alpha=0.01
        )
    elif settings.lr_schedule == "constant":
        schedule = settings.learning_rate
    else:
        raise ValueError(f"unknown learning-rate schedule {settings.lr_schedule!r}")
    return keras.optimizers.Adam(learning_rate=schedule, use_ema=settings.ema)


def augment_pair(low, high):
    """The same random flip and 90-degree rotation of an input and its target (square crops)."""
    import tensorflow as tf

    turns = tf.random.uniform((), 0, 4, dtype=tf.int32)
    low, high = tf.image.rot90(low, turns), tf.image.rot90(high, turns)
    flip = tf.random.uniform(()) < 0.5
    return (tf.cond(flip, lambda: tf.image.flip_left_right(low), lambda: low),
            tf.cond(flip, lambda: tf.image.flip_left_right(high), lambda: high))


def make_dataset(inputs, targets, batch_size, shuffle_seed=None, augment=False):
    """A tf.data pipeline over in-memory arrays: shuffled each epoch when a seed is given,
    optionally augmented by flips and rotations, prefetched."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(inputs), seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment:
        dataset = dataset.map(augment_pair, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def prepare_training(crop_set, split, settings):
    """Seed everything; the training and validation crops (training cut to `settings.limit`) and the
    shuffled training pipeline. Shared by the CNN and the GAN."""
    import keras

    seed = 0 if settings.seed is None else settings.seed
    keras.utils.set_random_seed(seed)
    train = crop_set.subset(split.train)
    validation = crop_set.subset(split.validation)
    if settings.limit is not None:
        train = train.subset(train.indices[: settings.limit])
    if len(train) == 0 or len(validation) == 0:
        raise UserError(f"the split leaves {len(train)} training and {len(validation)} validation crops: "
                        "both must be at least 1")
    augment = getattr(settings, "augment", False)
    return train, validation, make_dataset(train.inputs, train.targets, settings.batch_size, shuffle_seed=seed,
                                           augment=augment)


def _callbacks():
    """Keras callback classes, defined lazily so importing this module does not import TensorFlow."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping that can start from a saved `wait` and `best` (for --resume)."""

        def __init__(self, initial_state=None, **kwargs):
            super().__init__(**kwargs)
            self.initial_state = initial_state or {}

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.initial_state:
                self.wait = self.initial_state["wait"]
                self.best = self.initial_state["best"]

        def state(self):
            return {"wait": int(self.wait), "best": float(self.best)}

    class EpochRecorder(keras.callbacks.Callback):
        """Append each epoch to the run's history and write a checkpoint to resume from."""

        def __init__(self, run, phase_index, early_stopping):
            super().__init__()
            self.run, self.phase_index, self.early_stopping = run, phase_index, early_stopping

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            check_finite_epoch(logs, len(self.run.history["epoch"]) + 1, [self.model])
            history = self.run.history
            history["epoch"].append(len(history["epoch"]) + 1)
            history["phase"].append(self.run.phases[self.phase_index])
            history["loss"].append(float(logs["loss"]))
            history["val_loss"].append(float(logs["val_loss"]))
            self.run.save_checkpoint(self.phase_index, epoch + 1, self.early_stopping.state())

    return ResumableEarlyStopping, EpochRecorder


def ema_callbacks():
    """Keras's SwapEMAWeights (validation and the epoch-end callbacks see the averaged weights), and a
    callback for the end of the list that makes the averaged weights the final ones however training
    stops. (SwapEMAWeights does that only after the last planned epoch: when early stopping or a time
    limit ends training, `fit` would otherwise finish with the raw weights.)"""
    import keras

    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)

    class KeepEMAAtStop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.stop_training and swap._ema_weights_in_model:
                swap._finalize_ema_values()  # the average's copy := the model's (averaged) weights

    return swap, KeepEMAAtStop()


def time_limit_callback(minutes):
    """A callback that ends training at the first batch after `minutes` from its creation, and keeps
    the elapsed share of that time in the variable `progress` (for the cosine schedule)."""
    import keras
    import tensorflow as tf

    class TimeLimit(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.started, self.seconds = time.monotonic(), 60.0 * minutes
            self.progress = tf.Variable(0.0, trainable=False, dtype=tf.float32)
            self.reached = False

        def on_train_batch_begin(self, batch, logs=None):
            self.progress.assign(min(1.0, (time.monotonic() - self.started) / self.seconds))

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.started >= self.seconds:
                self.reached = True
                self.model.stop_training = True

    return TimeLimit()


class CNNRun:
    """One training run of a CNN: its files, its history, its checkpoints."""

    def __init__(self, settings, models_dir, extra=None, data=None, crop_scale=2):
        self.settings = settings
        self.phases = loss_phases(settings.loss_setup)
        self.models_dir = Path(models_dir)
        self.data = data  # provenance.data_record of the crops and split
        stem = model_stem(settings, crop_scale)
        self.lock = RunLock(self.models_dir / f"{stem}.lock",
                            [self.models_dir / f"{stem}.keras", self.models_dir / f"{stem}_history.json"])
        self.model_path = self.models_dir / f"{stem}.keras"
        self.history_path = self.models_dir / f"{stem}_history.json"
        self.checkpoint_dir = self.models_dir / f"{stem}_checkpoint"
        self.checkpoints = CheckpointKeeper(self.checkpoint_dir)
        self.extra = extra or {}
        self.history = {"epoch": [], "phase": [], "loss": [], "val_loss": []}
        self.phase_records = []
        self.seconds = 0.0
        self.model = None
        self.steps_per_epoch = 1
        self.time_limit = None

    # --- checkpoints ---------------------------------------------------------

    def save_checkpoint(self, phase_index, epochs_in_phase, early_stopping_state, phase_done=False):
        """Write the model and optimizer and the run state (see storage.CheckpointKeeper)."""
        self.checkpoints.write({"model": self.model, "optimizer": self.model.optimizer}, {
            "phase_index": phase_index,
            "epochs_in_phase": epochs_in_phase,
            "phase_done": phase_done,
            "early_stopping": early_stopping_state,
            "history": self.history,
            "phase_records": self.phase_records,
            "seconds": self.seconds + (time.perf_counter() - self._started),
            "settings": dataclasses.asdict(self.settings),
            "data": self.data,
        })

    def _restore(self):
        """Compile for the checkpoint's phase, restore weights and optimizer state, check the settings."""
        if not self.checkpoints.exists():
            raise UserError(f"no checkpoint to resume from in {self.checkpoint_dir}")
        saved = load_json(self.checkpoints.state_path)
        check_resumable(saved, self.settings, self.data, self.checkpoint_dir)
        self.compile(saved["phase_index"])
        self.model.optimizer.build(self.model.trainable_variables)
        return self.checkpoints.read({"model": self.model, "optimizer": self.model.optimizer})

    # --- training --------------------------------------------------------------

    def compile(self, phase_index):
        """Compile for a phase: its loss and a fresh Adam (the paper's second phase starts anew)."""
        self.model.compile(
            optimizer=make_optimizer(self.settings, self.steps_per_epoch,
                                     None if self.time_limit is None else self.time_limit.progress),
            loss=LOSS_FUNCTIONS[self.phases[phase_index]],
            jit_compile=self.settings.xla,
        )

    def train(self, model, train_data, validation_data, resume=False, verbose=1):
        """Fit phase by phase, each until early stopping or the epoch limit; save model and history."""
        ResumableEarlyStopping, EpochRecorder = _callbacks()
        self.model = model
        self._started = time.perf_counter()
        self.steps_per_epoch = int(train_data.cardinality())
        limit = self.settings.time_limit_minutes
        time_limit = self.time_limit = None if limit is None else time_limit_callback(limit)
        start_phase, start_epoch, early_state, mid_phase = 0, 0, None, False
        if resume:
            state = self._restore()
            self.history, self.phase_records = state["history"], state["phase_records"]
            self.seconds = state["seconds"]
            if state["phase_done"]:
                start_phase = state["phase_index"] + 1
            else:
                start_phase, start_epoch = state["phase_index"], state["epochs_in_phase"]
                early_state, mid_phase = state["early_stopping"], True
            print(f"Resuming from {self.checkpoint_dir}: {len(self.history['epoch'])} epoch(s) done")
        for phase_index in range(start_phase, len(self.phases)):
            if time_limit is not None and time_limit.reached:
                print(f"Time limit of {limit} minutes reached: phase {phase_index + 1} not started")
                break
            phase = self.phases[phase_index]
            continuing = mid_phase and phase_index == start_phase
            if not continuing:
                self.compile(phase_index)  # a fresh optimizer for every phase
            if len(self.phases) > 1:
                print(f"Phase {phase_index + 1} of {len(self.phases)}: {phase} loss")
            early_stopping = ResumableEarlyStopping(
                initial_state=early_state if continuing else None,
                monitor="val_loss", patience=self.settings.patience,
                restore_best_weights=self.settings.restore_best, verbose=1,
            )
            first_epoch = len(self.history["epoch"]) + 1 - (start_epoch if continuing else 0)
            # With an EMA, validation, early stopping and checkpoints see the averaged weights.
            swap_ema, keep_ema = ema_callbacks() if self.settings.ema else (None, None)
            callbacks = [swap_ema] if swap_ema else []
            callbacks += [stop_on_non_finite_callback(), early_stopping,
                          EpochRecorder(self, phase_index, early_stopping)]
            callbacks += [time_limit] if time_limit is not None else []
            callbacks += [keep_ema] if keep_ema else []
            self.model.fit(
                train_data, validation_data=validation_data,
                epochs=self.settings.epochs, initial_epoch=start_epoch if continuing else 0,
                callbacks=callbacks,
                verbose=verbose, shuffle=False,  # the tf.data pipeline shuffles
            )
            self.phase_records.append({
                "phase": phase,
                "first_epoch": first_epoch,
                "last_epoch": len(self.history["epoch"]),
                "stopped_early": bool(early_stopping.stopped_epoch > 0),
                "stopped_by_time_limit": bool(time_limit is not None and time_limit.reached),
            })
            if phase_index + 1 < len(self.phases):
                self.save_checkpoint(phase_index, 0, None, phase_done=True)
        self.seconds += time.perf_counter() - self._started
        self.finish()
        return self.history

    def finish(self):
        """Save the final model (without optimizer) and the history; remove the checkpoint."""
        save_model(self.model, self.model_path, include_optimizer=False)
        record = {
            "model": self.model_path.name,
            "loss_setup": self.settings.loss_setup,
            "history": self.history,
            "phases": self.phase_records,
            "switch_epoch": self.phase_records[1]["first_epoch"] if len(self.phase_records) > 1 else None,
            "epochs_to_early_stop": [r["last_epoch"] - r["first_epoch"] + 1 for r in self.phase_records],
            "training_seconds": round(self.seconds, 2),
            "settings": dataclasses.asdict(self.settings),
            "parameters": int(self.model.count_params()),
            "versions": library_versions(),
            "data": self.data,
            **self.extra,
        }
        save_json(self.history_path, record)
        self.checkpoints.remove()


def check_resumable(saved, settings, data, checkpoint_dir):
    """Raise UserError naming every run-defining setting or data that differs from a checkpoint's."""
    from mrisr.provenance import data_differences

    differences = settings_differences(saved.get("settings", {}), settings)
    if data is not None:
        differences += data_differences(saved.get("data"), data)
    if differences:
        raise UserError(f"--resume: the checkpoint in {checkpoint_dir} was made with other settings or data: "
                        + "; ".join(differences) + ". Give the same options, or start again with --overwrite")


def start_run(run, resume, overwrite):
    """Before training: take the run's lock (see storage.RunLock), clean what a killed run left, and
    refuse to start afresh over an interrupted run's checkpoint unless `overwrite`."""
    run.lock.acquire()
    try:
        run.checkpoints.remove_partial()
        if not resume and run.checkpoints.exists():
            done = run.checkpoints.epochs_done()
            if not overwrite:
                raise UserError(f"an interrupted run ({done} epoch(s)) is kept in {run.checkpoints.folder}: "
                                "continue it with --resume, or start again with --overwrite (which deletes it)")
            print(f"--overwrite: deleting the interrupted run's checkpoint ({done} epoch(s)) in "
                  f"{run.checkpoints.folder}")
            run.checkpoints.remove()
    except BaseException:
        run.lock.release()
        raise


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


@contextlib.contextmanager
def guarded_run(run, resume, overwrite):
    """A CNN or GAN run's guard: start_run, the last checkpoint kept (and a partial one removed) on an
    interrupt, and the lock released however the run ends."""
    start_run(run, resume, overwrite)
    try:
        with run.checkpoints.kept_on_interrupt():
            yield run
    finally:
        run.lock.release()


def train_cnn(crop_set, split, settings, models_dir, resume=False, verbose=1, extra=None, overwrite=False):
    """Train a CNN on a split CropSet as the settings say; returns the finished CNNRun."""
    from mrisr.crops import make_pairs
    from mrisr.models import build_cnn
    from mrisr.provenance import data_record

    crop_scale = max(1, crop_set.targets.shape[1] // crop_set.inputs.shape[1])
    data = data_record(crop_set, split, settings.pairs, settings.scale)
    crop_set = make_pairs(crop_set, settings.pairs, settings.scale)
    train, validation, train_data = prepare_training(crop_set, split, settings)
    validation_data = make_dataset(validation.inputs, validation.targets, settings.validation_batch_size)
    try:
        model = build_cnn(settings.arch, crop_set.inputs.shape[1], crop_set.targets.shape[1],
                          crop_set.inputs.shape[3])
    except ValueError as error:  # e.g. a fully convolutional network on 13x13 -> 50x50 crops
        raise UserError(str(error)) from None
    run = CNNRun(settings, models_dir, extra, data, crop_scale)
    low, high = crop_set.inputs.shape[1], crop_set.targets.shape[1]
    print(f"Training {settings.arch} CNN ({model.count_params():,} parameters), loss {settings.loss_setup}, "
          f"on {len(train)} {settings.pairs} pairs ({low}x{low} -> {high}x{high}), validating on {len(validation)}; "
          f"up to {settings.epochs} epochs per phase"
          + ("" if settings.time_limit_minutes is None else f" and {settings.time_limit_minutes:g} minutes"))
    with guarded_run(run, resume, overwrite):
        run.train(model, train_data, validation_data, resume=resume, verbose=verbose)
    return run

