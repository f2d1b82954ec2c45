"""One type for every scan the tools read and write: its voxels as stored, where they are, its header.

    scan = read_scan(path)                      # NIfTI, DICOM file, DICOM series folder, .npy, PNG/JPEG/TIFF
    kind = output_kind(scan, output_path)      # before any work: the output's suffix decides its kind
    write_scan(scan, finer_data, output_path, factors, "upscaled x2")

`factors` says how much finer the new data is along each axis of `scan.data`; the new voxels tile the
old ones (geometry.tiling_affine), and every format's geometry follows from that one affine.
"""

import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.dicom import DICOM_SUFFIXES, looks_like_dicom
from mrisr.scans.geometry import tiling_affine, voxel_sizes
from mrisr.scans.nifti import NIFTI_SUFFIXES
from mrisr.scans.values import check_values

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
KIND_NAMES = {"nifti": "NIfTI", "dicom": "DICOM file", "dicom-multiframe": "multi-frame DICOM file",
              "dicom-series": "DICOM series", "npy": ".npy array", "picture": "picture"}


@dataclasses.dataclass
class Scan:
    """A scan as read. `data`: the voxels in their own data type and axis order (NIfTI as stored; DICOM
    (rows, columns[, slices]) with slices in order along the normal; .npy as stored; a picture
    (height, width[, channels])). `affine`: voxel index -> RAS+ mm (geometry.py), None without geometry."""

    kind: str
    data: np.ndarray
    path: Path
    affine: Optional[np.ndarray] = None
    thickness: Optional[float] = None  # mm, when the file gives it (DICOM SliceThickness)
    header: Any = None  # the nibabel image, the DICOM dataset, the series' datasets in slice order
    frame_order: Any = None  # multi-frame DICOM: the stored frames in order along the normal
    mode: Optional[str] = None  # picture: the PIL mode

    @property
    def spacing(self):
        """Voxel sizes (mm) of the spatial axes, None without geometry."""
        return None if self.affine is None else voxel_sizes(self.affine)[:min(3, self.data.ndim)]

    @property
    def slice_axis(self):
        """The axis the file's own slices run along (DICOM: 2), else None."""
        return 2 if self.kind in ("dicom-series", "dicom-multiframe") else None

    @property
    def spatial_ndim(self):
        return 2 if self.kind == "picture" else self.data.ndim

    def describe(self):
        shape = "x".join(map(str, self.data.shape))
        return f"{KIND_NAMES[self.kind]}, {shape}, {self.data.dtype}"


