"""Reading and writing every kind of scan the tools take, through the registry of formats.py (kinds.py:
the kinds and the Scan type).

    scan = read_scan(path)                      # NIfTI, DICOM file, DICOM series folder, .npy, PNG/JPEG/TIFF
    check_output(scan, output_path, factors)    # before any work: the output's suffix decides its kind
    write_scan(scan, finer_data, output_path, factors, "upscaled x2")

`factors` says how much finer the new data is along each axis of `scan.data`; the new voxels tile the
old ones (geometry.tiling_affine), and every format's geometry follows from that one affine.
"""

from pathlib import Path

from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.scans.formats import FORMATS, describe_suffixes, kind_of
from mrisr.scans.kinds import KIND_NAMES
from mrisr.scans.values import check_values


def read_scan(path, volume_index=None, say=inform):
    """Read any supported input into a Scan; UserError with one line for anything else."""
    from mrisr.scans.dicom.datasets import looks_like_dicom

    path = Path(path)
    if path.is_dir():
        kind = "dicom-series"
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
        raise UserError("`volume_index` is for a 4-D NIfTI")
    scan = FORMATS[kind].read(path, volume_index, say)
    check_values(scan.data, str(path))
    return scan


def _is_dicom_without_preamble(path):
    from mrisr.scans.dicom.datasets import dcmread

    try:
        dcmread(path)
        return True
    except Exception:  # whatever pydicom raises: not DICOM
        return False


def output_kind(scan, output_path):
    """The kind of file `output_path` asks for, checked against the input before any work (UserError):
    .npy from anything (the input's axis order), NIfTI from an input with one grid in space, DICOM from
    DICOM (a new or empty folder, no suffix, for a series), a picture from a picture."""
    output_path = Path(output_path)
    kind = kind_of(output_path)
    if scan.kind in ("dicom", "dicom-multiframe", "dicom-mosaic") and kind in ("dicom", None):
        kind = scan.kind  # a DICOM file is written as the kind of DICOM it was
    elif scan.kind == "dicom-series" and kind is None:
        kind = "dicom-series"
    if kind == "nifti" and scan.affine is None and scan.kind != "nifti":
        if scan.no_grid:
            raise UserError(f"{scan.no_grid}: NIfTI needs one grid; write the output as .dcm or .npy")
        raise UserError(f"a {KIND_NAMES[scan.kind]} without geometry cannot be written as NIfTI: use .npy"
                        + (" or .dcm" if scan.kind.startswith("dicom") else ""))
    writable = FORMATS[scan.kind].writable_as
    if kind not in writable:
        raise UserError(f"cannot write a {KIND_NAMES[scan.kind]} as {output_path.name}: use "
                        + ", ".join(describe_suffixes(k) for k in writable))
    if FORMATS[kind].check_path is not None:
        FORMATS[kind].check_path(scan, output_path)
    return kind


def check_output(scan, output_path, factors, description="upscaled"):
    """Before any work: the output's kind (output_kind), and that what it needs can be written (DICOM:
    the first images built and written to memory; NIfTI: the data type); returns the kind."""
    kind = output_kind(scan, output_path)
    if FORMATS[kind].check is not None:
        FORMATS[kind].check(scan, _three(factors), description)
    return kind


def _three(factors):
    return tuple(int(f) for f in factors) + (1,) * (3 - len(factors))


def write_scan(scan, data, output_path, factors, description, say=inform):
    """Write `data` (finer than scan.data by `factors` along its spatial axes, the same axis order and
    data type) as the kind `output_path` asks for, whole or not at all; returns the path."""
    output_path = Path(output_path)
    FORMATS[output_kind(scan, output_path)].write(scan, data, output_path, _three(factors), description, say)
    return output_path
