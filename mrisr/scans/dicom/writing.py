"""DICOM written back: each source header with the finer grid's geometry, and everything that copies it.

In-plane (`factors` (F, F, 1)) every image keeps its place: each spacing attribute is divided, the
first pixel moved so that the new pixels tile the old ones, the rest of the plane as it was (the
vendor's SliceLocation, the slices' numbers). Across slices ((1, 1, F)) every thin slice is a copy of
its thick slice's header placed on the thin grid of the scan's affine, numbered anew, its thickness
and spacing the thin step, its SliceLocation moved by as much as the slice moved. In both: the
vendors' private copies follow (vendors.py), and the pixels, their statistics, overlays, icon,
ImageType and UIDs are those of a new derived image (derived.py)."""

import copy
import dataclasses
import io
import os
import shutil
from pathlib import Path

import numpy as np
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds

from mrisr.core.files import remove_stale_temporaries, temporary_path, writing
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.scans.dicom import derived, vendors
from mrisr.scans.dicom.datasets import numbers
from mrisr.scans.dicom.frames import frame_plane
from mrisr.scans.dicom.mosaic import tile
from mrisr.scans.geometry import dicom_fields, dicom_normal, in_plane_shift, tiling_affine

SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")


def ds(values):
    """Numbers as DICOM decimal strings, as precise as 16 characters allow."""
    return [format_number_as_ds(float(v)) for v in values]


def _place_in_plane(holder, factors, orientation=None, spacing=None):
    """In-plane: each spacing attribute of `holder` divided by the factors, its first pixel moved so
    that the new pixels tile the old ones (orientation and spacing: its own unless given)."""
    where = "the source"
    orientation = orientation if orientation is not None else numbers(holder, "ImageOrientationPatient", 6, where)
    spacing = spacing if spacing is not None else numbers(holder, "PixelSpacing", 2, where)
    _divide_spacings(holder, factors)
    position = numbers(holder, "ImagePositionPatient", 3, where)
    if position is not None and orientation is not None and spacing is not None:
        _move(holder, position, position + in_plane_shift(orientation, spacing, factors))


def _divide_spacings(holder, factors):
    for keyword in SPACINGS:
        values = numbers(holder, keyword, 2, "the source")
        if values is not None:
            setattr(holder, keyword, ds(values / np.asarray(factors[:2], dtype=float)))


def _move(holder, position, moved):
    """ImagePositionPatient moved from `position` to `moved`, with the vendor's copies of it."""
    holder.ImagePositionPatient = ds(moved)
    vendors.move_slice_position(holder, position, moved)


def _place_mosaic(dataset, tile_shape, mosaic_shape, factors):
    """A mosaic made finer in-plane, its tiles now `tile_shape` pixels in a mosaic of `mosaic_shape`
    (`dataset` still the source's header): its first slice placed as _place_in_plane places an image;
    ImagePositionPatient, the first pixel of the whole mosaic as one image, is (mosaic size - tile size)
    / 2 pixels before the first slice's along each in-plane direction, in the source as in the output."""
    where = "the source"
    orientation = numbers(dataset, "ImageOrientationPatient", 6, where)
    spacing = numbers(dataset, "PixelSpacing", 2, where)
    position = numbers(dataset, "ImagePositionPatient", 3, where)
    old_mosaic = np.array([dataset.Rows, dataset.Columns], dtype=float)
    old_tile = np.array(tile_shape[:2], dtype=float) / np.asarray(factors[:2], dtype=float)
    _divide_spacings(dataset, factors)
    if orientation is None or spacing is None or position is None:
        return
    directions = np.stack([orientation[3:], orientation[:3]])  # down the rows, along a row
    first = position + ((old_mosaic - old_tile) / 2 * spacing) @ directions
    first += in_plane_shift(orientation, spacing, factors)
    finer = spacing / np.asarray(factors[:2], dtype=float)
    _move(dataset, position,
          first - ((np.asarray(mosaic_shape, dtype=float) - np.asarray(tile_shape[:2])) / 2 * finer) @ directions)


