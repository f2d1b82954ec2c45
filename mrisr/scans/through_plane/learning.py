"""Learning a through-plane network from a volume's own in-plane slices: the recipe, the start it
begins from (pretrained, from scratch, a study's network), the held-out check against the spline, and
the lines a user reads about it."""

import dataclasses
import time
from pathlib import Path

import numpy as np

from mrisr.core.files import atomic_write
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.nets.shipped import pretrained_folder
from mrisr.scans.through_plane.profile import SliceProfile
from mrisr.scans.through_plane.sampler import PatchSampler


@dataclasses.dataclass
class Recipe:
    """How `upscale.py self` learns (benchmarks/through_plane_speed.py measured each choice)."""

    steps: int = 20000  # training steps; --minutes caps the time (on a 2-core CPU without native bfloat16 it decides)
    batch_size: int = 16
    thick_length: int = 12  # patch: thick slices x in-plane pixels
    width: int = 48
    channels: int = 32  # 8 blocks of 32: the gain of 4 blocks of 64 at half the FLOPs (real T1 x4)
    blocks: int = 8
    learning_rate: float = 1e-3  # Adam, a cosine down to 1% of it over the steps, or the time when it ends first
    loss: str = "mean_absolute_error"


@dataclasses.dataclass
class TrainingReport:
    seconds: float  # learning, the precision trial included
    steps: int
    planned_steps: int
    precision: str
    step_seconds: float  # one step, as measured by the trial
    held_out_network: float  # PSNR (dB, normalised units) on patches of held-out slices
    held_out_spline: float
    blend_weight: float  # of the network against the spline, from the held-out slices
    stopped_by_time: bool = False
    start: str = "scratch"  # what learning began from: "scratch", or the weights file's name

    @property
    def held_out_gain(self):
        return self.held_out_network - self.held_out_spline


def held_out_check(model, sampler, count=256, seed=1):
    """(network PSNR, spline PSNR, weight of the network) on `count` patches of the held-out slices (dB in
    normalised units). The weight is 1 when the network beats the spline there; otherwise the w that
    minimises the error of w * network + (1 - w) * spline (least squares, clipped to [0, 1])."""
    inputs, targets = sampler.batch(count, sampler.held_out, np.random.default_rng(seed))
    network = np.asarray(model.predict(inputs, batch_size=32, verbose=0), np.float64)
    spline = inputs[..., 1:].astype(np.float64)

    def psnr(values):
        return float(10 * np.log10(1.0 / max(np.mean((values - targets) ** 2), 1e-12)))

    network_psnr, spline_psnr = psnr(network), psnr(spline)
    if network_psnr > spline_psnr:
        return network_psnr, spline_psnr, 1.0
    difference = network - spline
    energy = float(np.sum(difference ** 2))
    weight = float(np.clip(np.sum(difference * (targets - spline)) / energy, 0.0, 1.0)) if energy > 0 else 0.0
    return network_psnr, spline_psnr, weight


def train_network(volume01, axis, profile, recipe=None, minutes=10.0, pitch_ratios=(1.0, 1.0), seed=0,
                  precision="auto", progress=True, say=inform, start=None):
    """Train a through-plane network on the volume's own in-plane slices: one `fit` over a stream of
    patches for `recipe.steps` steps or `minutes`, whichever ends first (the time limit a callback), the
    learning rate a cosine over the share of the steps made or of the time spent, whichever is larger,
    so it ends at the floor either way.
    `precision`: a Keras policy, or "auto" to measure float32 against 16 bits on this machine.
    `start`: a weights file (.weights.h5) of this recipe's network to begin from (`start_weights`), or
    None to begin from random weights.
    Returns (model, TrainingReport)."""
    import keras

    from mrisr.core.callbacks import StepProgress, StopOnNonFinite, TimeLimit, check_finite_epoch
    from mrisr.core.precision import measured_policy, policy_name, seconds_per_step
    from mrisr.nets.models import through_plane_network

    recipe = recipe or Recipe()
    started = time.monotonic()
    sampler = PatchSampler(np.moveaxis(volume01, axis, 0), profile, recipe.thick_length, recipe.width, seed,
                           pitch_ratios)

    def build(policy, start=None):
        keras.utils.set_random_seed(seed)  # the same initial weights whichever policy wins
        model = through_plane_network(profile.factor, profile.projection(), recipe.channels, recipe.blocks,
                                      dtype=policy)
        if start is not None:
            load_start(model, start)  # before the optimizer exists: the file holds none
        # the rate: set before every step by the TimeLimit callback below
        model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss=recipe.loss)
        return model

    def trial(policy):
        model, batch = build(policy), sampler.batch(recipe.batch_size)
        return lambda: model.train_on_batch(*batch)

    if precision == "auto":
        precision, step_seconds = measured_policy(trial, "a training step", say)
    else:
        step_seconds = seconds_per_step(trial(precision), budget=0.5)
    remaining = 60.0 * minutes - (time.monotonic() - started)
    planned = int(min(recipe.steps, max(0.0, remaining) / step_seconds))
    if planned < recipe.steps:
        say(f"the time limit of {minutes:g} min holds about {planned} of the {recipe.steps} steps at "
            f"{1000 * step_seconds:.0f} ms a step: learning for the {minutes:g} min, its rate's cosine over them")
    model = build(precision, start)

    def batches():
        while True:
            yield sampler.batch(recipe.batch_size)

    limit = TimeLimit(max(0.0, 60.0 * minutes - (time.monotonic() - started)) / 60.0, recipe.learning_rate,
                      recipe.steps)
    loss = float("nan")
    if planned > 0:
        history = model.fit(batches(), steps_per_epoch=recipe.steps, epochs=1, verbose=0, shuffle=False,
                            callbacks=[StopOnNonFinite(), limit,
                                       StepProgress(planned, "learning from the volume", progress)])
        loss = float(history.history["loss"][-1])
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    check_finite_epoch({"loss": loss} if steps else {}, steps, [model])
    network, spline, weight = held_out_check(model, sampler)
    report = TrainingReport(time.monotonic() - started, steps, planned, policy_name(precision), step_seconds,
                            network, spline, weight, limit.reached)
    return model, report


