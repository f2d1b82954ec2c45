"""The core every training run shares (CNN and GAN): its lock, checkpoints, history and clock;
resume that names what differs; the guard around a run; the stop on a NaN or infinite loss or weight."""

import contextlib
import dataclasses
import json
import math
import time

import keras
import numpy as np

from mrisr.cli import RunFailed, UserError
from mrisr.storage import CheckpointKeeper, RunLock, library_versions, load_json, save_json, save_model, weights_finite

# Settings that change speed or reporting, not what a run computes: --resume accepts other values.
NOT_DEFINING = ("xla", "validation_batch_size", "snapshot_every")


class TrainingDiverged(RunFailed):
    """A loss or a weight became NaN or infinite: the run stops and saves nothing."""


def settings_differences(saved, settings):
    """The run-defining settings whose recorded value differs from `settings` (a dataclass)."""
    current = json.loads(json.dumps(dataclasses.asdict(settings), default=float))
    return [f"{key} (checkpoint {saved.get(key)!r}, now {value!r})" for key, value in current.items()
            if key not in NOT_DEFINING and saved.get(key) != value]


def check_resumable(saved, settings, data, checkpoint_dir):
    """Raise UserError naming every run-defining setting or data that differs from a checkpoint's."""
    from mrisr.provenance import data_differences

    differences = settings_differences(saved.get("settings", {}), settings)
    if data is not None:
        differences += data_differences(saved.get("data"), data)
    if differences:
        raise UserError(f"--resume: the checkpoint in {checkpoint_dir} was made with other settings or data: "
                        + "; ".join(differences) + ". Give the same options, or start again with --overwrite")


class StopOnNonFinite(keras.callbacks.Callback):
    """Ends training with TrainingDiverged as soon as a batch's loss is NaN or infinite (before any
    checkpoint of that epoch is written)."""

    epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            number = float(np.asarray(value))
            if not math.isfinite(number):
                raise TrainingDiverged(f"training diverged: {key} became {number} in epoch {self.epoch}, batch "
                                       f"{batch + 1}; no model was saved (try a lower --lr)")


def check_finite_epoch(logs, epoch, models=()):
    """Raise TrainingDiverged when an epoch's logged value (loss, val_loss...) or a weight of `models`
    is not finite. (Weights are checked too: TensorFlow's fused convolution + ReLU turns NaN into 0 in
    graph mode, so a loss can stay finite while the weights are NaN.)"""
    for key, value in (logs or {}).items():
        if value is not None and not math.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged: {key} is {float(value)} after epoch {epoch}; no model was "
                                   "saved (try a lower --lr)")
    for model in models:
        if not weights_finite(model):
            raise TrainingDiverged(f"training diverged: {model.name} has NaN or infinite weights after epoch "
                                   f"{epoch}; no model was saved (try a lower --lr)")


class StepProgress(keras.callbacks.Callback):
    """A progress bar over the training steps of a run, with its loss."""

    def __init__(self, total, description, enabled=True):
        super().__init__()
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=description, unit="step", disable=not enabled)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if batch % 10 == 0 and logs and "loss" in logs:
            self.bar.set_postfix_str(f"loss {float(logs['loss']):.4f}")

    def on_train_end(self, logs=None):
        self.bar.close()


class TimeLimit(keras.callbacks.Callback):
    """Ends training at the first batch after `minutes` from its creation; with `cosine_from`, sets the
    optimizer's learning rate before every batch to a cosine of the elapsed share of the time, from
    that rate to 1% of it. Hand-written: Keras's CosineDecay counts steps, and a time-limited run does
    not know its step count. The rate is set from the host's clock into the optimizer's learning-rate
    variable, which every backend's compiled step reads (on JAX after a state sync)."""

    clock = staticmethod(time.monotonic)  # seconds; a test replaces it to run independently of machine speed

    def __init__(self, minutes, cosine_from=None):
        super().__init__()
        self.started, self.seconds = self.clock(), 60.0 * minutes
        self.cosine_from = cosine_from
        self.progress = 0.0
        self.reached = False

    def learning_rate_at(self, progress):
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
        return self.cosine_from * (0.01 + 0.99 * cosine)

    def on_train_batch_begin(self, batch, logs=None):
        self.progress = min(1.0, (self.clock() - self.started) / self.seconds)
        if self.cosine_from is not None:
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()  # JAX keeps the state outside the variables during an epoch
            self.model.optimizer.learning_rate = self.learning_rate_at(self.progress)

    def on_train_batch_end(self, batch, logs=None):
        if self.clock() - self.started >= self.seconds:
            self.reached = True
            self.model.stop_training = True


