"""DICOM: a single image, an enhanced (multi-frame) file, or a folder holding one series of slices.

Reading checks what would otherwise be mixed silently: every slice of a series against the first
(series, orientation, pixel spacing, size, pixel type, image type, rescaling), positions evenly spaced
along the slice normal (a sheared stack, as a gantry tilt gives, is refused), every file readable.
Writing keeps each source header, with the geometry of the finer grid (ImagePositionPatient,
PixelSpacing, SliceThickness, SpacingBetweenSlices, SliceLocation, the functional groups of an
enhanced file), new UIDs, DERIVED image type, uncompressed pixels.
"""

import copy
import os
import shutil
from pathlib import Path

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.geometry import decimal_string, dicom_affine, dicom_fields, dicom_normal

DICOM_SUFFIXES = (".dcm", ".dicom")

# What every slice of one series must share with the first (besides orientation and spacing).
SHARED = ("SeriesInstanceUID", "Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
          "SamplesPerPixel", "PhotometricInterpretation", "ImageType", "RescaleSlope", "RescaleIntercept")


def looks_like_dicom(path):
    """Whether a file carries the DICOM preamble (the bytes DICM at offset 128)."""
    try:
        with open(path, "rb") as file:
            file.seek(128)
            return file.read(4) == b"DICM"
    except OSError:
        return False


def sop_class(dataset):
    """A dataset's SOP class UID (from its file meta, else its own element), None when it has none."""
    return getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", None) or \
        getattr(dataset, "SOPClassUID", None)


def is_image(dataset):
    """Whether a dataset claims to be an image (its SOP class, or rows of pixels)."""
    return "Rows" in dataset or "Image Storage" in str(getattr(sop_class(dataset), "name", ""))


def dcmread(path):
    """pydicom.dcmread without pydicom's own warnings (a broken file gets one line of ours instead)."""
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def read_dataset(path):
    """One DICOM file, or UserError naming it."""
    try:
        return dcmread(path)
    except Exception as error:  # pydicom raises many types for a broken file
        raise UserError(f"cannot read {path} as DICOM: {first_line(error)}") from None


def pixels_of(dataset, path):
    """A dataset's pixel array, or UserError naming the file (truncated or undecodable pixel data)."""
    try:
        return dataset.pixel_array
    except Exception as error:  # pydicom and its decoders raise many types
        raise UserError(f"{path}: its pixel data cannot be read ({first_line(error)}): a truncated or corrupt "
                        "file") from None


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def numbers(value):
    return np.array([float(v) for v in value], dtype=float)


def read_dicom_file(path):
    """(data, affine or None, thickness or None, header, frame order or None, kind) of one DICOM file:
    a single image (rows, columns) or an enhanced multi-frame image (rows, columns, frames in order
    along the normal)."""
    dataset = read_dataset(path)
    if "PixelData" not in dataset:
        raise UserError(f"{path} is a DICOM file without pixel data")
    if int(getattr(dataset, "SamplesPerPixel", 1) or 1) != 1:
        raise UserError(f"{path} is a colour DICOM image; only greyscale MRI is supported")
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1 and "PerFrameFunctionalGroupsSequence" in dataset:
        return _read_multiframe(dataset, path, frames)
    pixels = pixels_of(dataset, path)
    if pixels.ndim == 3:  # frames without per-frame geometry: a stack of images in file order
        return np.moveaxis(pixels, 0, -1), None, None, dataset, None, "dicom"
    affine = None
    if "ImageOrientationPatient" in dataset and "ImagePositionPatient" in dataset and "PixelSpacing" in dataset:
        orientation = numbers(dataset.ImageOrientationPatient)
        depth = float(getattr(dataset, "SpacingBetweenSlices", 0) or getattr(dataset, "SliceThickness", 0) or 1.0)
        affine = dicom_affine(orientation, numbers(dataset.ImagePositionPatient), numbers(dataset.PixelSpacing),
                              dicom_normal(orientation) * depth)
    thickness = float(dataset.SliceThickness) if "SliceThickness" in dataset else None
    return pixels, affine, thickness, dataset, None, "dicom"


def _frame_item(dataset, index, sequence, attribute):
    """An attribute of a multi-frame file's frame: from its per-frame item, else the shared one."""
    for group in (dataset.PerFrameFunctionalGroupsSequence[index],
                  getattr(dataset, "SharedFunctionalGroupsSequence", [None])[0]):
        if group is not None and sequence in group and attribute in getattr(group, sequence)[0]:
            return getattr(getattr(group, sequence)[0], attribute)
    return None


