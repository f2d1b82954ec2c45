"""The callbacks of a CNN run: early stopping that resumes, the per-epoch record and checkpoint, and the
exponential moving average kept however training stops."""

import keras

from mrisr.core.callbacks import check_finite_epoch


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


class KeepEMAAtStop(keras.callbacks.Callback):
    """For the end of the callback list: makes the averaged weights the final ones however training
    stops. (Keras's SwapEMAWeights does that only after the last planned epoch: when early stopping or
    a time limit ends training, `fit` would otherwise finish with the raw weights.)"""

    def __init__(self, swap):
        super().__init__()
        self.swap = swap

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and self.swap._ema_weights_in_model:
            self.swap._finalize_ema_values()  # the average's copy := the model's (averaged) weights


def ema_callbacks():
    """Keras's SwapEMAWeights (validation and the epoch-end callbacks see the averaged weights) and
    KeepEMAAtStop, for the start and the end of the callback list."""
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    return swap, KeepEMAAtStop(swap)