def load_start(model, path):
    """Load the weights `model` begins from; a file made for another network is refused in one line."""
    try:
        model.load_weights(str(path))
    except (ValueError, OSError) as error:
        raise UserError(f"{path} does not hold the weights of this network ({model.name}, "
                        f"{model.count_params()} parameters): {str(error).splitlines()[0][:120]}") from None


def save_start(model, path):
    """Write `model`'s weights (not its optimizer's) as a start for `load_start`, whole or not at all."""
    import keras

    plain = keras.Model(model.inputs, model.outputs, name=model.name)  # the same layers, not compiled
    atomic_write(path, plain.save_weights)


def start_weights(profile, recipe=None):
    """The shipped weights `upscale.py self` begins from for a slice profile (pretrained on real T1 slices
    by `pretrain_network`: a box profile of touching slices), or None where none ship for its factor, the
    profile is another, or the recipe's network differs."""
    recipe, default = recipe or Recipe(), Recipe()
    if (recipe.channels, recipe.blocks) != (default.channels, default.blocks):
        return None
    if profile.kind != "box" or abs(profile.thickness - profile.factor) > 0.01 * profile.factor:
        return None
    path = pretrained_folder() / f"through_plane_x{profile.factor}.weights.h5"
    return path if path.is_file() else None


def pretrain_network(planes, factor, steps=6000, precision="auto", seed=0, progress=True, say=inform):
    """Train the default recipe's network for `factor` (box profile) on a stack of grey slices in [0, 1]
    (count, height, width) from many scans, as `upscale.py self` trains on one volume's slices: the
    weights it begins from (`start_weights`). Returns (model, TrainingReport)."""
    recipe = dataclasses.replace(Recipe(), steps=steps)
    return train_network(np.asarray(planes, np.float32), 0, SliceProfile(factor), recipe, minutes=float("inf"),
                         seed=seed, precision=precision, progress=progress, say=say)


STARTS = ("pretrained", "scratch")


def choose_start(start, profile, recipe=None, say=inform):
    """The weights file learning begins from: with `start` "pretrained", the shipped one for the slice
    `profile` (None, said in a line, where none ships); with "scratch", None (random weights); a Path: that
    weights file (a study's network for the volume's protocol)."""
    if isinstance(start, Path):
        say(f"starting from the network learned on this study's scans of the same protocol ({start.name}); it "
            "learns the rest from this volume")
        return start
    if start not in STARTS:
        raise UserError(f"the start must be one of {', '.join(STARTS)}, not {start!r}")
    if start == "scratch":
        say("learning from the volume alone, from random weights (`start` scratch)")
        return None
    factor = profile.factor
    path = start_weights(profile, recipe)
    if path is None:
        say(f"no pretrained network ships for x{factor} with this slice profile (box profiles of touching slices "
            "at x2 to x6 do): learning from the volume alone, from random weights")
    else:
        say(f"starting from the network pretrained for x{factor} on real T1 slices ({path.name}); it learns the "
            "rest from this volume (`start` scratch: from the volume alone)")
    return path


# On the real 1 mm T1 made 4x thick, 1500 steps gave +2.18 dB over the spline, 4000 steps +2.52, 8000
# +2.70 (docs/measurements.md): below 1500 the result is said to be closer to the spline.
FEW_STEPS = 1500


def say_quality(report, say=inform, few_steps=True):
    """The lines a user reads after learning: the held-out check, the blend, too few steps (`few_steps`:
    said; not for fine-tuning a network that learned before)."""
    gain = report.held_out_gain
    say(f"held-out slices of this volume: the network {report.held_out_network:.2f} dB, cubic spline "
        f"{report.held_out_spline:.2f} dB ({gain:+.2f} dB)")
    if report.blend_weight <= 0.0:
        say("warning: the network does not beat the cubic spline on held-out slices of this volume: the output is "
            "the cubic spline along the slices (try more `steps` or a longer `minutes`)")
    elif report.blend_weight < 1.0:
        say(f"warning: the network does not beat the cubic spline on held-out slices of this volume ({gain:+.2f} dB): "
            f"the output blends the two, weighted {report.blend_weight:.2f} for the network, as measured best there "
            "(try more `steps` or a longer `minutes`)")
    if few_steps and report.steps < FEW_STEPS:
        say(f"warning: only {report.steps} training steps (the gain on real scans keeps growing to about "
            f"{FEW_STEPS} and beyond): expect a result closer to the cubic spline; give more `minutes`")
