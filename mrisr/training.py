"""Training the CNN: the paper's phased fit with early stopping, checkpoints each epoch, and resume."""

import dataclasses
import time
from pathlib import Path
from typing import Optional


from mrisr.cli import UserError
from mrisr.losses import LOSS_FUNCTIONS, loss_phases
from mrisr.storage import CheckpointKeeper, library_versions, load_json, save_json, save_model


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


def model_stem(settings):
    """File name stem of a run: CNN_<LOSS>_model for the paper's network, as the paper named them."""
    if settings.arch == "paper":
        return f"CNN_{settings.loss_setup}_model"
    return f"CNN_{settings.arch}_{settings.loss_setup}_model"


def make_optimizer(settings):
    """Adam with the paper's decay, as Keras's InverseTimeDecay: lr / (1 + decay * step)."""
    import keras

    schedule = keras.optimizers.schedules.InverseTimeDecay(
        settings.learning_rate, decay_steps=1, decay_rate=settings.decay
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def make_dataset(inputs, targets, batch_size, shuffle_seed=None):
    """A tf.data pipeline over in-memory arrays: shuffled each epoch when a seed is given, prefetched."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(inputs), seed=shuffle_seed, reshuffle_each_iteration=True)
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
    return train, validation, make_dataset(train.inputs, train.targets, settings.batch_size, shuffle_seed=seed)


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
            history = self.run.history
            history["epoch"].append(len(history["epoch"]) + 1)
            history["phase"].append(self.run.phases[self.phase_index])
            history["loss"].append(float(logs["loss"]))
            history["val_loss"].append(float(logs["val_loss"]))
            self.run.save_checkpoint(self.phase_index, epoch + 1, self.early_stopping.state())

    return ResumableEarlyStopping, EpochRecorder


class CNNRun:
    """One training run of a CNN: its files, its history, its checkpoints."""

    def __init__(self, settings, models_dir, extra=None):
        self.settings = settings
        self.phases = loss_phases(settings.loss_setup)
        self.models_dir = Path(models_dir)
        stem = model_stem(settings)
        self.model_path = self.models_dir / f"{stem}.keras"
        self.history_path = self.models_dir / f"{stem}_history.json"
        self.checkpoint_dir = self.models_dir / f"{stem}_checkpoint"
        self.checkpoints = CheckpointKeeper(self.checkpoint_dir)
        self.extra = extra or {}
        self.history = {"epoch": [], "phase": [], "loss": [], "val_loss": []}
        self.phase_records = []
        self.seconds = 0.0
        self.model = None

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
        })

    def _restore(self):
        """Compile for the checkpoint's phase, restore weights and optimizer state, check the settings."""
        if not self.checkpoints.exists():
            raise UserError(f"no checkpoint to resume from in {self.checkpoint_dir}")
        saved = load_json(self.checkpoints.state_path)
        for key in ("loss_setup", "arch", "batch_size", "learning_rate", "decay"):
            if saved["settings"][key] != getattr(self.settings, key):
                raise UserError(f"--resume: the checkpoint was made with {key}={saved['settings'][key]!r}, "
                                f"not {getattr(self.settings, key)!r}")
        self.compile(saved["phase_index"])
        self.model.optimizer.build(self.model.trainable_variables)
        return self.checkpoints.read({"model": self.model, "optimizer": self.model.optimizer})

    # --- training --------------------------------------------------------------

    def compile(self, phase_index):
        """Compile for a phase: its loss and a fresh Adam (the paper's second phase starts anew)."""
        self.model.compile(
            optimizer=make_optimizer(self.settings),
            loss=LOSS_FUNCTIONS[self.phases[phase_index]],
            jit_compile=self.settings.xla,
        )

    def train(self, model, train_data, validation_data, resume=False, verbose=1):
        """Fit phase by phase, each until early stopping or the epoch limit; save model and history."""
        ResumableEarlyStopping, EpochRecorder = _callbacks()
        self.model = model
        self._started = time.perf_counter()
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
            self.model.fit(
                train_data, validation_data=validation_data,
                epochs=self.settings.epochs, initial_epoch=start_epoch if continuing else 0,
                callbacks=[early_stopping, EpochRecorder(self, phase_index, early_stopping)],
                verbose=verbose, shuffle=False,  # the tf.data pipeline shuffles
            )
            self.phase_records.append({
                "phase": phase,
                "first_epoch": first_epoch,
                "last_epoch": len(self.history["epoch"]),
                "stopped_early": bool(early_stopping.stopped_epoch > 0),
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
            **self.extra,
        }
        save_json(self.history_path, record)
        self.checkpoints.remove()


def train_cnn(crop_set, split, settings, models_dir, resume=False, verbose=1, extra=None):
    """Train a CNN on a split CropSet as the settings say; returns the finished CNNRun."""
    from mrisr.models import build_cnn

    train, validation, train_data = prepare_training(crop_set, split, settings)
    validation_data = make_dataset(validation.inputs, validation.targets, settings.validation_batch_size)
    model = build_cnn(settings.arch, crop_set.inputs.shape[1], crop_set.targets.shape[1], crop_set.inputs.shape[3])
    run = CNNRun(settings, models_dir, extra)
    print(f"Training {settings.arch} CNN ({model.count_params():,} parameters), loss {settings.loss_setup}, "
          f"on {len(train)} pairs, validating on {len(validation)}; up to {settings.epochs} epochs per phase")
    with run.checkpoints.kept_on_interrupt():
        run.train(model, train_data, validation_data, resume=resume, verbose=verbose)
    return run

