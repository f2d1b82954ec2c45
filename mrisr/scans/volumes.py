"""Volumes with their geometry, for upscaling across slices: NIfTI, DICOM series and 3-D `.npy`.

`read_volume` returns a `Volume`: the voxels as stored (their own data type), the voxel sizes, the
affine (voxel index to patient millimetres), the slice thickness when the file says it, and what is
needed to write a volume of the same kind with `write_volume`.
"""

import copy
import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.medical_io import NIFTI_SUFFIXES, kind_of, looks_like_dicom, mark_derived, set_pixels


@dataclasses.dataclass
class Volume:
    kind: str  # "nifti", "dicom-series", "dicom-multiframe" or "npy"
    data: np.ndarray  # 3-D, as stored
    spacing: Optional[tuple]  # voxel size (mm) per axis; None for .npy
    affine: Optional[np.ndarray]
    path: Path
    thickness: Optional[float] = None  # mm, when the file gives it (DICOM SliceThickness)
    slice_axis: Optional[int] = None  # the axis the file's slices run along (DICOM series: 2)
    header: Any = None  # the NIfTI image, the DICOM datasets in slice order, or the multi-frame dataset
    frame_order: Any = None  # multi-frame DICOM: the frames' order along the slice normal


def read_volume(path, volume_index=None):
    """Read a 3-D volume; raise UserError with one line for anything that is not one."""
    path = Path(path)
    if path.is_dir():
        return _read_dicom_series(path)
    if not path.is_file():
        raise UserError(f"input {path} does not exist")
    kind = kind_of(path)
    if kind == "nifti":
        return _read_nifti(path, volume_index)
    if kind == "npy":
        from mrisr.scans.medical_io import read_image

        data = read_image(path, axis=0).pixels  # the checks of upscale.py: numeric, not empty, not pickled
        if data.shape[0] == 1 and np.load(path, mmap_mode="r").ndim == 2:
            raise UserError(f"{path} is a 2-D array; upscaling across slices needs a 3-D volume")
        return Volume("npy", data, None, None, path)
    if kind == "dicom" or kind is None and looks_like_dicom(path):
        return _read_dicom_multiframe(path)
    raise UserError(f"{path.name}: unsupported volume; use NIfTI (.nii, .nii.gz), a folder of DICOM slices or a "
                    "3-D .npy")


