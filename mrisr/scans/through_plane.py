"""Through-plane super-resolution of a thick-slice volume, learned from that volume (from a pretrained start).

A thick-slice volume is sharp within its slices and blurred across them: each thick slice is the
scanner's slice profile (a box or Gaussian of the slice thickness) applied to the anatomy, sampled at
the slice spacing. The in-plane directions keep that detail, so (as SMORE does) the in-plane slices
are degraded along one of their axes exactly as the scanner degraded the slice axis, and a network
learns to undo it; then it runs on the planes that contain the slice axis, in both orientations,
and the two results are averaged. Learning begins from a network pretrained so on real T1 slices of
other patients, shipped for x2 to x6 (`start_weights`, made by `pretrain_network`), or from random
weights (the start "scratch").

The network works on the thick grid (`models.through_plane_network`): each thick position carries its
value and the F cubic-spline values of its sub-slices, and it outputs the F sub-slices as a correction
to the spline, projected so that the profile's weighted sum of each thick slice's sub-slices equals
the thick value. Units: along the slice axis everything is counted in thin slices, F of them per
thick slice; the profile's thickness in thin slices is thickness / (spacing / F) (F when the slices
touch, less with a gap, more when they overlap).
"""

import dataclasses
import functools
import math
import time
from pathlib import Path

import numpy as np

from mrisr.errors import UserError

PROFILES = ("box", "gaussian")


class NearlyIsotropic(UserError):
    """The volume's slices are already about as fine as its pixels, and no factor was given (a study skips it)."""


@dataclasses.dataclass
class SliceProfile:
    """How one thick slice weighs the thin slices: `factor` thin slices per thick slice, `thickness`
    in thin slices, a box or a Gaussian (full width at half maximum = thickness)."""

    factor: int
    thickness: float = None
    kind: str = "box"

    def __post_init__(self):
        if self.thickness is None:
            self.thickness = float(self.factor)
        if self.factor < 2 or self.factor > 16:
            raise UserError(f"the factor must be a whole number from 2 to 16, not {self.factor}")
        if not (math.isfinite(self.thickness) and 0 < self.thickness <= 4 * self.factor):
            raise UserError(f"the slice thickness must be above 0 and at most 4 slice spacings, "
                            f"got {self.thickness / self.factor:g} spacings")
        if self.kind not in PROFILES:
            raise UserError(f"the slice profile must be one of {', '.join(PROFILES)}, not {self.kind!r}")

    def taps(self):
        """(offsets, weights): thin-slice offsets from a thick slice's first thin slice, weights summing to 1."""
        centre = (self.factor - 1) / 2
        if self.kind == "box":
            low, high = centre - self.thickness / 2, centre + self.thickness / 2
            offsets = np.arange(math.floor(low + 0.5), math.ceil(high - 0.5) + 1)
            weights = np.clip(np.minimum(offsets + 0.5, high) - np.maximum(offsets - 0.5, low), 0, None)
        else:
            from scipy.special import ndtr

            sigma = self.thickness / (2 * math.sqrt(2 * math.log(2)))
            reach = math.ceil(3 * sigma + 1)
            offsets = np.arange(math.floor(centre) - reach, math.ceil(centre) + reach + 1)
            weights = ndtr((offsets + 0.5 - centre) / sigma) - ndtr((offsets - 0.5 - centre) / sigma)
        keep = weights > 1e-9
        return offsets[keep], weights[keep] / weights[keep].sum()

    def projection(self):
        """The weights of a thick slice's own F sub-slices, for the consistency projection, or None
        when the profile reaches far outside its slab (then a projection on the slab alone is wrong)."""
        offsets, weights = self.taps()
        inside = (offsets >= 0) & (offsets < self.factor)
        if weights[~inside].sum() > 0.01:
            return None
        profile = np.zeros(self.factor)
        profile[offsets[inside]] = weights[inside]
        return profile / profile.sum()


