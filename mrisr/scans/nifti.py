"""NIfTI (.nii, .nii.gz): read once into memory with its geometry checked; written with the source's
header (or a new one for another kind of input), the finer grid's affine as both qform and sform."""

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.geometry import check_affine

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path, volume_index=None):
    """(data as stored, RAS+ affine, the nibabel image) of a NIfTI file. Read into memory, not mapped:
    a file changed by another program while the work runs cannot crash it. A 4-D image gives the
    volume `volume_index` (all of it when None)."""
    import nibabel

    try:
        image = nibabel.load(path, mmap=False)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for a broken file
        raise UserError(f"cannot read {path} as NIfTI: {(str(error).strip().splitlines() or ['?'])[0][:200]}") from None
    if data.ndim == 4 and volume_index is not None:
        if not 0 <= volume_index < data.shape[3]:
            raise UserError(f"--volume-index must be from 0 to {data.shape[3] - 1}, got {volume_index}")
        data = data[..., volume_index]
    elif volume_index is not None:
        raise UserError(f"--volume-index is for a 4-D NIfTI; {path} is {data.ndim}-D")
    affine = check_affine(image.affine, str(path))
    return np.asarray(data), affine, image


def finer_nifti(image, data, affine, factors):
    """A NIfTI image of `data` (a finer grid, axes as in `image`) with `image`'s header (codes, units,
    description) when given (None: a new one in mm, scanner coordinates), the voxel sizes of `affine`,
    which becomes both qform and sform."""
    import nibabel

    if image is not None:
        header = image.header.copy()
        output = nibabel.Nifti1Image(data, affine, header)
        qform, sform = int(header["qform_code"]) or 1, int(header["sform_code"]) or 1
    else:
        output = nibabel.Nifti1Image(data, affine)
        output.header.set_xyzt_units("mm")
        qform = sform = 1
    zooms = list(output.header.get_zooms())
    for axis in range(min(3, data.ndim)):
        zooms[axis] = float(np.linalg.norm(affine[:3, axis]))
    output.header.set_zooms(tuple(zooms[:data.ndim]))
    output.set_qform(affine, code=qform)
    output.set_sform(affine, code=sform)
    output.set_data_dtype(data.dtype)
    return output


def write_nifti(scan, data, affine, path, atomic_write):
    """`data` (a finer grid of `scan`, axes as in `scan.data`) as NIfTI with `affine` (finer_nifti)."""
    import nibabel

    output = finer_nifti(scan.header if scan.kind == "nifti" else None, data, affine, None)
    atomic_write(path, lambda temporary: nibabel.save(output, temporary))