def _read_multiframe(dataset, path, frames):
    """An enhanced (multi-frame) image: frames ordered by their position along the normal."""
    orientations = [_frame_item(dataset, k, "PlaneOrientationSequence", "ImageOrientationPatient")
                    for k in range(frames)]
    positions = [_frame_item(dataset, k, "PlanePositionSequence", "ImagePositionPatient") for k in range(frames)]
    spacings = [_frame_item(dataset, k, "PixelMeasuresSequence", "PixelSpacing") for k in range(frames)]
    for name, values in (("ImageOrientationPatient", orientations), ("ImagePositionPatient", positions),
                         ("PixelSpacing", spacings)):
        missing = [k + 1 for k, value in enumerate(values) if value is None]
        if missing:
            raise UserError(f"{path}: frame {missing[0]} has no {name}: the frames cannot be placed in space")
    orientation, spacing = numbers(orientations[0]), numbers(spacings[0])
    for k in range(1, frames):
        if not np.allclose(numbers(orientations[k]), orientation, atol=1e-4):
            raise UserError(f"{path}: frame {k + 1} is oriented otherwise than frame 1 (several stacks in one file?)")
        if not np.allclose(numbers(spacings[k]), spacing, atol=1e-4):
            raise UserError(f"{path}: frame {k + 1} has another PixelSpacing than frame 1")
    order, step = stack_order([numbers(p) for p in positions], dicom_normal(orientation), str(path), "frames")
    pixels = pixels_of(dataset, path)  # (frames, rows, columns)
    data = np.moveaxis(pixels[order], 0, -1)
    affine = dicom_affine(orientation, numbers(positions[order[0]]), spacing, step)
    thickness = _frame_item(dataset, 0, "PixelMeasuresSequence", "SliceThickness")
    return data, affine, (float(thickness) if thickness is not None else None), dataset, order, "dicom-multiframe"


