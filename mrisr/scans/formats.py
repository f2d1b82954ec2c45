"""Every file format the tools read and write, as a registry: each format answers for itself (as nibabel's
image classes do) with the suffixes it owns, how it reads a file, what it checks of an output
before any work, how it writes one, and the kinds an input of it can be written as. scan.py dispatches
through `FORMATS`; the readers and writers themselves live in nifti.py, pictures.py and dicom/."""

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from mrisr.core.files import atomic_write
from mrisr.core.safe_npy import read_npy_header
from mrisr.errors import UserError
from mrisr.scans.geometry import tiling_affine
from mrisr.scans.kinds import DICOM_SUFFIXES, NIFTI_SUFFIXES, PICTURE_SUFFIXES, Scan, real_values


@dataclasses.dataclass(frozen=True)
class Format:
    kind: str
    suffixes: tuple  # the file-name endings that ask for it; () for a folder
    writable_as: tuple  # the kinds an input of this kind may be written as (the output's suffix decides)
    write: Callable  # (scan, data, path, factors, description, say): the output, whole or not at all
    read: Optional[Callable] = None  # (path, volume_index, say) -> Scan; None: read as another kind
    check: Optional[Callable] = None  # (scan, factors, description): what must hold before any work
    check_path: Optional[Callable] = None  # (scan, path): what the output's path must be


def _has_scaling(scan):
    return scan.scaling is not None and not (isinstance(scan.scaling, tuple) and scan.scaling == (1.0, 0.0))


def _output_scaling(scan, factors):
    """The scaling of an output of `scan` made finer by `factors`: per-slice scalings repeated along axis 2."""
    if isinstance(scan.scaling, np.ndarray):
        return np.repeat(scan.scaling, factors[2], axis=0)
    return scan.scaling


# --- NIfTI -------------------------------------------------------------------------------------------

def _read_nifti(path, volume_index, say):
    from mrisr.scans.nifti import read_nifti

    data, affine, image, scaling = read_nifti(path, volume_index)
    return Scan("nifti", data, path, affine, header=image, scaling=scaling)


def _check_nifti(scan, factors, description):
    from mrisr.scans.nifti import check_nifti_type

    check_nifti_type(np.float32 if isinstance(scan.scaling, np.ndarray) else scan.data.dtype, scan.path)


def _write_nifti(scan, data, path, factors, description, say):
    from mrisr.scans.nifti import write_nifti

    affine = tiling_affine(scan.affine, factors[:3])
    if data.ndim == 2:  # one DICOM image: one slice, with its direction
        data = data[..., None]
    scaling = scan.scaling if _has_scaling(scan) else None
    if isinstance(scaling, np.ndarray):
        say("note: the frames have their own rescale slopes and intercepts, which NIfTI cannot hold: the "
            "output holds their real values (float32)")
        data, scaling = real_values(data, _output_scaling(scan, factors)), None
    write_nifti(scan.header if scan.kind == "nifti" else None, data, affine, path, atomic_write, scaling, description)


# --- .npy ----------------------------------------------------------------------------------------------

def _read_npy(path, volume_index, say):

    with open(path, "rb") as file:
        try:
            _, _, dtype = read_npy_header(file)
        except (ValueError, EOFError, SyntaxError) as error:
            raise UserError(f"{path} is not a .npy file ({str(error).splitlines()[0][:120]})") from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects; only plain numeric .npy arrays are read")
    try:
        return Scan("npy", np.load(path, allow_pickle=False), path)
    except (ValueError, EOFError, OSError) as error:
        raise UserError(f"{path}: truncated or corrupt .npy file ({str(error).splitlines()[0][:120]})") from None


def _write_npy(scan, data, path, factors, description, say):

    values = real_values(data, _output_scaling(scan, factors)) if _has_scaling(scan) else data
    atomic_write(path, lambda temporary: np.save(temporary, values))


# --- pictures ------------------------------------------------------------------------------------------

def _read_picture(path, volume_index, say):
    from mrisr.scans.pictures import read_picture

    return read_picture(path)


def _check_picture_path(scan, path):
    if path.suffix.lower() in (".jpg", ".jpeg") and scan.data.dtype != np.uint8:
        raise UserError(f"JPEG holds 8-bit pixels only; write this {scan.data.dtype} input as .png, .tif or .npy")


def _write_picture(scan, data, path, factors, description, say):
    from mrisr.scans.pictures import write_picture

    write_picture(data, path, atomic_write)


# --- DICOM -----------------------------------------------------------------------------------------------

def _read_dicom_file(path, volume_index, say):
    from mrisr.scans.dicom.reading import read_dicom_file

    return read_dicom_file(path)


def _read_dicom_series(path, volume_index, say):
    from mrisr.scans.dicom.series import read_dicom_series

    return read_dicom_series(path, say)


def _check_dicom(scan, factors, description):
    from mrisr.scans.dicom.writing import check_dicom_output

    check_dicom_output(scan, factors, description)


def _check_series_path(scan, path):
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"the output {path} must be a new (or empty) folder for the DICOM series")


def _write_dicom_file(scan, data, path, factors, description, say):
    from mrisr.scans.dicom.writing import write_dicom_file

    write_dicom_file(scan, data, path, factors, description, atomic_write, say)


def _write_dicom_series(scan, data, path, factors, description, say):
    from mrisr.scans.dicom.writing import write_dicom_series

    write_dicom_series(scan, data, path, factors, description, say)


FORMATS = {fmt.kind: fmt for fmt in (
    Format("nifti", NIFTI_SUFFIXES, ("nifti", "npy"), _write_nifti, _read_nifti, _check_nifti),
    Format("npy", (".npy",), ("npy",), _write_npy, _read_npy),
    Format("picture", PICTURE_SUFFIXES, ("picture", "npy"), _write_picture, _read_picture,
           check_path=_check_picture_path),
    Format("dicom", DICOM_SUFFIXES, ("dicom", "nifti", "npy"), _write_dicom_file, _read_dicom_file, _check_dicom),
    Format("dicom-multiframe", DICOM_SUFFIXES, ("dicom-multiframe", "nifti", "npy"), _write_dicom_file,
           check=_check_dicom),
    Format("dicom-mosaic", DICOM_SUFFIXES, ("dicom-mosaic", "nifti", "npy"), _write_dicom_file, check=_check_dicom),
    Format("dicom-series", (), ("dicom-series", "nifti", "npy"), _write_dicom_series, _read_dicom_series,
           _check_dicom, _check_series_path),
)}
# The kinds whose files a name can ask for by its suffix (the other DICOM kinds are what a .dcm turns out to hold).
BY_SUFFIX = ("nifti", "npy", "dicom", "picture")


def kind_of(path):
    """The kind a file name asks for: nifti, npy, dicom or picture (None when its suffix says nothing)."""
    name = Path(path).name.lower()
    return next((kind for kind in BY_SUFFIX if name.endswith(FORMATS[kind].suffixes)), None)


def describe_suffixes(kind):
    """How a line names the file names of a kind: its suffixes, or a folder."""
    suffixes = FORMATS[kind].suffixes
    return "/".join(suffixes) if suffixes else "a folder (no suffix)"
