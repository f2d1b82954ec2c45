"""Keras callbacks every training shares (the paper's runs and `upscale.py self`): the stop on a NaN or
infinite loss or weight, the time limit and its cosine schedule, the pause after a checkpointed epoch, a
progress bar over steps."""

import math
import time

import keras
import numpy as np

from mrisr.core.model_files import weights_finite
from mrisr.errors import Paused, RunFailed


class TrainingDiverged(RunFailed):
    """A loss or a weight became NaN or infinite: the run stops and saves nothing."""


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
                                       f"{batch + 1}; no model was saved (try a lower `learning_rate`)")


def check_finite_epoch(logs, epoch, models=()):
    """Raise TrainingDiverged when an epoch's logged value (loss, val_loss...) or a weight of `models`
    is not finite. (Weights are checked too: TensorFlow's fused convolution + ReLU turns NaN into 0 in
    graph mode, so a loss can stay finite while the weights are NaN.)"""
    for key, value in (logs or {}).items():
        if value is not None and not math.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged: {key} is {float(value)} after epoch {epoch}; no model was "
                                   "saved (try a lower `learning_rate`)")
    for model in models:
        if not weights_finite(model):
            raise TrainingDiverged(f"training diverged: {model.name} has NaN or infinite weights after epoch "
                                   f"{epoch}; no model was saved (try a lower `learning_rate`)")


class PauseAfter(keras.callbacks.Callback):
    """Raises `Paused` at the end of the first epoch that ends `minutes` or more after its creation, once
    that epoch's checkpoint is written (it goes after the callback that writes it). An epoch that ends
    training anyway (early stopping) is not paused: the run ends as it would have."""

    clock = staticmethod(time.monotonic)  # seconds; a test replaces it

    def __init__(self, minutes):
        super().__init__()
        self.started, self.seconds = self.clock(), 60.0 * minutes

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training and self.clock() - self.started >= self.seconds:
            raise Paused(f"paused after epoch {epoch + 1}, {self.seconds / 60:g} minutes after the start")


class StepProgress(keras.callbacks.Callback):
    """A progress bar over the training steps of a run, with its loss. `total` may be an estimate (the
    steps a time limit holds): a run that goes past it grows the bar, and the bar ends at the steps made."""

    def __init__(self, total, description, enabled=True):
        super().__init__()
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=description, unit="step", disable=not enabled)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar.total is not None and self.bar.n + 1 >= self.bar.total:
            self.bar.total = self.bar.n + 2  # past the estimate: never more than 100%
        self.bar.update(1)
        if batch % 10 == 0 and logs and "loss" in logs:
            self.bar.set_postfix_str(f"loss {float(logs['loss']):.4f}")

    def on_train_end(self, logs=None):
        self.bar.total = self.bar.n
        self.bar.refresh()
        self.bar.close()


class TimeLimit(keras.callbacks.Callback):
    """Ends training at the first batch after `minutes` from its creation; with `cosine_from`, sets the
    optimizer's learning rate before every batch to a cosine of the run's progress, from that rate to 1%
    of it. The progress is the elapsed share of the time or, given `steps`, the larger of that and the
    share of the steps made, so the cosine ends where the run does, whichever limit comes first.
    Hand-written: Keras's CosineDecay counts steps, and a time-limited run does not know its step count.
    The rate is set from the host's clock into the optimizer's learning-rate variable, which every
    backend's compiled step reads (on JAX after a state sync)."""

    clock = staticmethod(time.monotonic)  # seconds; a test replaces it to run independently of machine speed

    def __init__(self, minutes, cosine_from=None, steps=None):
        super().__init__()
        self.started, self.seconds = self.clock(), 60.0 * minutes
        self.cosine_from, self.steps = cosine_from, steps
        self.progress = 0.0
        self.batches = 0
        self.reached = False

    def learning_rate_at(self, progress):
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
        return self.cosine_from * (0.01 + 0.99 * cosine)

    def on_train_batch_begin(self, batch, logs=None):
        elapsed = self.clock() - self.started
        self.progress = min(1.0, elapsed / self.seconds) if self.seconds > 0 else 1.0
        if self.steps:
            self.progress = max(self.progress, min(1.0, self.batches / self.steps))
        if self.cosine_from is not None:
            sync = getattr(self.model, "jax_state_sync", None)
            if sync is not None:
                sync()  # JAX keeps the state outside the variables during an epoch
            self.model.optimizer.learning_rate = self.learning_rate_at(self.progress)

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.clock() - self.started >= self.seconds:
            self.reached = True
            self.model.stop_training = True
