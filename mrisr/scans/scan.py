"""Reading and writing every kind of scan the tools take (kinds.py: the kinds and the Scan type).

    scan = read_scan(path)                      # NIfTI, DICOM file, DICOM series folder, .npy, PNG/JPEG/TIFF
    check_output(scan, output_path, factors)    # before any work: the output's suffix decides its kind
    write_scan(scan, finer_data, output_path, factors, "upscaled x2")

`factors` says how much finer the new data is along each axis of `scan.data`; the new voxels tile the
old ones (geometry.tiling_affine), and every format's geometry follows from that one affine.
"""

from pathlib import Path

import numpy as np

from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.scans.geometry import tiling_affine
from mrisr.scans.kinds import DICOM_SUFFIXES, KIND_NAMES, NIFTI_SUFFIXES, PICTURE_SUFFIXES, Scan, kind_of, real_values
from mrisr.scans.values import check_values


def read_scan(path, volume_index=None, say=inform):
    """Read any supported input into a Scan; UserError with one line for anything else."""
    from mrisr.scans.dicom.datasets import looks_like_dicom

    path = Path(path)
    if path.is_dir():
        from mrisr.scans.dicom.series import read_dicom_series

        scan = read_dicom_series(path, say)
    elif not path.is_file():
        raise UserError(f"input {path} does not exist")
    else:
        kind = kind_of(path)
        if kind is None and (looks_like_dicom(path) or _is_dicom_without_preamble(path)):
            kind = "dicom"
        if kind is None:
            raise UserError(f"{path.name}: unsupported input; use NIfTI (.nii, .nii.gz), DICOM (a file, or a folder "
                            "of one series), .npy or PNG/JPEG/TIFF")
        if volume_index is not None and kind != "nifti":
            raise UserError("--volume-index is for a 4-D NIfTI")
        if kind == "nifti":
            from mrisr.scans.nifti import read_nifti

            data, affine, image, scaling = read_nifti(path, volume_index)
            scan = Scan("nifti", data, path, affine, header=image, scaling=scaling)
        elif kind == "dicom":
            from mrisr.scans.dicom.reading import read_dicom_file

            scan = read_dicom_file(path)
        elif kind == "npy":
            scan = Scan("npy", _read_npy(path), path)
        else:
            from mrisr.scans.pictures import read_picture

            scan = read_picture(path)
    check_values(scan.data, str(path))
    return scan


def _is_dicom_without_preamble(path):
    from mrisr.scans.dicom.datasets import dcmread

    try:
        dcmread(path)
        return True
    except Exception:  # whatever pydicom raises: not DICOM
        return False


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


# --- writing -----------------------------------------------------------------

# The kinds each input can be written as (the output's suffix decides).
WRITABLE = {"nifti": ("nifti", "npy"), "dicom": ("dicom", "nifti", "npy"),
            "dicom-multiframe": ("dicom-multiframe", "nifti", "npy"), "dicom-mosaic": ("dicom-mosaic", "nifti", "npy"),
            "dicom-series": ("dicom-series", "nifti", "npy"), "npy": ("npy",), "picture": ("picture", "npy")}