def _place_across(holder, affine, index, thin_step, classic, thick_position=None):
    """Across slices: `holder` (a copy of its thick slice's header) placed as thin slice `index` of the
    grid `affine`, numbered index + 1: its position moved by as much as the slice moves from the thick
    slice's (`thick_position`, default the holder's own; a vendor's copy keeps its own offset from it)."""
    old = numbers(holder, "ImagePositionPatient", 3, "the source")
    orientation = numbers(holder, "ImageOrientationPatient", 6, "the source")
    position = dicom_fields(affine, index)[0]
    if old is not None and thick_position is not None:
        position = old + position - thick_position
    for keyword in ("SliceThickness", "SpacingBetweenSlices"):
        if classic or keyword in holder:
            setattr(holder, keyword, ds([thin_step])[0])
    if orientation is not None and old is not None and str(holder.get("SliceLocation", "")).strip():
        holder.SliceLocation = ds([float(holder.SliceLocation) + float(np.dot(position - old,
                                                                               dicom_normal(orientation)))])[0]
    elif classic:
        holder.SliceLocation = ds([dicom_fields(affine, index)[3]])[0]
    vendors.renumber(holder, index + 1)
    _move(holder, old, position)


def _finish(dataset, pixels, whole, factors, description, series_uid, say):
    """Pixels, their statistics, overlays, icon and the derived image's attributes."""
    derived.set_pixels(dataset, pixels)
    derived.set_statistics(dataset, pixels, whole)
    derived.follow_overlays(dataset, factors, say)
    derived.regenerate_icon(dataset, np.moveaxis(pixels, 0, -1) if pixels.ndim == 3 else pixels)
    if factors[2] > 1:
        vendors.multiply_counts(dataset, factors[2])
        vendors.forget_acquired_slices(dataset)
    derived.mark_derived(dataset, description, series_uid)
    return dataset


def file_dataset(scan, data, factors, description, say):
    """The dataset of a single-file output: a classic image, a mosaic, or a multi-frame file."""
    dataset = copy.deepcopy(scan.header)  # a shallow copy would share (and change) the source's elements
    if scan.kind == "dicom-mosaic":
        if factors[2] > 1:
            raise UserError("a Siemens mosaic made finer across its slices cannot stay a mosaic: write it as .nii or "
                            ".npy")
        mosaic = tile(data)
        _place_mosaic(dataset, data.shape, mosaic.shape, factors)
        return _finish(dataset, mosaic, data, factors, description, None, say)
    if scan.kind == "dicom":
        _place_in_plane(dataset, factors)
        return _finish(dataset, data, data, factors, description, None, say)
    frames = np.moveaxis(data, -1, 0)
    if not derived.is_enhanced(dataset):  # legacy multi-frame: one geometry for all frames
        _place_in_plane(dataset, factors)
        return _finish(dataset, frames, data, factors, description, None, say)
    _place_frames(dataset, scan, frames.shape[0], factors)
    return _finish(dataset, frames, data, factors, description, None, say)


