"""Siemens mosaics: the slices of a volume tiled in one image, read as the volume they are.

As dcm2niix and nibabel read them: the Siemens header says how many slices the mosaic holds
(NumberOfImagesInMosaic) and the slice normal (SliceNormalVector, whose sign orders the slices); the
mosaic is ceil(sqrt(n)) tiles a side, filled row by row; ImagePositionPatient is the first pixel of the
whole mosaic as one image, so the first slice's first pixel lies (mosaic size - tile size) / 2 pixels
further along each in-plane direction."""

import math
import warnings

import numpy as np

with warnings.catch_warnings():  # nibabel.nicom warns at import that its DICOM readers are experimental
    warnings.simplefilter("ignore")
    from nibabel.nicom import csareader

from mrisr.errors import UserError
from mrisr.scans.dicom.datasets import number, numbers, pixels_of
from mrisr.scans.dicom.derived import value_range
from mrisr.scans.dicom.vendors import SIEMENS_MR, private
from mrisr.scans.geometry import dicom_affine
from mrisr.scans.kinds import Scan


def mosaic_slices(dataset):
    """The number of slices a Siemens mosaic holds, None for any other image."""
    if "MOSAIC" not in [str(v).upper() for v in (dataset.get("ImageType") or [])]:
        return None
    csa = _image_csa(dataset)
    count = (csa or {}).get("NumberOfImagesInMosaic", {}).get("items", [])
    if count:
        return int(count[0])
    element = private(dataset, 0x0019, SIEMENS_MR, 0x0A)
    return int(element.value) if element is not None and str(element.value).strip() else 0


def _image_csa(dataset):
    try:
        return (csareader.get_csa_header(dataset, "image") or {}).get("tags")
    except Exception:  # nibabel raises several types for a CSA header it cannot parse
        return None


def side(count):
    """Tiles along each side of a mosaic of `count` slices."""
    return math.ceil(math.sqrt(count))


def read_mosaic(dataset, path, count):
    """A mosaic as a volume (tile rows, tile columns, slices), its slices in the mosaic's order."""
    where = str(path)
    normal = (_image_csa(dataset) or {}).get("SliceNormalVector", {}).get("items", [])
    if count < 1 or len(normal) != 3:
        raise UserError(f"{path} is a Siemens mosaic without the Siemens header that says its slices (their number "
                        "and direction): convert it to a volume first (e.g. dcm2niix)")
    tiles = side(count)  # the tiles' size rounded down where the image does not split evenly, as dcm2niix does
    mosaic = pixels_of(dataset, path)
    rows, columns = dataset.Rows // tiles, dataset.Columns // tiles
    volume = np.stack([mosaic[(k // tiles) * rows:(k // tiles + 1) * rows,
                              (k % tiles) * columns:(k % tiles + 1) * columns] for k in range(count)], axis=-1)
    orientation = numbers(dataset, "ImageOrientationPatient", 6, where)
    position = numbers(dataset, "ImagePositionPatient", 3, where)
    spacing = numbers(dataset, "PixelSpacing", 2, where, positive=True)
    affine = None
    thickness = number(dataset, "SliceThickness", where)
    if orientation is not None and position is not None and spacing is not None:
        step = abs(number(dataset, "SpacingBetweenSlices", where) or thickness or 1.0)
        first = position + ((dataset.Rows - rows) / 2 * spacing[0] * orientation[3:]
                            + (dataset.Columns - columns) / 2 * spacing[1] * orientation[:3])
        affine = dicom_affine(orientation, first, spacing, np.asarray(normal, dtype=float) * step)
    return Scan("dicom-mosaic", volume, path, affine, thickness if thickness and thickness > 0 else None, dataset,
                value_range=value_range(dataset), scaling=_scaling(dataset, where))


def _scaling(dataset, where):
    slope = number(dataset, "RescaleSlope", where)
    return None if slope is None else (slope, number(dataset, "RescaleIntercept", where) or 0.0)


def tile(volume):
    """A mosaic image of a volume (rows, columns, slices): its slices as tiles, row by row, the rest 0."""
    rows, columns, count = volume.shape
    tiles = side(count)
    mosaic = np.zeros((tiles * rows, tiles * columns), volume.dtype)
    for k in range(count):
        mosaic[(k // tiles) * rows:(k // tiles + 1) * rows, (k % tiles) * columns:(k % tiles + 1) * columns] = \
            volume[:, :, k]
    return mosaic

