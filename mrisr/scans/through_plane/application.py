"""A learned network applied to a thick volume: every plane that contains the slice axis, in both
orientations (and four flips), blended toward the spline where the held-out check says so, kept inside
what the output can hold, scaled back; `upscale_volume`, the whole of `upscale.py self` on one volume."""

from pathlib import Path

import numpy as np

from mrisr.core.messages import inform
from mrisr.scans.through_plane.learning import choose_start, say_quality, train_network
from mrisr.scans.through_plane.premise import detail_ratio, say_premise
from mrisr.scans.through_plane.profile import spline_upsample
from mrisr.scans.through_plane.sampler import network_input, normalise, sub_slices_to_fine
from mrisr.scans.upscaling import require_finite
from mrisr.scans.values import cast_like, intensity_range, keep_non_finite


def apply_network(model, volume01, axis, factor, batch_planes=8, progress=True, self_ensemble=False):
    """The thin volume (float32, normalised units): the network on every plane that contains the slice
    axis, in both orientations, averaged. `self_ensemble`: also on the volume reversed along the slice
    axis, across it, and both (the flips training saw), each turned back, the four averaged (four times
    the time). Memory: the output plus `batch_planes` planes at a time."""
    from tqdm import tqdm

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


def restore_range(thin01, low, span, dtype, bounds=None):
    """Thin volume in normalised units -> `dtype`: scaled back, rounded and clipped to the range of an
    integer type (never wrapped) and to `bounds` (see output_bounds), not clipped to the input's range: a
    thin slice may be brighter than the slab average it came from, and clipping would break its average.
    Overwrites `thin01`."""
    values = thin01.astype(np.float64) if np.dtype(dtype).itemsize >= 4 and np.issubdtype(dtype, np.integer) \
        else thin01
    values *= span
    values += low
    return cast_like(values, dtype, overwrite=True, bounds=bounds)


def output_bounds(volume):
    """(low, high) a thin volume of `volume` may hold: what its file's stored values allow (DICOM's
    BitsStored), and nothing below 0 where the input has no negative value (a magnitude image)."""
    low, high = volume.value_range or (-np.inf, np.inf)
    if intensity_range(volume.data)[0] >= 0:
        low = max(low, 0)
    return low, high


# On the real 1 mm T1 made 4x thick, 1500 steps gave +2.18 dB over the spline, 4000 steps +2.52, 8000
# +2.70 (docs/measurements.md): below 1500 the result is said to be closer to the spline.


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


def upscale_volume(volume, plan, recipe=None, minutes=10.0, model=None, precision="auto", progress=True, seed=0,
                   say=inform, self_ensemble=True, start="pretrained"):
    """Learn from the volume (unless a trained `model` is given; `start`: "pretrained" begins from the
    shipped network for the factor where one ships, "scratch" from random weights) and apply
    (`self_ensemble`: to four flips of the volume, averaged): returns (thin data in the volume's data type,
    model, TrainingReport or None, count of non-finite input values). When the
    network does not beat the cubic spline on held-out slices, the output blends toward the spline
    (said in a line, as are too few steps, and a volume much smoother across its slices than in-plane,
    which the held-out check cannot see: premise.py)."""
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
        result = keep_non_finite(result, volume.data, plan.profile.factor, axes=(plan.axis,))
    return result, model, report, non_finite
