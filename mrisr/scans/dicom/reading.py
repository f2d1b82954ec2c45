"""One DICOM file as a Scan: a single image, a Siemens mosaic (the volume it tiles), or a multi-frame
file (enhanced, or legacy without per-frame geometry)."""

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.dicom.datasets import number, numbers, pixels_of, read_dataset
from mrisr.scans.dicom.derived import is_enhanced, value_range
from mrisr.scans.dicom.frames import read_enhanced, read_legacy_multiframe
from mrisr.scans.dicom.mosaic import mosaic_slices, read_mosaic
from mrisr.scans.geometry import dicom_affine, dicom_normal
from mrisr.scans.kinds import Scan


def read_dicom_file(path):
    dataset = read_dataset(path)
    if "PixelData" not in dataset:
        raise UserError(f"{path} is a DICOM file without pixel data")
    if int(getattr(dataset, "SamplesPerPixel", 1) or 1) != 1:
        raise UserError(f"{path} is a colour DICOM image; only greyscale MRI is supported")
    if is_enhanced(dataset):
        return read_enhanced(dataset, path)
    count = mosaic_slices(dataset)
    if count is not None:
        return read_mosaic(dataset, path, count)
    pixels = pixels_of(dataset, path)
    if pixels.ndim == 3:
        return read_legacy_multiframe(dataset, pixels, path)
    where = str(path)
    orientation = numbers(dataset, "ImageOrientationPatient", 6, where)
    position = numbers(dataset, "ImagePositionPatient", 3, where)
    spacing = numbers(dataset, "PixelSpacing", 2, where, positive=True)
    thickness = number(dataset, "SliceThickness", where)
    thickness = thickness if thickness and thickness > 0 else None
    affine = None
    if orientation is not None and position is not None and spacing is not None:
        depth = abs(number(dataset, "SpacingBetweenSlices", where) or 0.0) or thickness or 1.0
        affine = dicom_affine(orientation, position, spacing, dicom_normal(orientation) * depth)
    slope = number(dataset, "RescaleSlope", where)
    scaling = None if slope is None else (slope, number(dataset, "RescaleIntercept", where) or 0.0)
    return Scan("dicom", np.asarray(pixels), path, affine, thickness, dataset, value_range=value_range(dataset),
                scaling=scaling)
