"""What every checkpointed training run shares (the paper's CNN and GAN): its lock, checkpoints,
history and clock; resume that names what differs; the guard around a run."""

import contextlib
import dataclasses
import json
import time

from mrisr.core.checkpoints import CheckpointKeeper
from mrisr.core.files import load_json, save_json
from mrisr.core.locks import RunLock
from mrisr.core.messages import inform
from mrisr.core.model_files import library_versions, save_model
from mrisr.errors import UserError

# Settings that change speed or reporting, not what a run computes: --resume accepts other values.
NOT_DEFINING = ("xla", "validation_batch_size", "snapshot_every")


def settings_differences(saved, settings):
    """The run-defining settings whose recorded value differs from `settings` (a dataclass)."""
    current = json.loads(json.dumps(dataclasses.asdict(settings), default=float))
    return [f"{key} (checkpoint {saved.get(key)!r}, now {value!r})" for key, value in current.items()
            if key not in NOT_DEFINING and saved.get(key) != value]


def check_resumable(saved, settings, data, checkpoint_dir, data_differences=None):
    """Raise UserError naming every run-defining setting or data that differs from a checkpoint's
    (`data_differences(saved, current)` names what differs between two records of the data)."""
    differences = settings_differences(saved.get("settings", {}), settings)
    if data is not None and data_differences is not None:
        differences += data_differences(saved.get("data"), data)
    if differences:
        raise UserError(f"`resume`: the checkpoint in {checkpoint_dir} was made with other settings or data: "
                        + "; ".join(differences) + ". Give the same options, or start again with `overwrite`")


class TrainingRun:
    """One training run's files and state: a lock on its outputs, checkpoints to resume from, the
    history, the training time, and the record written beside the finished models. With `writes`
    false (a worker other than the chief of a multi-worker run) it trains alongside and writes nothing.
    A kind of run that records its data sets `data_differences` (what --resume compares)."""

    data_differences = None

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
        check_resumable(load_json(self.checkpoints.state_path), self.settings, self.data, self.checkpoints.folder,
                        self.data_differences)
        if build is not None:
            build()
        state = self.checkpoints.read(objects() if callable(objects) else objects)
        self.history, self.seconds = state["history"], state["seconds"]
        inform(f"Resuming from {self.checkpoints.folder}: {len(self.history['epoch'])} epoch(s) done")
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
            raise UserError(f"an interrupted run is kept in {run.checkpoints.folder}: continue it with `resume`, "
                            "or start again with `overwrite`")
        return
    run.lock.acquire()
    try:
        run.checkpoints.remove_partial()
        if not resume and run.checkpoints.exists():
            done = run.checkpoints.epochs_done()
            if not overwrite:
                raise UserError(f"an interrupted run ({done} epoch(s)) is kept in {run.checkpoints.folder}: "
                                "continue it with `resume`, or start again with `overwrite` (which deletes it)")
            inform(f"`overwrite`: deleting the interrupted run's checkpoint ({done} epoch(s)) in "
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
