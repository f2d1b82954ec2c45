"""Where a scan's voxels are: one convention for every format, and the arithmetic of finer voxels.

Every `Scan.affine` maps a voxel index (i, j, k) of the scan's data, in the order the data is stored,
to RAS+ millimetres, the convention of NIfTI: +x towards the patient's right, +y anterior, +z superior.
DICOM states positions in LPS (+x towards the patient's left, +y posterior, +z superior); RAS+ is LPS
with x and y negated, so a DICOM geometry is read and written through `LPS_TO_RAS` (its own inverse).
For a DICOM image the data is
(rows, columns[, slices]): i runs down the rows (along the column direction cosines, spaced by
PixelSpacing[0]), j along a row (row direction cosines, PixelSpacing[1]), k along the slice normal.
"""

import numpy as np

from mrisr.errors import UserError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def tiling_affine(affine, factors):
    """The affine of a grid whose voxels along each axis are `factors[axis]` times finer, placed so
    that they tile the old voxels exactly (new voxel k lies at old coordinate (k + 0.5) / F - 0.5).
    Hand-written: nibabel.affines.rescale_affine centres on the integer voxel (shape - 1) // 2, which
    shifts the new grid by a quarter of an old voxel at x2 for an odd size (measured)."""
    factors = np.asarray(list(factors) + [1] * (3 - len(factors)), dtype=float)[:3]
    voxel_map = np.eye(4)
    voxel_map[:3, :3] = np.diag(1.0 / factors)
    voxel_map[:3, 3] = 0.5 / factors - 0.5
    return np.asarray(affine, dtype=float) @ voxel_map


def voxel_sizes(affine):
    """The length (mm) of each voxel axis of an affine."""
    return tuple(float(size) for size in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def check_affine(affine, name):
    """UserError unless an affine places voxels in space: finite, and its three axes independent."""
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise UserError(f"{name}: its voxel-to-world matrix holds NaN or infinite values: the voxels have no place "
                        "in space (fix the header)")
    sizes = voxel_sizes(affine)
    if min(sizes) <= 1e-6 or abs(np.linalg.det(affine[:3, :3])) <= 1e-9 * np.prod(sizes):
        raise UserError(f"{name}: its voxel-to-world matrix is singular (a zero voxel size or two axes in one "
                        "direction): the voxels have no place in space (fix the header)")
    return affine


def dicom_affine(orientation, position, pixel_spacing, step):
    """The RAS+ affine of DICOM data (rows, columns, slices) from ImageOrientationPatient, the first
    slice's ImagePositionPatient, PixelSpacing and the step (a 3-vector in LPS mm) from one slice to the
    next."""
    orientation = np.asarray(orientation, dtype=float)
    lps = np.eye(4)
    lps[:3, 0] = orientation[3:] * float(pixel_spacing[0])
    lps[:3, 1] = orientation[:3] * float(pixel_spacing[1])
    lps[:3, 2] = np.asarray(step, dtype=float)
    lps[:3, 3] = np.asarray(position, dtype=float)
    return LPS_TO_RAS @ lps


def dicom_normal(orientation):
    orientation = np.asarray(orientation, dtype=float)
    return np.cross(orientation[:3], orientation[3:])


def in_plane_shift(orientation, pixel_spacing, factors):
    """The LPS vector (mm) from an image's first pixel to the first pixel of the same image made
    `factors[0]` times finer down its rows and `factors[1]` times along them, the new pixels tiling the
    old (as tiling_affine): (0.5 / F - 0.5) of an old pixel along each in-plane direction."""
    orientation = np.asarray(orientation, dtype=float)
    return ((0.5 / factors[0] - 0.5) * float(pixel_spacing[0]) * orientation[3:]
            + (0.5 / factors[1] - 0.5) * float(pixel_spacing[1]) * orientation[:3])


def dicom_fields(affine, slice_index=0):
    """What DICOM says of slice `slice_index` of a grid with this RAS+ affine: (ImagePositionPatient,
    PixelSpacing, the step between slices along the normal in mm, SliceLocation)."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=float)
    position = lps[:3, 3] + lps[:3, 2] * slice_index
    pixel_spacing = [float(np.linalg.norm(lps[:3, 0])), float(np.linalg.norm(lps[:3, 1]))]
    normal = np.cross(lps[:3, 1] / pixel_spacing[1], lps[:3, 0] / pixel_spacing[0])
    step = float(np.dot(normal, lps[:3, 2]))
    return position, pixel_spacing, step, float(np.dot(normal, position))


def stack_order(positions, normal, where, what):
    """(order along the normal, step vector) of a stack of slice positions; UserError unless they are
    evenly spaced and run along the normal (a shear, as a gantry tilt gives, is refused)."""
    positions = np.asarray(positions, dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    differences = np.diff(positions[order], axis=0)
    steps = differences @ normal
    if steps.min() <= 1e-3:
        raise UserError(f"{where}: two {what} lie at the same position along the normal (a repeated slice, or "
                        + ("several volumes or echoes in one file?)" if what == "frames" else
                           "several series or echoes in one folder?)"))
    if steps.max() - steps.min() > 0.01 * steps.mean() + 1e-3:
        raise UserError(f"{where}: the {what} are not evenly spaced ({steps.min():.3f} to {steps.max():.3f} mm "
                        "apart)")
    sideways = np.linalg.norm(differences - np.outer(steps, normal), axis=1)
    if sideways.max() > 0.01 + 0.001 * steps.mean():
        angle = np.degrees(np.arctan2(sideways.max(), steps.mean()))
        raise UserError(f"{where}: the {what}' positions do not run along their normal (each steps "
                        f"{sideways.max():.2f} mm sideways: a sheared stack, as a gantry tilt of about {angle:.1f} "
                        "degrees gives); resample it to a regular grid first (e.g. dcm2niix, which corrects tilt)")
    return order, differences.mean(axis=0)