def _read_nifti(path, volume_index):
    import nibabel

    try:
        image = nibabel.load(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for a broken file
        raise UserError(f"cannot read {path} as NIfTI: {str(error).splitlines()[0][:200]}") from None
    if data.ndim == 4 and volume_index is None:
        raise UserError(f"{path} is 4-D ({data.shape[3]} volumes): choose one with --volume-index")
    if data.ndim == 4:
        if not 0 <= volume_index < data.shape[3]:
            raise UserError(f"--volume-index must be from 0 to {data.shape[3] - 1}, got {volume_index}")
        data = data[..., volume_index]
    if data.ndim != 3 or min(data.shape) < 2:
        raise UserError(f"{path} is not a 3-D volume (shape {data.shape}); upscaling across slices needs one")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    return Volume("nifti", data, spacing, image.affine.copy(), path, header=image)


def _dicom_normal(dataset):
    orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
    return np.cross(orientation[:3], orientation[3:])


def _read_dicom_series(folder):
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            dataset = pydicom.dcmread(path)
        except (InvalidDicomError, OSError):
            continue
        if "PixelData" in dataset:
            datasets.append(dataset)
    if len(datasets) < 2:
        raise UserError(f"{folder} holds {len(datasets)} DICOM image(s): a series of at least 2 slices is needed")
    series = {str(getattr(d, "SeriesInstanceUID", "")) for d in datasets}
    if len(series) > 1:
        raise UserError(f"{folder} holds {len(series)} DICOM series: give a folder with one series")
    for needed in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if any(needed not in d for d in datasets):
            raise UserError(f"{folder}: a slice has no {needed}; the slices cannot be placed in space")
    if any(int(getattr(d, "NumberOfFrames", 1) or 1) > 1 for d in datasets):
        raise UserError(f"{folder}: multi-frame DICOM is not supported here; convert it to NIfTI (e.g. dcm2niix)")
    normal = _dicom_normal(datasets[0])
    if any(not np.allclose(_dicom_normal(d), normal, atol=1e-4) for d in datasets):
        raise UserError(f"{folder}: the slices are not parallel (a localiser or a mixed series?)")
    positions = [float(np.dot(normal, [float(v) for v in d.ImagePositionPatient])) for d in datasets]
    order = np.argsort(positions)
    datasets = [datasets[i] for i in order]
    steps = np.diff(np.sort(positions))
    if steps.min() <= 1e-3 or (steps.max() - steps.min()) > 0.01 * steps.mean() + 1e-3:
        raise UserError(f"{folder}: the slices are not evenly spaced ({steps.min():.3f} to {steps.max():.3f} mm)")
    for key in ("RescaleSlope", "RescaleIntercept", "Rows", "Columns"):
        if len({str(getattr(d, key, "")) for d in datasets}) > 1:
            raise UserError(f"{folder}: the slices differ in {key}; they cannot be upscaled as one volume")
    data = np.stack([d.pixel_array for d in datasets], axis=-1)  # (rows, columns, slices)
    if data.ndim != 3:
        raise UserError(f"{folder}: colour DICOM is not supported; only greyscale MRI")
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    spacing = (row_spacing, column_spacing, float(steps.mean()))
    orientation = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
    affine = np.eye(4)  # voxel (row, column, slice) -> patient (LPS) millimetres
    affine[:3, 0] = orientation[3:] * row_spacing
    affine[:3, 1] = orientation[:3] * column_spacing
    affine[:3, 2] = normal * spacing[2]
    affine[:3, 3] = [float(v) for v in datasets[0].ImagePositionPatient]
    thickness = float(datasets[0].SliceThickness) if "SliceThickness" in datasets[0] else None
    return Volume("dicom-series", data, spacing, affine, folder, thickness, 2, datasets)


def _frame_item(dataset, index, sequence, attribute):
    """An attribute of a multi-frame file's frame: from its per-frame item, else the shared one."""
    for group in (dataset.PerFrameFunctionalGroupsSequence[index],
                  getattr(dataset, "SharedFunctionalGroupsSequence", [None])[0]):
        if group is not None and sequence in group and attribute in getattr(group, sequence)[0]:
            return getattr(getattr(group, sequence)[0], attribute)
    raise UserError(f"frame {index + 1} has no {sequence} {attribute}: the frames cannot be placed in space")


def _read_dicom_multiframe(path):
    """One enhanced (multi-frame) DICOM file: frames ordered by their position along the normal."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types for a broken file
        raise UserError(f"cannot read {path} as DICOM: {str(error).splitlines()[0][:200]}") from None
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames < 2 or "PerFrameFunctionalGroupsSequence" not in dataset:
        raise UserError(f"{path} is a single DICOM image: give the folder of the series' slices (or a "
                        "multi-frame file)")
    if getattr(dataset, "SamplesPerPixel", 1) != 1:
        raise UserError(f"{path} is a colour DICOM image; only greyscale MRI is supported")
    orientation = np.array([float(v) for v in _frame_item(dataset, 0, "PlaneOrientationSequence",
                                                          "ImageOrientationPatient")])
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([[float(v) for v in _frame_item(dataset, i, "PlanePositionSequence",
                                                         "ImagePositionPatient")] for i in range(frames)])
    along = positions @ normal
    order = np.argsort(along)
    steps = np.diff(along[order])
    if steps.min() <= 1e-3 or (steps.max() - steps.min()) > 0.01 * steps.mean() + 1e-3:
        raise UserError(f"{path}: the frames are not evenly spaced along one direction (several stacks?)")
    pixels = dataset.pixel_array  # (frames, rows, columns)
    data = np.moveaxis(pixels[order], 0, -1)
    row_spacing, column_spacing = (float(v) for v in _frame_item(dataset, 0, "PixelMeasuresSequence",
                                                                 "PixelSpacing"))
    try:
        thickness = float(_frame_item(dataset, 0, "PixelMeasuresSequence", "SliceThickness"))
    except UserError:
        thickness = None
    spacing = (row_spacing, column_spacing, float(steps.mean()))
    affine = np.eye(4)
    affine[:3, 0] = orientation[3:] * row_spacing
    affine[:3, 1] = orientation[:3] * column_spacing
    affine[:3, 2] = normal * spacing[2]
    affine[:3, 3] = positions[order[0]]
    return Volume("dicom-multiframe", data, spacing, affine, path, thickness, 2, dataset, order)


def check_volume_output(volume, output_path):
    """UserError unless the output is of the input's kind (a folder for a DICOM series) or .npy."""
    output_path = Path(output_path)
    if volume.kind == "dicom-series":
        if output_path.exists() and (not output_path.is_dir() or any(output_path.iterdir())):
            raise UserError(f"the output {output_path} must be a new (or empty) folder for the DICOM series")
        return "dicom-series"
    kind = kind_of(output_path)
    if volume.kind == "dicom-multiframe" and kind in ("dicom", None):
        return "dicom-multiframe"
    if kind not in (volume.kind, "npy"):
        suffixes = {"nifti": ", ".join(NIFTI_SUFFIXES + (".npy",)), "dicom-multiframe": ".dcm, .npy"}.get(
            volume.kind, ".npy")
        raise UserError(f"cannot write a {volume.kind} volume as {output_path.name}: use {suffixes}")
    return kind


def write_volume(volume, data, output_path, axis, factor):
    """Write `data` (the thin volume, in the input's data type) as the input's kind: NIfTI with the
    voxel size along `axis` divided by F and the affine of thin_affine; a DICOM series with F times as
    many slices, each placed between its thick slice's neighbours, with new UIDs; or .npy."""
    from mrisr.core.files import atomic_write
    from mrisr.scans.through_plane import thin_affine

    output_path = Path(output_path)
    kind = check_volume_output(volume, output_path)
    if kind == "npy":
        atomic_write(output_path, lambda temporary: np.save(temporary, data))
    elif kind == "nifti":
        import nibabel

        image = volume.header
        affine = thin_affine(volume.affine, axis, factor)
        header = image.header.copy()
        output = nibabel.Nifti1Image(data, affine, header)
        zooms = list(header.get_zooms())
        zooms[axis] = zooms[axis] / factor
        output.header.set_zooms(tuple(zooms[:3]))
        output.set_qform(affine, code=int(image.header["qform_code"]) or 1)
        output.set_sform(affine, code=int(image.header["sform_code"]) or 1)
        output.set_data_dtype(data.dtype)
        atomic_write(output_path, lambda temporary: nibabel.save(output, temporary))
    elif kind == "dicom-multiframe":
        atomic_write(output_path, lambda temporary: _multiframe_dataset(volume, data, factor).save_as(
            temporary, enforce_file_format=True))
    else:
        _write_dicom_series(volume, data, output_path, factor)
    return output_path


def _multiframe_dataset(volume, data, factor):
    """The multi-frame dataset of the thin volume: F frames per thick frame, in order along the normal,
    each with its per-frame groups copied from its thick frame and its position interpolated."""
    from pydicom.sequence import Sequence

    from mrisr.scans.through_plane import thin_affine

    dataset = copy.deepcopy(volume.header)
    affine = thin_affine(volume.affine, 2, factor)
    thin = volume.spacing[2] / factor
    items = []
    for k in range(data.shape[2]):
        item = copy.deepcopy(volume.header.PerFrameFunctionalGroupsSequence[int(volume.frame_order[k // factor])])
        position = affine[:3, 3] + affine[:3, 2] * k
        if "PlanePositionSequence" in item:
            item.PlanePositionSequence[0].ImagePositionPatient = [float(f"{v:.6f}") for v in position]
        if "PixelMeasuresSequence" in item:
            item.PixelMeasuresSequence[0].SliceThickness = float(f"{thin:.6f}")
            item.PixelMeasuresSequence[0].SpacingBetweenSlices = float(f"{thin:.6f}")
        items.append(item)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(items)
    shared = getattr(dataset, "SharedFunctionalGroupsSequence", None)
    if shared and "PixelMeasuresSequence" in shared[0]:
        shared[0].PixelMeasuresSequence[0].SliceThickness = float(f"{thin:.6f}")
        shared[0].PixelMeasuresSequence[0].SpacingBetweenSlices = float(f"{thin:.6f}")
    set_pixels(dataset, np.moveaxis(data, -1, 0))
    mark_derived(dataset, f"through-plane x{factor}")
    return dataset


def _write_dicom_series(volume, data, folder, factor):
    """One file per thin slice in a staging folder, renamed into place when all are written."""
    import os
    import shutil

    from pydicom.uid import generate_uid

    from mrisr.core.files import remove_stale_temporaries, temporary_path
    from mrisr.scans.through_plane import thin_affine

    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    staging = temporary_path(folder, folder=True)
    affine = thin_affine(volume.affine, 2, factor)
    normal = volume.affine[:3, 2] / np.linalg.norm(volume.affine[:3, 2])
    series_uid = generate_uid()
    thin = volume.spacing[2] / factor
    try:
        for k in range(data.shape[2]):
            dataset = copy.deepcopy(volume.header[min(k // factor, len(volume.header) - 1)])
            position = affine[:3, 3] + affine[:3, 2] * k
            dataset.ImagePositionPatient = [float(f"{v:.6f}") for v in position]
            dataset.SliceLocation = float(f"{np.dot(normal, position):.6f}")
            dataset.SliceThickness = float(f"{thin:.6f}")
            dataset.SpacingBetweenSlices = float(f"{thin:.6f}")
            dataset.InstanceNumber = k + 1
            set_pixels(dataset, data[:, :, k])
            mark_derived(dataset, f"through-plane x{factor}", series_uid)
            dataset.save_as(staging / f"slice_{k + 1:04d}.dcm", enforce_file_format=True)
        if folder.exists():
            folder.rmdir()  # empty (checked before)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