def _place_frames(dataset, scan, count, factors):
    """The functional groups of an enhanced file's output frames (in the order of axis 2 of the data)."""
    depth, source = factors[2], scan.header.PerFrameFunctionalGroupsSequence
    if depth > 1 and scan.affine is None:
        raise UserError(f"{scan.no_grid}: its frames cannot be made finer across slices")
    affine = tiling_affine(scan.affine, factors) if depth > 1 else None
    thin_step = dicom_fields(affine)[2] if depth > 1 else None
    items = []
    for k in range(count):
        index = int(scan.frame_order[k // depth])
        item = copy.deepcopy(source[index])
        orientation, _, spacing = frame_plane(scan.header, index, "the source")
        if "PlanePositionSequence" not in item and depth > 1:
            shared = scan.header.SharedFunctionalGroupsSequence[0]
            item.PlanePositionSequence = Sequence([copy.deepcopy(shared.PlanePositionSequence[0])])
        holders = [item.PlanePositionSequence[0]] if "PlanePositionSequence" in item else []
        mirror = vendors.philips_mirror(item)
        if depth > 1:
            thick = numbers(holders[0], "ImagePositionPatient", 3, "the source")
            for holder in holders:
                holder.ImagePositionPatient = ds(dicom_fields(affine, k)[0])
            if mirror is not None:
                _place_across(mirror, affine, k, thin_step, classic=False, thick_position=thick)
            if "FrameContentSequence" in item and "InStackPositionNumber" in item.FrameContentSequence[0]:
                _renumber_frame(dataset, item.FrameContentSequence[0], k + 1)
        else:
            for holder in holders:
                _place_in_plane(holder, factors, orientation, spacing)
            if mirror is not None:
                _place_in_plane(mirror, factors, orientation, spacing)
        for measures in item.get("PixelMeasuresSequence", []):
            _set_measures(measures, factors, thin_step)
        if mirror is not None:
            mirror.ImageType = derived.derived_image_type(mirror.get("ImageType"), enhanced=False)
            mirror.SOPInstanceUID = generate_uid()
        items.append(item)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(items)
    for shared in dataset.get("SharedFunctionalGroupsSequence", [])[:1]:
        for measures in shared.get("PixelMeasuresSequence", []):
            _set_measures(measures, factors, thin_step)
        if depth == 1 and "PlanePositionSequence" in shared:
            orientation, _, spacing = frame_plane(scan.header, 0, "the source")
            _place_in_plane(shared.PlanePositionSequence[0], factors, orientation, spacing)


def _set_measures(measures, factors, thin_step):
    values = numbers(measures, "PixelSpacing", 2, "the source")
    if values is not None:
        measures.PixelSpacing = ds(values / np.asarray(factors[:2], dtype=float))
    if thin_step is not None:
        measures.SliceThickness = ds([thin_step])[0]
        measures.SpacingBetweenSlices = ds([thin_step])[0]


def _renumber_frame(dataset, content, number):
    """A frame's position in its stack, and its dimension index where that indexes the stack position."""
    content.InStackPositionNumber = number
    if "DimensionIndexValues" not in content or "DimensionIndexSequence" not in dataset:
        return
    current = content.DimensionIndexValues
    values = [current] if isinstance(current, int) else list(current)  # pydicom gives one value as an int
    for index, dimension in enumerate(dataset.DimensionIndexSequence):
        if int(dimension.DimensionIndexPointer) == 0x00209057 and index < len(values):  # InStackPositionNumber
            values[index] = number
    content.DimensionIndexValues = values if len(values) > 1 else values[0]


def series_datasets(scan, data, factors, description, say, series_uid):
    """The datasets of a series output, one per slice of `data` (axis 2)."""
    depth = factors[2]
    affine = tiling_affine(scan.affine, factors)
    thin_step = dicom_fields(affine)[2] if depth > 1 else None
    for k in range(data.shape[2]):
        dataset = copy.deepcopy(scan.header[k // depth])
        if depth > 1:
            _place_across(dataset, affine, k, thin_step, classic=True)
        else:
            _place_in_plane(dataset, factors)
            if not str(dataset.get("InstanceNumber", "")).strip():  # the vendor's numbering kept where it has one
                dataset.InstanceNumber = k + 1
        yield _finish(dataset, data[:, :, k], data, factors, description, series_uid, say)


def write_dicom_file(scan, data, path, factors, description, atomic_write, say=inform):
    """One DICOM file: a single image, a mosaic, or a multi-frame file (F frames per source frame)."""
    dataset = file_dataset(scan, data, factors, description, say)
    atomic_write(path, lambda temporary: dataset.save_as(temporary, enforce_file_format=True))


def write_dicom_series(scan, data, folder, factors, description, say=inform):
    """One file per slice in a staging folder, renamed into place when all are written."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    staging = temporary_path(folder, folder=True)
    try:
        with writing(folder):
            for k, dataset in enumerate(series_datasets(scan, data, factors, description, say, generate_uid())):
                dataset.save_as(staging / f"slice_{k + 1:04d}.dcm", enforce_file_format=True)
        if folder.exists():
            folder.rmdir()  # empty (checked before)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def check_dicom_output(scan, factors, description):
    """Before any work: the output's first images built and written to memory from zeros of the output's
    shape, so that what cannot be written is refused now (one line), not after the work."""
    derived.check_writable_type(scan.data.dtype, scan.path)
    count = min(2, scan.data.shape[2]) if scan.data.ndim == 3 and scan.kind != "dicom-mosaic" else None
    small = scan if count is None else dataclasses.replace(
        scan, data=scan.data[:, :, :count],
        header=scan.header[:count] if isinstance(scan.header, list) else scan.header,
        frame_order=None if scan.frame_order is None else scan.frame_order[:count])
    shape = tuple(size * factor for size, factor in zip(small.data.shape, factors))
    zeros = np.zeros(shape, scan.data.dtype)
    try:
        if scan.kind == "dicom-series":
            datasets = list(series_datasets(small, zeros, factors, description, lambda line: None, "1.2.3"))
        else:
            datasets = [file_dataset(small, zeros, factors, description, lambda line: None)]
        for dataset in datasets:
            dataset.save_as(io.BytesIO(), enforce_file_format=True)
    except UserError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
        raise UserError(f"{scan.path}: its header cannot be written back as DICOM "
                        f"({str(error).splitlines()[0][:160]}): write the output as .nii or .npy") from None