def output_kind(scan, output_path):
    """The kind of file `output_path` asks for, checked against the input before any work (UserError):
    .npy from anything (the input's axis order), NIfTI from an input with one grid in space, DICOM from
    DICOM (a new or empty folder, no suffix, for a series), a picture from a picture."""
    output_path = Path(output_path)
    kind = kind_of(output_path)
    if scan.kind in ("dicom", "dicom-multiframe", "dicom-mosaic") and kind in ("dicom", None):
        kind = scan.kind
    elif scan.kind == "dicom-series" and kind is None:
        kind = "dicom-series"
    if kind == "nifti" and scan.affine is None and scan.kind != "nifti":
        if scan.no_grid:
            raise UserError(f"{scan.no_grid}: NIfTI needs one grid; write the output as .dcm or .npy")
        raise UserError(f"a {KIND_NAMES[scan.kind]} without geometry cannot be written as NIfTI: use .npy"
                        + (" or .dcm" if scan.kind.startswith("dicom") else ""))
    if kind not in WRITABLE[scan.kind]:
        allowed = {"nifti": "/".join(NIFTI_SUFFIXES), "npy": ".npy", "dicom": "/".join(DICOM_SUFFIXES),
                   "dicom-multiframe": "/".join(DICOM_SUFFIXES), "dicom-mosaic": "/".join(DICOM_SUFFIXES),
                   "dicom-series": "a folder (no suffix)", "picture": "/".join(PICTURE_SUFFIXES)}
        raise UserError(f"cannot write a {KIND_NAMES[scan.kind]} as {output_path.name}: use "
                        + ", ".join(allowed[k] for k in WRITABLE[scan.kind]))
    if kind == "picture" and output_path.suffix.lower() in (".jpg", ".jpeg") and scan.data.dtype != np.uint8:
        raise UserError(f"JPEG holds 8-bit pixels only; write this {scan.data.dtype} input as .png, .tif or .npy")
    if kind == "dicom-series" and output_path.exists() and (not output_path.is_dir() or any(output_path.iterdir())):
        raise UserError(f"the output {output_path} must be a new (or empty) folder for the DICOM series")
    return kind


def check_output(scan, output_path, factors, description="upscaled"):
    """Before any work: the output's kind (output_kind), and that what it needs can be written (DICOM:
    the first images built and written to memory; NIfTI: the data type); returns the kind."""
    kind = output_kind(scan, output_path)
    factors = _three(factors)
    if kind in ("dicom", "dicom-multiframe", "dicom-mosaic", "dicom-series"):
        from mrisr.scans.dicom.writing import check_dicom_output

        check_dicom_output(scan, factors, description)
    elif kind == "nifti":
        from mrisr.scans.nifti import check_nifti_type

        check_nifti_type(np.float32 if isinstance(scan.scaling, np.ndarray) else scan.data.dtype, scan.path)
    return kind


def _three(factors):
    return tuple(int(f) for f in factors) + (1,) * (3 - len(factors))


def _has_scaling(scan):
    return scan.scaling is not None and not (isinstance(scan.scaling, tuple) and scan.scaling == (1.0, 0.0))


def _output_scaling(scan, factors):
    """The scaling of an output of `scan` made finer by `factors`: per-slice scalings repeated along axis 2."""
    if isinstance(scan.scaling, np.ndarray):
        return np.repeat(scan.scaling, factors[2], axis=0)
    return scan.scaling


def write_scan(scan, data, output_path, factors, description, say=inform):
    """Write `data` (finer than scan.data by `factors` along its spatial axes, the same axis order and
    data type) as the kind `output_path` asks for, whole or not at all; returns the path."""
    from mrisr.core.files import atomic_write

    output_path = Path(output_path)
    kind = output_kind(scan, output_path)
    factors = _three(factors)
    if kind == "npy":
        values = real_values(data, _output_scaling(scan, factors)) if _has_scaling(scan) else data
        atomic_write(output_path, lambda temporary: np.save(temporary, values))
    elif kind == "nifti":
        from mrisr.scans.nifti import write_nifti

        affine = tiling_affine(scan.affine, factors[:3])
        if data.ndim == 2:  # one DICOM image: one slice, with its direction
            data = data[..., None]
        scaling = scan.scaling if _has_scaling(scan) else None
        if isinstance(scaling, np.ndarray):
            say("note: the frames have their own rescale slopes and intercepts, which NIfTI cannot hold: the "
                "output holds their real values (float32)")
            data, scaling = real_values(data, _output_scaling(scan, factors)), None
        write_nifti(scan.header if scan.kind == "nifti" else None, data, affine, output_path, atomic_write, scaling,
                    description)
    elif kind == "dicom-series":
        from mrisr.scans.dicom.writing import write_dicom_series

        write_dicom_series(scan, data, output_path, factors, description, say)
    elif kind in ("dicom", "dicom-multiframe", "dicom-mosaic"):
        from mrisr.scans.dicom.writing import write_dicom_file

        write_dicom_file(scan, data, output_path, factors, description, atomic_write, say)
    else:
        from mrisr.scans.pictures import write_picture

        write_picture(data, output_path, atomic_write)
    return output_path