def kind_of(path):
    """The kind a file name asks for: picture, npy, dicom or nifti (None when its suffix says nothing)."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if name.endswith(PICTURE_SUFFIXES):
        return "picture"
    return None


def read_scan(path, volume_index=None, say=print):
    """Read any supported input into a Scan; UserError with one line for anything else."""
    from mrisr.scans.dicom import read_dicom_file, read_dicom_series
    from mrisr.scans.nifti import read_nifti

    path = Path(path)
    if path.is_dir():
        data, affine, thickness, datasets = read_dicom_series(path, say)
        scan = Scan("dicom-series", data, path, affine, thickness, datasets)
    elif not path.is_file():
        raise UserError(f"input {path} does not exist")
    else:
        kind = kind_of(path)
        if kind is None and looks_like_dicom(path):
            kind = "dicom"
        if kind is None:
            raise UserError(f"{path.name}: unsupported input; use NIfTI (.nii, .nii.gz), DICOM (a file, or a folder "
                            "of one series), .npy or PNG/JPEG/TIFF")
        if volume_index is not None and kind != "nifti":
            raise UserError("--volume-index is for a 4-D NIfTI")
        if kind == "nifti":
            data, affine, image = read_nifti(path, volume_index)
            scan = Scan("nifti", data, path, affine, header=image)
        elif kind == "dicom":
            data, affine, thickness, dataset, order, kind = read_dicom_file(path)
            scan = Scan(kind, data, path, affine, thickness, dataset, order)
        elif kind == "npy":
            scan = Scan("npy", _read_npy(path), path)
        else:
            scan = _read_picture(path)
    check_values(scan.data, str(path))
    return scan


def _read_npy(path):
    from mrisr.core.safe_npy import read_npy_header

    with open(path, "rb") as file:
        try:
            _, _, dtype = read_npy_header(file)
        except (ValueError, EOFError, SyntaxError) as error:
            raise UserError(f"{path} is not a .npy file ({str(error).splitlines()[0][:120]})") from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects; only plain numeric .npy arrays are read")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise UserError(f"{path}: truncated or corrupt .npy file ({str(error).splitlines()[0][:120]})") from None


def _read_picture(path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode in ("P", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode == "LA":
                image = image.convert("RGBA")
            mode = image.mode
            pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for a broken or unknown file
        raise UserError(f"cannot read {path} as a picture: {str(error).splitlines()[0][:200]}") from None
    if mode == "I;16" and pixels.dtype != np.uint16:
        pixels = pixels.astype(np.uint16)
    return Scan("picture", pixels, path, mode=mode)


# --- writing -----------------------------------------------------------------

# The kinds each input can be written as (the output's suffix decides).
WRITABLE = {"nifti": ("nifti", "npy"), "dicom": ("dicom", "nifti", "npy"),
            "dicom-multiframe": ("dicom-multiframe", "nifti", "npy"), "dicom-series": ("dicom-series", "nifti", "npy"),
            "npy": ("npy",), "picture": ("picture", "npy")}


def output_kind(scan, output_path):
    """The kind of file `output_path` asks for, checked against the input before any work (UserError):
    .npy from anything (the input's axis order), NIfTI from an input with geometry, DICOM from DICOM (a
    new or empty folder, no suffix, for a series), a picture from a picture."""
    output_path = Path(output_path)
    kind = kind_of(output_path)
    if scan.kind in ("dicom", "dicom-multiframe") and kind in ("dicom", None):
        kind = scan.kind
    elif scan.kind == "dicom-series" and kind is None:
        kind = "dicom-series"
    if kind == "nifti" and scan.affine is None and scan.kind != "nifti":
        raise UserError(f"a {KIND_NAMES[scan.kind]} without geometry cannot be written as NIfTI: use .npy"
                        + (" or .dcm" if scan.kind.startswith("dicom") else ""))
    if kind not in WRITABLE[scan.kind]:
        allowed = {"nifti": "/".join(NIFTI_SUFFIXES), "npy": ".npy", "dicom": "/".join(DICOM_SUFFIXES),
                   "dicom-multiframe": "/".join(DICOM_SUFFIXES), "dicom-series": "a folder (no suffix)",
                   "picture": "/".join(PICTURE_SUFFIXES)}
        raise UserError(f"cannot write a {KIND_NAMES[scan.kind]} as {output_path.name}: use "
                        + ", ".join(allowed[k] for k in WRITABLE[scan.kind]))
    if kind == "picture" and output_path.suffix.lower() in (".jpg", ".jpeg") and scan.data.dtype != np.uint8:
        raise UserError(f"JPEG holds 8-bit pixels only; write this {scan.data.dtype} input as .png, .tif or .npy")
    if kind == "dicom-series" and output_path.exists() and (not output_path.is_dir() or any(output_path.iterdir())):
        raise UserError(f"the output {output_path} must be a new (or empty) folder for the DICOM series")
    return kind


def write_scan(scan, data, output_path, factors, description):
    """Write `data` (finer than scan.data by `factors` along its spatial axes, the same axis order and
    data type) as the kind `output_path` asks for, whole or not at all; returns the path."""
    from mrisr.core.files import atomic_write
    from mrisr.scans.dicom import write_dicom_file, write_dicom_series
    from mrisr.scans.nifti import write_nifti

    output_path = Path(output_path)
    kind = output_kind(scan, output_path)
    factors = tuple(int(f) for f in factors) + (1,) * (3 - len(factors))
    if kind == "npy":
        atomic_write(output_path, lambda temporary: np.save(temporary, data))
    elif kind == "nifti":
        affine = tiling_affine(scan.affine, factors[:3])
        if scan.kind == "dicom" and data.ndim == 2:  # one DICOM image: one slice, with its direction
            data = data[..., None]
        write_nifti(scan, data, affine, output_path, atomic_write)
    elif kind == "dicom-series":
        write_dicom_series(scan, data, output_path, factors, description)
    elif kind in ("dicom", "dicom-multiframe"):
        write_dicom_file(scan, data, output_path, factors, description, atomic_write)
    else:
        _write_picture(data, output_path, atomic_write)
    return output_path


def _write_picture(pixels, path, atomic_write):
    from PIL import Image

    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.dtype != np.uint8:
        raise UserError("JPEG holds 8-bit pixels only; write a 16-bit input as .png or .npy")
    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]  # JPEG has no alpha
    picture_format = Image.registered_extensions().get(path.suffix.lower())
    try:
        picture = Image.fromarray(pixels)  # uint8 -> L/RGB/RGBA, uint16 -> I;16, int32 -> I, float32 -> F
        atomic_write(path, lambda temporary: picture.save(temporary, format=picture_format))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot write {pixels.dtype} pixels to {path.name}: {error}; use .npy or .tif") from None