def degrade(fine, axis, profile, start=0, count=None):
    """Thick samples of `fine` along `axis`: thick i = sum_j w_j fine[start + i F + offset_j] (the
    ends replicated), for i < count (default: as many as fit from `start`)."""
    fine = np.moveaxis(np.asarray(fine), axis, 0)
    factor = profile.factor
    if count is None:
        count = (fine.shape[0] - start) // factor
    offsets, weights = profile.taps()
    positions = np.clip(start + factor * np.arange(count)[:, None] + offsets[None, :], 0, fine.shape[0] - 1)
    thick = np.tensordot(weights, fine[positions], axes=([0], [1])) if count else fine[:0]
    return np.moveaxis(thick.astype(np.float32), 0, axis)


@functools.lru_cache(maxsize=32)
def spline_matrix(count, factor):
    """The (count * F, count) matrix of cubic B-spline interpolation from thick slices to thin ones:
    thin slice k sits at thick coordinate (k + 0.5) / F - 0.5 (edges: nearest)."""
    from scipy.ndimage import map_coordinates

    coordinates = (np.arange(count * factor) + 0.5) / factor - 0.5
    matrix = np.empty((count * factor, count))
    for column in range(count):
        unit = np.zeros(count)
        unit[column] = 1.0
        matrix[:, column] = map_coordinates(unit, [coordinates], order=3, mode="nearest")
    matrix.setflags(write=False)
    return matrix


def spline_upsample(thick, axis, factor):
    """Cubic-spline interpolation of `thick` along `axis` to F times as many slices."""
    thick = np.moveaxis(np.asarray(thick, np.float32), axis, 0)
    matrix = spline_matrix(thick.shape[0], factor).astype(np.float32)
    return np.moveaxis(np.tensordot(matrix, thick, axes=([1], [0])), 0, axis)


def network_input(thick_planes, factor):
    """(N, thick, W) planes -> (N, thick, W, 1 + F): each thick value and its F spline sub-slices."""
    count = thick_planes.shape[1]
    spline = np.einsum("kt,ntw->nkw", spline_matrix(count, factor).astype(np.float32), thick_planes)
    spline = spline.reshape(len(thick_planes), count, factor, -1).transpose(0, 1, 3, 2)
    return np.concatenate([thick_planes[..., None], spline], axis=-1).astype(np.float32)


def sub_slices_to_fine(output):
    """(N, thick, W, F) network output -> (N, thick * F, W) thin planes."""
    n, count, width, factor = output.shape
    return output.transpose(0, 1, 3, 2).reshape(n, count * factor, width)


def normalise(volume):
    """Map intensities by the 0.1 and 99.9 percentiles of the finite values to about [0, 1]; NaN and
    infinite values become 0. Returns (float32 volume, low, span)."""
    volume = np.asarray(volume)
    finite = np.isfinite(volume)
    if not finite.any():
        raise UserError("every value of the volume is NaN or infinite: nothing to upscale")
    low, high = np.percentile(volume[finite], [0.1, 99.9])
    if high <= low:
        low, high = float(volume[finite].min()), float(volume[finite].max())
    span = float(high - low) or 1.0
    return np.where(finite, (volume - low) / span, 0.0).astype(np.float32), float(low), span


