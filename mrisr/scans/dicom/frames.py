"""Multi-frame DICOM files: enhanced ones (each frame placed by its functional groups) and legacy ones
(frames without places of their own).

The frames of an enhanced file that form one evenly spaced stack are ordered along its normal and
get an affine; any others (several stacks, volumes or echoes at the same positions, a localiser of
three planes) keep their stored order and no affine: in-plane upscaling places each frame by its own
geometry, and what needs one grid (NIfTI, upscaling across slices) is refused with the reason."""

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.dicom.datasets import numbers, pixels_of
from mrisr.scans.dicom.derived import value_range
from mrisr.scans.geometry import dicom_affine, dicom_normal, stack_order
from mrisr.scans.kinds import Scan


def frame_item(dataset, index, sequence, keyword):
    """The functional group item (per-frame, else shared) of frame `index` that holds `keyword` in
    its `sequence`, None when neither does."""
    groups = [dataset.PerFrameFunctionalGroupsSequence[index]] if "PerFrameFunctionalGroupsSequence" in dataset \
        else []
    groups += list(dataset.get("SharedFunctionalGroupsSequence", []))[:1]
    for group in groups:
        if sequence in group and len(group[sequence].value) and keyword in group[sequence].value[0]:
            return group[sequence].value[0]
    return None


def frame_numbers(dataset, index, sequence, keyword, count, where):
    item = frame_item(dataset, index, sequence, keyword)
    return None if item is None else numbers(item, keyword, count, where, positive=keyword == "PixelSpacing")


def frame_plane(dataset, index, where):
    """(orientation, position, pixel spacing) of frame `index`, each None where the file lacks it."""
    return (frame_numbers(dataset, index, "PlaneOrientationSequence", "ImageOrientationPatient", 6, where),
            frame_numbers(dataset, index, "PlanePositionSequence", "ImagePositionPatient", 3, where),
            frame_numbers(dataset, index, "PixelMeasuresSequence", "PixelSpacing", 2, where))


def frame_scaling(dataset, index, where):
    """(RescaleSlope, RescaleIntercept) of frame `index`, None where the file gives none."""
    item = frame_item(dataset, index, "PixelValueTransformationSequence", "RescaleSlope")
    if item is None:
        return None
    slope = numbers(item, "RescaleSlope", 1, where)
    intercept = numbers(item, "RescaleIntercept", 1, where)
    return None if slope is None else (float(slope[0]), 0.0 if intercept is None else float(intercept[0]))


def read_enhanced(dataset, path):
    """An enhanced (multi-frame) image: one stack ordered along its normal, or frames in stored order."""
    where = str(path)
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    pixels = pixels_of(dataset, path)
    pixels = pixels[None] if pixels.ndim == 2 else pixels  # (frames, rows, columns)
    planes = [frame_plane(dataset, k, where) for k in range(count)]
    thicknesses = [frame_numbers(dataset, k, "PixelMeasuresSequence", "SliceThickness", 1, where)
                   for k in range(count)]
    known = {round(float(t[0]), 4) for t in thicknesses if t is not None and t[0] > 0}
    if len(known) > 1:
        raise UserError(f"{path}: its frames disagree on SliceThickness ({', '.join(map(str, sorted(known)))} mm): one "
                        "stack of equal slices is needed")
    thickness = known.pop() if known else None
    scalings = [frame_scaling(dataset, k, where) for k in range(count)]
    order, affine, reason = np.arange(count), None, _stack_problem(planes, where)
    if reason is None:
        orientation, spacing = planes[0][0], planes[0][2]
        if count > 1:
            order, step = stack_order([p[1] for p in planes], dicom_normal(orientation), where, "frames")
        else:
            step = dicom_normal(orientation) * (thickness or 1.0)
        affine = dicom_affine(orientation, planes[order[0]][1], spacing, step)
    scaling = scalings[0] if len(set(scalings)) == 1 else np.array([scalings[k] or (1.0, 0.0) for k in order])
    return Scan("dicom-multiframe", np.moveaxis(pixels[order], 0, -1), path, affine, thickness, dataset, order,
                value_range=value_range(dataset), scaling=scaling, no_grid=reason)


def _stack_problem(planes, where):
    """Why the frames do not make one grid (None when they may: stack_order then checks the positions)."""
    for name, index in (("ImageOrientationPatient", 0), ("ImagePositionPatient", 1), ("PixelSpacing", 2)):
        missing = [k + 1 for k, plane in enumerate(planes) if plane[index] is None]
        if missing:
            return f"{where}: frame {missing[0]} has no {name}, so the frames have no places in space"
    for k, (orientation, _, spacing) in enumerate(planes[1:], start=2):
        if not np.allclose(orientation, planes[0][0], atol=1e-4):
            return f"{where}: frame {k} is oriented otherwise than frame 1 (several stacks in one file)"
        if not np.allclose(spacing, planes[0][2], atol=1e-5):
            return f"{where}: frame {k} has another PixelSpacing than frame 1"
    if len(planes) > 1:
        try:
            stack_order([p[1] for p in planes], dicom_normal(planes[0][0]), where, "frames")
        except UserError as error:
            return str(error)
    return None


def read_legacy_multiframe(dataset, pixels, path):
    """Frames without per-frame geometry (a legacy multi-frame file): in stored order, no grid."""
    return Scan("dicom-multiframe", np.moveaxis(pixels, 0, -1), path, header=dataset,
                frame_order=np.arange(len(pixels)), value_range=value_range(dataset),
                no_grid=f"{path} is a multi-frame file without per-frame positions, so its frames have no places "
                "along a slice axis")
