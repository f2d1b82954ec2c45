"""NIfTI (.nii, .nii.gz; NIfTI-1 and NIfTI-2): read once into memory as stored (before scl_slope and
scl_inter) with its geometry checked; written in the source's format with its header (data type,
scaling, qform and sform codes, units, description), or a new NIfTI-1 header for another kind of input,
the finer grid's affine as qform and sform."""

import nibabel
import numpy as np

from mrisr.errors import UserError
from mrisr.scans.geometry import check_affine


def stored_values(image):
    """(the voxels as stored, (scl_slope, scl_inter) or None) of a nibabel image: the stored values and
    their scaling, so that an output keeps both (None where there is no scaling)."""
    proxy = image.dataobj
    slope, intercept = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
    if nibabel.is_proxy(proxy) and (slope, intercept) != (1.0, 0.0):
        return np.asarray(proxy.get_unscaled()), (float(slope), float(intercept))
    return np.asarray(proxy), None


def read_nifti(path, volume_index=None):
    """(stored data, RAS+ affine, the nibabel image, scaling or None) of a NIfTI file. Read into memory,
    not mapped: a file changed by another program while the work runs cannot crash it. A 4-D image gives
    the volume `volume_index` (all of it when None)."""
    try:
        image = nibabel.load(path, mmap=False)
        data, scaling = stored_values(image)
    except Exception as error:  # nibabel raises many types for a broken file
        raise UserError(f"cannot read {path} as NIfTI: {(str(error).strip().splitlines() or ['?'])[0][:200]}") from None
    if data.ndim == 4 and volume_index is not None:
        if not 0 <= volume_index < data.shape[3]:
            raise UserError(f"`volume_index` must be from 0 to {data.shape[3] - 1}, got {volume_index}")
        data = data[..., volume_index]
    elif volume_index is not None:
        raise UserError(f"`volume_index` is for a 4-D NIfTI; {path} is {data.ndim}-D")
    affine = check_affine(image.affine, str(path))
    return np.ascontiguousarray(data), affine, image, scaling


def finer_nifti(image, data, affine, scaling=None, description=None):
    """A NIfTI image of `data` (a finer grid, axes as in `image`, values as stored) on `affine`, which
    becomes qform and sform: with `image`'s class and header (its codes kept, 0 included: a file without a
    world space stays so) when given, else a new NIfTI-1 header in mm with scanner codes; `scaling`
    (slope, intercept) written as scl_slope and scl_inter; `description` in `descrip`, as far as its 79
    characters hold it."""
    if image is not None:
        header = image.header.copy()
        output = type(image)(data, affine, header)
        qform, sform = int(header["qform_code"]), int(header["sform_code"])
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
    if scaling is not None:
        output.header.set_slope_inter(*scaling)
    if description is not None:
        output.header["descrip"] = description.encode("ascii", "replace")[:79]
    return output


def write_nifti(image, data, affine, path, atomic_write, scaling=None, description=None):
    """`data` as NIfTI on `affine` (finer_nifti), whole or not at all."""
    output = finer_nifti(image, data, affine, scaling, description)
    atomic_write(path, lambda temporary: nibabel.save(output, temporary))


def check_nifti_type(dtype, where):
    """UserError before any work when NIfTI cannot hold values of `dtype`."""
    try:
        nibabel.Nifti1Header().set_data_dtype(np.dtype(dtype))
    except Exception:  # nibabel raises HeaderDataError for a type NIfTI has no code for
        raise UserError(f"{where} holds {np.dtype(dtype)} values, which NIfTI cannot store: write the output as "
                        ".npy") from None