class TrainingRun:
    """One training run's files and state: a lock on its outputs, checkpoints to resume from, the
    history, the training time, and the record written beside the finished models. With `writes`
    false (a worker other than the chief of a multi-worker run) it trains alongside and writes nothing."""

    def __init__(self, settings, data, extra, lock_path, outputs, checkpoint_dir, history_path, history_keys,
                 writes=True):
        self.settings = settings
        self.data = data  # provenance.data_record of the crops and split
        self.extra = extra or {}
        self.lock = RunLock(lock_path, outputs)
        self.checkpoints = CheckpointKeeper(checkpoint_dir)
        self.history_path = history_path
        self.history = {key: [] for key in history_keys}
        self.seconds = 0.0
        self._started = time.perf_counter()
        self.writes = writes

    def start_clock(self):
        self._started = time.perf_counter()

    def stop_clock(self):
        self.seconds += time.perf_counter() - self._started
        self._started = time.perf_counter()

    def write_checkpoint(self, objects, state=None):
        """Save `objects` (models, optimizers) and the run's state (see storage.CheckpointKeeper)."""
        if not self.writes:
            return
        self.checkpoints.write(objects, {
            **(state or {}), "history": self.history,
            "seconds": self.seconds + (time.perf_counter() - self._started),
            "settings": dataclasses.asdict(self.settings), "data": self.data})

    def read_checkpoint(self, objects, build=None):
        """Check the checkpoint was made with these settings and data, call `build` (which creates the
        optimizer variables), restore `objects`, the history and the clock; returns the saved state."""
        if not self.checkpoints.exists():
            raise UserError(f"no checkpoint to resume from in {self.checkpoints.folder}")
        check_resumable(load_json(self.checkpoints.state_path), self.settings, self.data, self.checkpoints.folder)
        if build is not None:
            build()
        state = self.checkpoints.read(objects() if callable(objects) else objects)
        self.history, self.seconds = state["history"], state["seconds"]
        print(f"Resuming from {self.checkpoints.folder}: {len(self.history['epoch'])} epoch(s) done")
        return state

    def finish(self, models, record):
        """Save the finished models (path -> model, without optimizer) and the history record; remove
        the checkpoint."""
        if not self.writes:
            return
        for path, model in models.items():
            save_model(model, path, include_optimizer=False)
        save_json(self.history_path, {
            **record, "history": self.history, "training_seconds": round(self.seconds, 2),
            "settings": dataclasses.asdict(self.settings), "versions": library_versions(), "data": self.data,
            **self.extra})
        self.checkpoints.remove()


def start_run(run, resume, overwrite):
    """Before training: take the run's lock (see storage.RunLock), clean what a killed run left, and
    refuse to start afresh over an interrupted run's checkpoint unless `overwrite`. A run that does not
    write (a multi-worker run's other workers) makes the same refusals and takes no lock."""
    if not run.writes:
        if not resume and run.checkpoints.exists() and not overwrite:
            raise UserError(f"an interrupted run is kept in {run.checkpoints.folder}: continue it with --resume, "
                            "or start again with --overwrite")
        return
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


@contextlib.contextmanager
def guarded_run(run, resume, overwrite):
    """A run's guard: start_run, the last checkpoint kept (and a partial one removed) on an interrupt,
    and the lock released however the run ends."""
    start_run(run, resume, overwrite)
    if not run.writes:
        yield run
        return
    try:
        with run.checkpoints.kept_on_interrupt():
            yield run
    finally:
        run.lock.release()