def stack_order(positions, normal, where, what):
    """(order along the normal, step vector) of a stack of slice positions; UserError unless they are
    evenly spaced and run along the normal (a shear, as a gantry tilt gives, is refused)."""
    positions = np.asarray(positions, dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    differences = np.diff(positions[order], axis=0)
    steps = differences @ normal
    if steps.min() <= 1e-3:
        raise UserError(f"{where}: two {what} lie at the same position along the normal (a repeated slice, or "
                        "several series or echoes in one folder?)")
    if steps.max() - steps.min() > 0.01 * steps.mean() + 1e-3:
        raise UserError(f"{where}: the {what} are not evenly spaced ({steps.min():.3f} to {steps.max():.3f} mm "
                        "apart)")
    sideways = np.linalg.norm(differences - np.outer(steps, normal), axis=1)
    if sideways.max() > 0.01 + 0.001 * steps.mean():
        angle = np.degrees(np.arctan2(sideways.max(), steps.mean()))
        raise UserError(f"{where}: the {what}' positions do not run along their normal (each steps "
                        f"{sideways.max():.2f} mm sideways: a sheared stack, as a gantry tilt of about {angle:.1f} "
                        "degrees gives); resample it to a regular grid first (e.g. dcm2niix, which corrects tilt)")
    return order, differences.mean(axis=0)


def read_dicom_series(folder, say=print):
    """(data (rows, columns, slices), affine, thickness, datasets in slice order) of a folder holding one
    series; every slice checked against the first, every file readable or named."""
    from pydicom.errors import InvalidDicomError

    datasets, skipped = [], []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            dataset = dcmread(path)
        except InvalidDicomError:
            if looks_like_dicom(path):
                raise UserError(f"cannot read {path} as DICOM: a corrupt or truncated file") from None
            skipped.append(path.name)
            continue
        except Exception as error:  # pydicom raises many types for a broken file
            raise UserError(f"cannot read {path} as DICOM: {first_line(error)}") from None
        if "PixelData" not in dataset:
            if is_image(dataset):
                raise UserError(f"{path}: a DICOM image without its pixel data (a truncated or corrupt file)")
            if sop_class(dataset) is None:
                raise UserError(f"cannot read {path} as DICOM: no SOP class, no pixels (a corrupt file)")
            skipped.append(path.name)  # a DICOMDIR, a report: not an image
            continue
        datasets.append((path, dataset))
    if skipped:
        say(f"note: {len(skipped)} file(s) in {folder} are not DICOM images and were left out "
            f"({', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})")
    if len(datasets) < 2:
        raise UserError(f"{folder} holds {len(datasets)} DICOM image(s): a series of at least 2 slices is needed")
    first_path, first = datasets[0]
    for path, dataset in datasets:
        if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
            raise UserError(f"{path} is a multi-frame file: give it alone, not in a folder of slices")
        for needed in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if needed not in dataset:
                raise UserError(f"{path} has no {needed}: the slices cannot be placed in space")
    orientation, spacing = numbers(first.ImageOrientationPatient), numbers(first.PixelSpacing)
    for path, dataset in datasets[1:]:
        if not np.allclose(numbers(dataset.ImageOrientationPatient), orientation, atol=1e-4):
            raise UserError(f"{path} is oriented otherwise than {first_path.name} (ImageOrientationPatient "
                            f"{list(dataset.ImageOrientationPatient)}): one series of parallel slices is needed")
        if not np.allclose(numbers(dataset.PixelSpacing), spacing, atol=1e-5):
            raise UserError(f"{path} has PixelSpacing {list(dataset.PixelSpacing)}, {first_path.name} "
                            f"{list(first.PixelSpacing)}: one series of equal slices is needed")
        for key in SHARED:
            if str(getattr(dataset, key, "")) != str(getattr(first, key, "")):
                raise UserError(f"{path} differs from {first_path.name} in {key} ({getattr(dataset, key, None)!r} "
                                f"against {getattr(first, key, None)!r}): one series of equal slices is needed")
    if int(getattr(first, "SamplesPerPixel", 1) or 1) != 1:
        raise UserError(f"{folder}: colour DICOM is not supported; only greyscale MRI")
    order, step = stack_order([numbers(d.ImagePositionPatient) for _, d in datasets], dicom_normal(orientation),
                              str(folder), "slices")
    datasets = [datasets[i] for i in order]
    data = np.stack([pixels_of(dataset, path) for path, dataset in datasets], axis=-1)
    affine = dicom_affine(orientation, numbers(datasets[0][1].ImagePositionPatient), spacing, step)
    thickness = float(first.SliceThickness) if "SliceThickness" in first else None
    return data, affine, thickness, [dataset for _, dataset in datasets]


# --- writing -----------------------------------------------------------------


def mark_derived(dataset, description, series_uid=None):
    """Make a DICOM dataset a new, derived image: uncompressed explicit little endian, a new SOP
    instance UID, a new (or the given) series UID, `description` added to the series description,
    ImageType DERIVED/SECONDARY. (Its PixelData must already be the new, uncompressed pixels.)"""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    previous = str(getattr(dataset, "SeriesDescription", "")).strip()
    dataset.SeriesDescription = (previous + " " + description).strip()[:64]
    dataset.ImageType = ["DERIVED", "SECONDARY"]


def set_pixels(dataset, frames):
    """New pixels for a DICOM dataset, (rows, columns) or (frames, rows, columns), with pydicom's
    bookkeeping (Rows, Columns, Number of Frames, bits, an uncompressed transfer syntax)."""
    frames = np.ascontiguousarray(frames)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2"))
    bits = min(int(getattr(dataset, "BitsStored", 8 * frames.dtype.itemsize)), 8 * frames.dtype.itemsize)
    dataset.set_pixel_data(frames, photometric, bits, generate_instance_uid=False)


def _set_geometry(item, affine, slice_index, scaled_in_plane, thin_step):
    """The plane position (and, where they changed, the pixel spacing and slice thickness) of one slice
    or frame: `item` is a dataset (classic) whose attributes are set where present or needed."""
    position, pixel_spacing, step, location = dicom_fields(affine, slice_index)
    item.ImagePositionPatient = [decimal_string(v) for v in position]
    if scaled_in_plane:
        item.PixelSpacing = [decimal_string(v) for v in pixel_spacing]
    if thin_step is not None:
        item.SliceThickness = decimal_string(thin_step)
        item.SpacingBetweenSlices = decimal_string(thin_step)
    return location


def write_dicom_file(scan, data, path, factors, description, atomic_write):
    """One DICOM file: a single image, or an enhanced file with F frames per source frame."""
    from pydicom.sequence import Sequence

    from mrisr.scans.geometry import tiling_affine

    dataset = copy.deepcopy(scan.header)  # a shallow copy would share (and change) the source's elements
    scaled_in_plane = factors[0] > 1 or factors[1] > 1
    if scan.kind == "dicom":
        if "PixelSpacing" in dataset and scaled_in_plane:
            dataset.PixelSpacing = [decimal_string(float(v) / f) for v, f in zip(dataset.PixelSpacing, factors)]
        if scan.affine is not None and "ImagePositionPatient" in dataset:
            position, _, _, location = dicom_fields(tiling_affine(scan.affine, factors), 0)
            dataset.ImagePositionPatient = [decimal_string(v) for v in position]
            if "SliceLocation" in dataset:
                dataset.SliceLocation = decimal_string(location)
        set_pixels(dataset, data if data.ndim == 2 else np.moveaxis(data, -1, 0))
    else:
        depth = factors[2] if len(factors) > 2 else 1
        affine = tiling_affine(scan.affine, factors)
        thin_step = dicom_fields(affine)[2] if depth > 1 else None
        source = scan.header.PerFrameFunctionalGroupsSequence
        items = []
        for k in range(data.shape[2]):
            item = copy.deepcopy(source[int(scan.frame_order[k // depth])])
            if "PlanePositionSequence" not in item:
                item.PlanePositionSequence = Sequence([copy.deepcopy(
                    scan.header.SharedFunctionalGroupsSequence[0].PlanePositionSequence[0])])
            _set_geometry(item.PlanePositionSequence[0], affine, k, False, None)
            if "PixelMeasuresSequence" in item:
                _set_measures(item.PixelMeasuresSequence[0], factors, thin_step)
            if "FrameContentSequence" in item and "InStackPositionNumber" in item.FrameContentSequence[0]:
                _renumber_frame(dataset, item.FrameContentSequence[0], k + 1)
            items.append(item)
        dataset.PerFrameFunctionalGroupsSequence = Sequence(items)
        shared = getattr(dataset, "SharedFunctionalGroupsSequence", None)
        if shared and "PixelMeasuresSequence" in shared[0]:
            _set_measures(shared[0].PixelMeasuresSequence[0], factors, thin_step)
        if "PixelSpacing" in dataset and scaled_in_plane:
            dataset.PixelSpacing = [decimal_string(float(v) / f) for v, f in zip(dataset.PixelSpacing, factors)]
        set_pixels(dataset, np.moveaxis(data, -1, 0))
    mark_derived(dataset, description)
    atomic_write(path, lambda temporary: dataset.save_as(temporary, enforce_file_format=True))


def _set_measures(measures, factors, thin_step):
    if "PixelSpacing" in measures and (factors[0] > 1 or factors[1] > 1):
        measures.PixelSpacing = [decimal_string(float(v) / f) for v, f in zip(measures.PixelSpacing, factors)]
    if thin_step is not None:
        measures.SliceThickness = decimal_string(thin_step)
        measures.SpacingBetweenSlices = decimal_string(thin_step)


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


def write_dicom_series(scan, data, folder, factors, description):
    """One file per slice in a staging folder, renamed into place when all are written."""
    from pydicom.uid import generate_uid

    from mrisr.core.files import remove_stale_temporaries, temporary_path
    from mrisr.scans.geometry import tiling_affine

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    staging = temporary_path(folder, folder=True)
    depth = factors[2]
    affine = tiling_affine(scan.affine, factors)
    thin_step = dicom_fields(affine)[2] if depth > 1 else None
    scaled_in_plane = factors[0] > 1 or factors[1] > 1
    series_uid = generate_uid()
    try:
        for k in range(data.shape[2]):
            dataset = copy.deepcopy(scan.header[k // depth])
            location = _set_geometry(dataset, affine, k, scaled_in_plane, thin_step)
            if "SliceLocation" in dataset or thin_step is not None:
                dataset.SliceLocation = decimal_string(location)
            dataset.InstanceNumber = k + 1
            set_pixels(dataset, data[:, :, k])
            mark_derived(dataset, description, series_uid)
            dataset.save_as(staging / f"slice_{k + 1:04d}.dcm", enforce_file_format=True)
        if folder.exists():
            folder.rmdir()  # empty (checked before)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