class PatchSampler:
    """Training pairs from the in-plane slices of a normalised volume: a patch degraded along one of
    its in-plane axes by the slice profile (any phase of the thick grid, both axes, flips), as network
    input, and the patch's sub-slices as target. Every eighth slice with content is held out of
    training (`held_out`), for the check against the spline. Vectorised: a batch of 16 takes about 2 ms."""

    def __init__(self, planes, profile, thick_length=12, width=48, seed=0, pitch_ratios=(1.0, 1.0)):
        self.profile, self.width = profile, width
        self.rng = np.random.default_rng(seed)
        self.offsets, self.weights = profile.taps()
        self.weights = self.weights.astype(np.float32)
        shortest = min(int(planes.shape[1] * pitch_ratios[0]), int(planes.shape[2] * pitch_ratios[1]))
        self.thick_length = max(3, min(thick_length, (shortest - 1) // profile.factor))
        fine_length = self.thick_length * profile.factor
        # Each orientation: planes whose rows run along the axis to degrade, resampled (when the thin
        # pitch differs from the in-plane pixel) so that one row is one thin slice, and padded by
        # reflection to at least the patch width.
        self.stacks = []
        for axis, ratio in zip((1, 2), pitch_ratios):
            stack = np.moveaxis(np.asarray(planes, np.float32), axis, 1)
            if abs(ratio - 1.0) > 0.02:
                from scipy.ndimage import zoom

                stack = zoom(stack, (1, ratio, 1), order=3).astype(np.float32)
            if stack.shape[1] < fine_length + 1 or stack.shape[2] < 8:
                continue
            if stack.shape[2] < width:
                stack = np.pad(stack, ((0, 0), (0, 0), (0, width - stack.shape[2])), mode="reflect")
            self.stacks.append(np.ascontiguousarray(stack))
        if not self.stacks:
            raise UserError(f"the slices ({planes.shape[1]}x{planes.shape[2]}) are too small to learn x"
                            f"{profile.factor} from (at least {fine_length + 1} pixels are needed)")
        # Slices with some content: at least 5% of the pixels above a tenth of the range.
        content = (np.asarray(planes) > 0.1).mean(axis=(1, 2)) > 0.05
        useful = np.flatnonzero(content) if content.any() else np.arange(len(planes))
        self.held_out = useful[4::8] if len(useful) >= 8 else useful[len(useful) // 2:len(useful) // 2 + 1]
        self.training = np.setdiff1d(useful, self.held_out) if len(useful) > 1 else useful

    def batch(self, count, slices=None, rng=None):
        """(inputs (count, L, W, 1 + F), targets (count, L, W, F)) from `slices` (default: the training
        slices): the patches with content preferred (the best of three draws each)."""
        factor, length, width = self.profile.factor, self.thick_length, self.width
        rng = rng or self.rng
        slices = self.training if slices is None else slices
        thick = np.empty((count, length, width), np.float32)
        fine = np.empty((count, length * factor, width), np.float32)
        which = rng.integers(len(self.stacks), size=count)
        for orientation, stack in enumerate(self.stacks):
            chosen = np.flatnonzero(which == orientation)
            if not chosen.size:
                continue
            draws = 3 * chosen.size
            plane = slices[rng.integers(len(slices), size=draws)]
            start = rng.integers(0, stack.shape[1] - length * factor + 1, size=draws)
            columns = rng.integers(0, stack.shape[2] - width + 1, size=draws)[:, None] + np.arange(width)
            rows = start[:, None] + np.arange(length * factor)
            patches = stack[plane[:, None, None], rows[:, :, None], columns[:, None, :]]
            best = np.argsort(patches.mean(axis=(1, 2)) <= 0.05, kind="stable")[:chosen.size]
            plane, start, columns = plane[best], start[best], columns[best]
            fine[chosen] = patches[best]
            # the thick rows: the profile's taps around each thick slice, from the whole plane
            taps = np.clip(start[:, None, None] + factor * np.arange(length)[:, None] + self.offsets, 0,
                           stack.shape[1] - 1)
            values = stack[plane[:, None, None, None], taps[..., None], columns[:, None, None, :]]
            thick[chosen] = np.einsum("t,nltw->nlw", self.weights, values)
        flip = rng.random(count) < 0.5  # across: mirror the patch
        thick[flip], fine[flip] = thick[flip, :, ::-1], fine[flip, :, ::-1]
        flip = rng.random(count) < 0.5  # along the slice axis: the profile is symmetric
        thick[flip], fine[flip] = thick[flip, ::-1], fine[flip, ::-1]
        targets = fine.reshape(count, length, factor, width).transpose(0, 1, 3, 2)
        return network_input(thick, factor), np.ascontiguousarray(targets)


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
    final_loss: float
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
                  precision="auto", progress=True, say=print, start=None):
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
    report = TrainingReport(time.monotonic() - started, steps, planned, loss, policy_name(precision), step_seconds,
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

    from mrisr.core.files import atomic_write

    plain = keras.Model(model.inputs, model.outputs, name=model.name)  # the same layers, not compiled
    atomic_write(path, plain.save_weights)


def start_weights(profile, recipe=None):
    """The shipped weights `upscale.py self` begins from for a slice profile (pretrained on real T1 slices
    by `pretrain_network`: a box profile of touching slices), or None where none ship for its factor, the
    profile is another, or the recipe's network differs."""
    from mrisr.nets.shipped import pretrained_folder

    recipe, default = recipe or Recipe(), Recipe()
    if (recipe.channels, recipe.blocks) != (default.channels, default.blocks):
        return None
    if profile.kind != "box" or abs(profile.thickness - profile.factor) > 0.01 * profile.factor:
        return None
    path = pretrained_folder() / f"through_plane_x{profile.factor}.weights.h5"
    return path if path.is_file() else None


def pretrain_network(planes, factor, steps=6000, precision="auto", seed=0, progress=True, say=print):
    """Train the default recipe's network for `factor` (box profile) on a stack of grey slices in [0, 1]
    (count, height, width) from many scans, as `upscale.py self` trains on one volume's slices: the
    weights it begins from (`start_weights`). Returns (model, TrainingReport)."""
    recipe = dataclasses.replace(Recipe(), steps=steps)
    return train_network(np.asarray(planes, np.float32), 0, SliceProfile(factor), recipe, minutes=float("inf"),
                         seed=seed, precision=precision, progress=progress, say=say)


def apply_network(model, volume01, axis, factor, batch_planes=8, progress=True, self_ensemble=False):
    """The thin volume (float32, normalised units): the network on every plane that contains the slice
    axis, in both orientations, averaged. `self_ensemble`: also on the volume reversed along the slice
    axis, across it, and both (the flips training saw), each turned back, the four averaged (four times
    the time). Memory: the output plus `batch_planes` planes at a time."""
    from tqdm import tqdm

    from mrisr.scans.upscaling import require_finite

    thick = np.moveaxis(np.asarray(volume01, np.float32), axis, 0)  # (n, A, B)
    count, rows, columns = thick.shape
    output = np.zeros((count * factor, rows, columns), np.float32)
    variants = [(), (0,), (1, 2), (0, 1, 2)] if self_ensemble else [()]
    run = model.predict
    with tqdm(total=len(variants) * (rows + columns), desc="applying", unit="plane", disable=not progress) as bar:
        for flips in variants:
            source = np.flip(thick, flips) if flips else thick
            target = np.flip(output, flips) if flips else output  # a view: the sums land turned back
            for orientation, size in ((1, rows), (2, columns)):
                for first in range(0, size, batch_planes):
                    last = min(size, first + batch_planes)
                    if orientation == 1:
                        planes = source[:, first:last, :].transpose(1, 0, 2)  # (planes, n, B)
                    else:
                        planes = source[:, :, first:last].transpose(2, 0, 1)  # (planes, n, A)
                    predicted = np.asarray(run(network_input(np.ascontiguousarray(planes), factor),
                                               batch_size=batch_planes, verbose=0))
                    require_finite(predicted, model.name)
                    fine = sub_slices_to_fine(predicted)  # (planes, n F, width)
                    if orientation == 1:
                        target[:, first:last, :] += fine.transpose(1, 0, 2)
                    else:
                        target[:, :, first:last] += fine.transpose(1, 2, 0)
                    bar.update(last - first)
    output *= 1.0 / (2 * len(variants))
    return np.moveaxis(output, 0, axis)


def thin_affine(affine, axis, factor):
    """The affine of the thin volume: F thin voxels tile each thick voxel along `axis`."""
    from mrisr.scans.geometry import tiling_affine

    factors = [1, 1, 1]
    factors[axis] = factor
    return tiling_affine(affine, factors)


@dataclasses.dataclass
class Plan:
    """What `upscale.py self` will do with a volume, and why."""

    axis: int
    profile: SliceProfile
    pitch_ratios: tuple  # per in-plane axis: how much to stretch it so one pixel is one thin slice
    description: str


def make_plan(volume, axis=None, factor=None, thickness_mm=None, kind="box", profile_known=True):
    """Choose the slice axis, the factor and the slice profile of a Scan (UserError when they cannot
    be chosen): axis = DICOM's slice axis, else the largest voxel size; factor = that size over the
    in-plane one, rounded; thickness = the given one, else the file's slice thickness, else the slice
    spacing (no gap). `profile_known` False: a saved network brings its own profile (not described)."""
    data = volume.data
    if data.ndim != 3:
        raise UserError(f"upscaling across slices needs a 3-D volume, not a {data.ndim}-D array")
    if volume.no_grid:
        raise UserError(f"{volume.no_grid}: upscaling across slices needs one stack of slices")
    if isinstance(volume.scaling, np.ndarray):
        raise UserError(f"{volume.path}: its frames have their own rescale slopes and intercepts: upscaling across "
                        "slices needs one scaling (convert the file to NIfTI first, e.g. with dcm2niix)")
    if volume.spacing is None:  # .npy: no geometry
        if axis is None or factor is None:
            raise UserError("a .npy volume has no voxel sizes: give --axis and --scale")
        if thickness_mm is not None:
            raise UserError("a .npy volume has no voxel sizes: --slice-thickness needs NIfTI or DICOM")
        spacing = [1.0, 1.0, 1.0]
        spacing[axis] = float(factor)
    else:
        spacing = list(volume.spacing)
    if volume.slice_axis is not None and axis is not None and axis != volume.slice_axis:
        raise UserError(f"a DICOM series is upscaled across its slices (axis {volume.slice_axis}), not axis {axis}")
    if axis is None and volume.slice_axis is not None:
        axis = volume.slice_axis  # DICOM says which axis its slices run along
    if axis is None:
        if max(spacing) < 1.5 * min(spacing):
            sizes = ", ".join(f"{v:g}" for v in spacing)
            raise NearlyIsotropic(f"the volume is nearly isotropic (voxel sizes {sizes} mm): give --axis and --scale "
                                  "to make its slices finer anyway")
        axis = int(np.argmax(spacing))
    if axis not in (0, 1, 2):
        raise UserError(f"--axis must be 0, 1 or 2, not {axis}")
    in_plane = [spacing[a] for a in range(3) if a != axis]
    ratio = spacing[axis] / float(np.mean(in_plane))
    if factor is None:
        factor = int(round(ratio))
        if factor < 2:
            raise NearlyIsotropic(f"the slice spacing is only {ratio:.2f} times the in-plane pixel size: give "
                                  "--scale (2 or more) to make the slices finer anyway")
    if not 2 <= factor <= 16:
        raise UserError(f"--scale must be from 2 to 16 for upscaling across slices, got {factor}")
    if data.shape[axis] < 4:
        raise UserError(f"the volume has only {data.shape[axis]} slice(s) along axis {axis}: at least 4 are needed")
    thin = spacing[axis] / factor
    if thickness_mm is None:
        thickness_mm = volume.thickness or spacing[axis]
    if volume.spacing is None:
        thickness_mm = spacing[axis]
    profile = SliceProfile(factor, thickness_mm / thin, kind)
    pitch_ratios = tuple(p / thin for p in in_plane) if volume.spacing is not None else (1.0, 1.0)
    gap = spacing[axis] - thickness_mm
    description = (f"axis {axis}: {data.shape[axis]} slices x{factor} -> {data.shape[axis] * factor}"
                   + ("" if volume.spacing is None else
                      f"; spacing {spacing[axis]:g} mm -> {thin:g} mm, "
                      + ((f"{kind} profile {thickness_mm:g} mm thick"
                          + (f" ({gap:g} mm gap)" if gap > 1e-6 else f" ({-gap:g} mm overlap)" if gap < -1e-6 else ""))
                         if profile_known else "the saved network's own slice profile")
                      + f", in-plane {' x '.join(f'{p:g}' for p in in_plane)} mm"
                      + ("" if all(abs(r - 1) <= 0.02 for r in pitch_ratios) else
                         " (training slices resampled to the thin pitch)")))
    return Plan(axis, profile, pitch_ratios, description)


def restore_range(thin01, low, span, dtype, bounds=None):
    """Thin volume in normalised units -> `dtype`: scaled back, rounded and clipped to the range of an
    integer type (never wrapped) and to `bounds` (see output_bounds), not clipped to the input's range: a
    thin slice may be brighter than the slab average it came from, and clipping would break its average.
    Overwrites `thin01`."""
    from mrisr.scans.values import cast_like

    values = thin01.astype(np.float64) if np.dtype(dtype).itemsize >= 4 and np.issubdtype(dtype, np.integer) \
        else thin01
    values *= span
    values += low
    return cast_like(values, dtype, overwrite=True, bounds=bounds)


def output_bounds(volume):
    """(low, high) a thin volume of `volume` may hold: what its file's stored values allow (DICOM's
    BitsStored), and nothing below 0 where the input has no negative value (a magnitude image)."""
    from mrisr.scans.values import intensity_range

    low, high = volume.value_range or (-np.inf, np.inf)
    if intensity_range(volume.data)[0] >= 0:
        low = max(low, 0)
    return low, high


# On the real 1 mm T1 made 4x thick, 1500 steps gave +2.18 dB over the spline, 4000 steps +2.52, 8000
# +2.70 (docs/measurements.md): below 1500 the result is said to be closer to the spline.
FEW_STEPS = 1500


def blend_toward_spline(thin01, volume01, axis, factor, weight):
    """`weight` * the network's thin volume + (1 - weight) * the cubic spline of the thick one (in place;
    the network's alone when weight is 1)."""
    if weight < 1.0:
        thin01 *= weight
        thin01 += (1.0 - weight) * spline_upsample(volume01, axis, factor)
    return thin01


def thin_output(model, volume01, axis, factor, low, span, dtype, blend_weight=1.0, self_ensemble=True,
                progress=True, bounds=None, projection=None):
    """The thin volume in `dtype`, as `upscale.py self` writes it: the network applied to the normalised
    thick volume (`self_ensemble`: to its four flips), blended toward the cubic spline by `blend_weight`,
    scaled back by `low` and `span` (see `normalise`), kept inside `bounds` (see `output_bounds`; a lower
    bound of 0 is kept slab by slab with the `projection` weights, see `keep_non_negative`)."""
    thin01 = apply_network(model, volume01, axis, factor, progress=progress, self_ensemble=self_ensemble)
    thin01 = blend_toward_spline(thin01, volume01, axis, factor, blend_weight)
    if bounds is not None and bounds[0] == 0:
        keep_non_negative(thin01, volume01, axis, projection, -low / span)
    return restore_range(thin01, low, span, dtype, bounds)


def keep_non_negative(thin01, volume01, axis, projection, zero01):
    """No thin value below `zero01` (0 in real units) where the thick volume has none: each slab holding
    one has its values raised to `zero01` and their excess over it scaled so that the slab's weighted sum
    (`projection`, see SliceProfile.projection) is still its thick value; clipped alone where there is no
    projection. In place; slabs without a value below zero are left as they are."""
    thin = np.moveaxis(thin01, axis, 0)
    factor = thin.shape[0] // volume01.shape[axis]
    slabs = np.moveaxis(thin.reshape((-1, factor) + thin.shape[1:]), 1, -1)  # a view: (slabs, A, B, F)
    below = (slabs < zero01).any(axis=-1)
    if not below.any():
        return thin01
    excess = np.maximum(slabs[below] - zero01, 0.0)  # (count, F)
    if projection is not None:
        thick = np.maximum(np.moveaxis(volume01, axis, 0)[below] - zero01, 0.0)
        total = excess @ np.asarray(projection, excess.dtype)
        excess *= (np.where(total > 0, thick, 0.0) / np.where(total > 0, total, 1.0))[:, None]
    slabs[below] = excess + zero01
    return thin01


STARTS = ("pretrained", "scratch")


def choose_start(start, profile, recipe=None, say=print):
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
        say("learning from the volume alone, from random weights (--start scratch)")
        return None
    factor = profile.factor
    path = start_weights(profile, recipe)
    if path is None:
        say(f"no pretrained network ships for x{factor} with this slice profile (box profiles of touching slices "
            "at x2 to x6 do): learning from the volume alone, from random weights")
    else:
        say(f"starting from the network pretrained for x{factor} on real T1 slices ({path.name}); it learns the "
            "rest from this volume (--start scratch: from the volume alone)")
    return path


def upscale_volume(volume, plan, recipe=None, minutes=10.0, model=None, precision="auto", progress=True, seed=0,
                   say=print, self_ensemble=True, start="pretrained"):
    """Learn from the volume (unless a trained `model` is given; `start`: "pretrained" begins from the
    shipped network for the factor where one ships, "scratch" from random weights) and apply
    (`self_ensemble`: to four flips of the volume, averaged): returns (thin data in the volume's data type,
    model, TrainingReport or None, count of non-finite input values). When the
    network does not beat the cubic spline on held-out slices, the output blends toward the spline
    (said in a line, as are too few steps, and a volume much smoother across its slices than in-plane,
    which the held-out check cannot see: premise.py)."""
    from mrisr.scans.premise import detail_ratio, say_premise

    volume01, low, span = normalise(volume.data)
    report = None
    if model is None:
        start_path = choose_start(start, plan.profile, recipe, say)
        model, report = train_network(volume01, plan.axis, plan.profile, recipe, minutes, plan.pitch_ratios, seed,
                                      precision, progress, say, start_path)
        report.start = "scratch" if start_path is None else Path(start_path).name
        say_quality(report, say, few_steps=not isinstance(start, Path))  # a study's network: fine-tuning only
    say_premise(detail_ratio(volume01, plan.axis, plan.profile, plan.pitch_ratios), say)
    result = thin_output(model, volume01, plan.axis, plan.profile.factor, low, span, volume.data.dtype,
                         1.0 if report is None else report.blend_weight, self_ensemble, progress, output_bounds(volume),
                         plan.profile.projection())
    non_finite = int(volume.data.size - np.count_nonzero(np.isfinite(volume.data))) \
        if np.issubdtype(volume.data.dtype, np.floating) else 0
    if non_finite:
        from mrisr.scans.values import keep_non_finite

        result = keep_non_finite(result, volume.data, plan.profile.factor, axes=(plan.axis,))
    return result, model, report, non_finite


def say_quality(report, say=print, few_steps=True):
    """The lines a user reads after learning: the held-out check, the blend, too few steps (`few_steps`:
    said; not for fine-tuning a network that learned before)."""
    gain = report.held_out_gain
    say(f"held-out slices of this volume: the network {report.held_out_network:.2f} dB, cubic spline "
        f"{report.held_out_spline:.2f} dB ({gain:+.2f} dB)")
    if report.blend_weight <= 0.0:
        say("warning: the network does not beat the cubic spline on held-out slices of this volume: the output is "
            "the cubic spline along the slices (try more --steps or a longer --minutes)")
    elif report.blend_weight < 1.0:
        say(f"warning: the network does not beat the cubic spline on held-out slices of this volume ({gain:+.2f} dB): "
            f"the output blends the two, weighted {report.blend_weight:.2f} for the network, as measured best there "
            "(try more --steps or a longer --minutes)")
    if few_steps and report.steps < FEW_STEPS:
        say(f"warning: only {report.steps} training steps (the gain on real scans keeps growing to about "
            f"{FEW_STEPS} and beyond): expect a result closer to the cubic spline; give more --minutes")
