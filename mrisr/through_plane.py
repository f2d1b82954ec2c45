"""Through-plane super-resolution of a thick-slice volume, learned from that volume alone.

A thick-slice volume is sharp within its slices and blurred across them: each thick slice is the
scanner's slice profile (a box or Gaussian of the slice thickness) applied to the anatomy, sampled at
the slice spacing. The in-plane directions keep that detail, so (as SMORE does) the in-plane slices
are degraded along one of their axes exactly as the scanner degraded the slice axis, and a network
learns to undo it; then it runs on the planes that contain the slice axis, in both orientations,
and the two results are averaged.

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

import numpy as np

from mrisr.cli import UserError

PROFILES = ("box", "gaussian")


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
    its in-plane axes by the slice profile (every phase of the thick grid, both axes, flips), as
    network input, and the patch's sub-slices as target."""

    def __init__(self, planes, profile, thick_length=12, width=48, seed=0, pitch_ratios=(1.0, 1.0)):
        shortest = min(int(planes.shape[1] * pitch_ratios[0]), int(planes.shape[2] * pitch_ratios[1]))
        thick_length = max(3, min(thick_length, (shortest - 1) // profile.factor))
        self.profile, self.thick_length, self.width = profile, thick_length, width
        self.rng = np.random.default_rng(seed)
        # Each orientation: planes whose first axis is the one to degrade, resampled (when the thin
        # pitch differs from the in-plane pixel) so that one pixel is one thin slice.
        self.stacks = []
        for axis, ratio in zip((1, 2), pitch_ratios):
            stack = np.moveaxis(planes, axis, 1)
            if abs(ratio - 1.0) > 0.02:
                from scipy.ndimage import zoom

                stack = zoom(stack, (1, ratio, 1), order=3).astype(np.float32)
            self.stacks.append(stack)
        offsets, _ = profile.taps()
        self.reach = int(max(abs(offsets.min()), abs(offsets.max())) + profile.factor)
        fine_length = thick_length * profile.factor
        self.stacks = [s for s in self.stacks if s.shape[1] >= fine_length + 1 and s.shape[2] >= 8]
        if not self.stacks:
            raise UserError(f"the slices ({planes.shape[1]}x{planes.shape[2]}) are too small to learn x"
                            f"{profile.factor} from (at least {fine_length + 1} pixels are needed)")
        # Slices with some content: at least 5% of the pixels above a tenth of the range.
        self.useful = [np.flatnonzero((s > 0.1).mean(axis=(1, 2)) > 0.05) for s in self.stacks]
        self.useful = [u if u.size else np.arange(len(s)) for u, s in zip(self.useful, self.stacks)]

    def batch(self, count):
        factor, length = self.profile.factor, self.thick_length
        inputs = np.empty((count, length, self.width, 1 + factor), np.float32)
        targets = np.empty((count, length, self.width, factor), np.float32)
        thick_planes, fine_planes = [], []
        for _ in range(count):
            which = self.rng.integers(len(self.stacks))
            stack = self.stacks[which]
            plane = stack[self.rng.choice(self.useful[which])]
            width = min(self.width, plane.shape[1])
            for attempt in range(8):  # prefer patches with content
                start = int(self.rng.integers(0, plane.shape[0] - length * factor + 1))
                column = int(self.rng.integers(0, plane.shape[1] - width + 1))
                fine = plane[:, column:column + width]
                if fine[start:start + length * factor].mean() > 0.05 or attempt == 7:
                    break
            if self.rng.random() < 0.5:
                fine = fine[:, ::-1]
            thick = degrade(fine, 0, self.profile, start, length)
            target = fine[start:start + length * factor]
            if width < self.width:  # narrow slices: pad the patch by reflection
                thick = np.pad(thick, ((0, 0), (0, self.width - width)), mode="reflect")
                target = np.pad(target, ((0, 0), (0, self.width - width)), mode="reflect")
            if self.rng.random() < 0.5:  # flip along the slice axis: the profile is symmetric
                thick, target = thick[::-1], target[::-1]
            thick_planes.append(thick)
            fine_planes.append(target)
        inputs[:] = network_input(np.stack(thick_planes), factor)
        targets[:] = np.stack(fine_planes).reshape(count, length, factor, self.width).transpose(0, 1, 3, 2)
        return inputs, targets


@dataclasses.dataclass
class TrainingReport:
    seconds: float
    steps: int
    final_loss: float


def train_network(volume01, axis, profile, minutes=5.0, pitch_ratios=(1.0, 1.0), batch_size=16, seed=0,
                  precision="mixed_bfloat16", progress=True, learning_rate=1e-3, max_steps=None):
    """Train a through-plane network on the volume's own in-plane slices for `minutes` (cosine
    learning rate over that time, L1 loss after the consistency projection), or until `max_steps`
    steps when given (rounded up to whole rounds of 16 batches). Returns (model, report)."""
    import keras
    from tqdm import tqdm

    from mrisr.models import through_plane_network
    from mrisr.runs import TimeLimit, TrainingDiverged, check_finite_epoch

    keras.utils.set_random_seed(seed)
    planes = np.moveaxis(volume01, axis, 0)
    sampler = PatchSampler(planes, profile, seed=seed, pitch_ratios=pitch_ratios)
    model = through_plane_network(profile.factor, profile.projection(), dtype=precision)
    limit = TimeLimit(minutes, cosine_from=learning_rate)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mean_absolute_error")
    started, steps, loss = time.monotonic(), 0, float("nan")
    bar = tqdm(total=round(60 * minutes), desc="learning from the volume", unit="s", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s{postfix}")
    round_size = batch_size * 16
    while not limit.reached and (max_steps is None or steps < max_steps):
        inputs, targets = sampler.batch(round_size)
        history = model.fit(inputs, targets, batch_size=batch_size, epochs=1, verbose=0, callbacks=[limit])
        loss = float(history.history["loss"][-1])
        steps += round_size // batch_size
        try:
            check_finite_epoch({"loss": loss}, steps, [model])
        except TrainingDiverged as error:
            bar.close()
            raise TrainingDiverged(str(error).replace("after epoch", "after step")) from None
        bar.n = min(bar.total, time.monotonic() - started)
        bar.set_postfix_str(f"L1 {loss:.4f}")
        bar.refresh()
    bar.close()
    return model, TrainingReport(time.monotonic() - started, steps, loss)


def apply_network(model, volume01, axis, factor, batch_planes=8, progress=True):
    """The thin volume (float32, normalised units): the network on every plane that contains the slice
    axis, in both orientations, averaged. Memory: the output plus `batch_planes` planes at a time."""
    from tqdm import tqdm

    from mrisr.upscaling import require_finite

    thick = np.moveaxis(np.asarray(volume01, np.float32), axis, 0)  # (n, A, B)
    count, rows, columns = thick.shape
    output = np.zeros((count * factor, rows, columns), np.float32)
    total = rows + columns
    run = model.predict
    with tqdm(total=total, desc="applying", unit="plane", disable=not progress) as bar:
        for orientation, size in ((1, rows), (2, columns)):
            for first in range(0, size, batch_planes):
                last = min(size, first + batch_planes)
                if orientation == 1:
                    planes = thick[:, first:last, :].transpose(1, 0, 2)  # (planes, n, B)
                else:
                    planes = thick[:, :, first:last].transpose(2, 0, 1)  # (planes, n, A)
                predicted = np.asarray(run(network_input(np.ascontiguousarray(planes), factor),
                                           batch_size=batch_planes, verbose=0))
                require_finite(predicted, model.name)
                fine = sub_slices_to_fine(predicted)  # (planes, n F, width)
                if orientation == 1:
                    output[:, first:last, :] += fine.transpose(1, 0, 2)
                else:
                    output[:, :, first:last] += fine.transpose(1, 2, 0)
                bar.update(last - first)
    output *= 0.5
    return np.moveaxis(output, 0, axis)


def thin_affine(affine, axis, factor):
    """The affine of the thin volume: F thin voxels tile each thick voxel along `axis`."""
    from mrisr.medical_io import tiling_affine

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


def make_plan(volume, axis=None, factor=None, thickness_mm=None, kind="box"):
    """Choose the slice axis, the factor and the slice profile of a Volume (UserError when they cannot
    be chosen): axis = the largest voxel size; factor = that size over the in-plane one, rounded;
    thickness = the given one, else the file's slice thickness, else the slice spacing (no gap)."""
    data = volume.data
    if data.ndim != 3:
        raise UserError(f"upscaling across slices needs a 3-D volume, not a {data.ndim}-D array")
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
    if axis is None:
        if max(spacing) < 1.5 * min(spacing):
            raise UserError(f"the volume is nearly isotropic (voxel sizes {', '.join(f'{v:g}' for v in spacing)} mm): "
                            "give --axis and --scale to make its slices finer anyway")
        axis = int(np.argmax(spacing))
    if axis not in (0, 1, 2):
        raise UserError(f"--axis must be 0, 1 or 2, not {axis}")
    in_plane = [spacing[a] for a in range(3) if a != axis]
    ratio = spacing[axis] / float(np.mean(in_plane))
    if factor is None:
        factor = int(round(ratio))
        if factor < 2:
            raise UserError(f"the slice spacing is only {ratio:.2f} times the in-plane pixel size: give --scale "
                            "(2 or more) to make the slices finer anyway")
    if not 2 <= factor <= 16:
        raise UserError(f"--scale must be from 2 to 16 for upscaling across slices, got {factor}")
    if data.shape[axis] < 4:
        raise UserError(f"the volume has {data.shape[axis]} slices along axis {axis}: at least 4 are needed")
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
                      f"; spacing {spacing[axis]:g} mm -> {thin:g} mm, {kind} profile {thickness_mm:g} mm thick"
                      + (f" ({gap:g} mm gap)" if gap > 1e-6 else f" ({-gap:g} mm overlap)" if gap < -1e-6 else "")
                      + f", in-plane {' x '.join(f'{p:g}' for p in in_plane)} mm"
                      + ("" if all(abs(r - 1) <= 0.02 for r in pitch_ratios) else
                         " (training slices resampled to the thin pitch)")))
    return Plan(axis, profile, pitch_ratios, description)


def restore_range(thin01, low, span, source):
    """Thin volume in normalised units -> the source's data type, clipped to the source's finite range
    (in place on `thin01`, to keep the memory of a large volume to the output and one copy)."""
    from mrisr.upscaling import intensity_range

    source = np.asarray(source)
    minimum, maximum, non_finite = intensity_range(source)
    values = thin01
    values *= span
    values += low
    np.clip(values, minimum, maximum, out=values)
    if np.issubdtype(source.dtype, np.integer):
        np.rint(values, out=values)
    return values.astype(source.dtype), non_finite


def upscale_volume(volume, plan, minutes=5.0, model=None, progress=True, seed=0):
    """Learn from the volume (unless a trained `model` is given) and apply: returns (thin data in the
    volume's data type, model, TrainingReport or None, count of non-finite input values)."""
    volume01, low, span = normalise(volume.data)
    report = None
    if model is None:
        model, report = train_network(volume01, plan.axis, plan.profile, minutes, plan.pitch_ratios,
                                      seed=seed, progress=progress)
    thin01 = apply_network(model, volume01, plan.axis, plan.profile.factor, progress=progress)
    del volume01
    result, non_finite = restore_range(thin01, low, span, volume.data)
    if non_finite:
        from mrisr.upscaling import keep_non_finite

        result = keep_non_finite(result, volume.data, plan.profile.factor, axes=(plan.axis,))
    return result, model, report, non_finite
