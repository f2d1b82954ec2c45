"""The kinds of scan the tools read and write, their names and suffixes, and the one type every reader
returns (`Scan`); formats.py says how each kind reads and writes."""

import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mrisr.scans.geometry import voxel_sizes

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
KIND_NAMES = {"nifti": "NIfTI", "dicom": "DICOM file", "dicom-multiframe": "multi-frame DICOM file",
              "dicom-mosaic": "Siemens mosaic DICOM file", "dicom-series": "DICOM series", "npy": ".npy array",
              "picture": "picture"}
# The kinds that hold slices along axis 2 of their data, each a plane of the file.
SLICED_KINDS = ("dicom-series", "dicom-multiframe", "dicom-mosaic")


@dataclasses.dataclass
class Scan:
    """A scan as read. `data`: the voxels as stored, in their own data type and axis order (NIfTI as
    stored, before scl_slope; DICOM (rows, columns[, slices]) before RescaleSlope, slices in order along
    the normal; .npy as stored; a picture (height, width[, channels])). `affine`: voxel index -> RAS+ mm
    (geometry.py), None without one grid in space (`no_grid` says why when the file has geometry)."""

    kind: str
    data: np.ndarray
    path: Path
    affine: Optional[np.ndarray] = None
    thickness: Optional[float] = None  # mm, when the file gives it (DICOM SliceThickness)
    header: Any = None  # the nibabel image, the DICOM dataset, the series' datasets in slice order
    frame_order: Any = None  # multi-frame DICOM: the stored frames in the order of axis 2 of `data`
    mode: Optional[str] = None  # picture: the PIL mode
    value_range: Optional[tuple] = None  # (low, high) the stored values may take (DICOM BitsStored), None: the type's
    scaling: Any = None  # (slope, intercept): stored -> real value; per slice of axis 2, an (n, 2) array; None: none
    no_grid: Optional[str] = None  # why a file with geometry has no one grid (frames of several stacks...)

    @property
    def spacing(self):
        """Voxel sizes (mm) of the spatial axes, None without geometry."""
        return None if self.affine is None else voxel_sizes(self.affine)[:min(3, self.data.ndim)]

    @property
    def slice_axis(self):
        """The axis the file's own slices run along (DICOM series, multi-frame, mosaic: 2), else None."""
        return 2 if self.kind in SLICED_KINDS else None

    def describe(self):
        shape = "x".join(map(str, self.data.shape))
        return f"{KIND_NAMES[self.kind]}, {shape}, {self.data.dtype}"


def real_values(data, scaling):
    """`data` in real units: `scaling` (slope, intercept), or an (n, 2) array of them along axis 2,
    applied in float32 (float64 for wide integers); `data` itself without scaling."""
    if scaling is None:
        return data
    slope, intercept = scaling if isinstance(scaling, tuple) else np.asarray(scaling, dtype=float).T
    wide = np.issubdtype(data.dtype, np.integer) and data.dtype.itemsize >= 4 or data.dtype == np.float64
    values = np.asarray(data, np.float64 if wide else np.float32) * np.asarray(slope, dtype=np.float32)
    values += np.asarray(intercept, dtype=values.dtype)
    return values
