"""What `upscale.py self` will do with a volume: the slice axis, the factor and the slice profile, from
its geometry (or the user's options), and why."""

import dataclasses

import numpy as np

from mrisr.errors import UserError
from mrisr.scans.through_plane.profile import SliceProfile


class NearlyIsotropic(UserError):
    """The volume's slices are already about as fine as its pixels, and no factor was given (a study skips it)."""


@dataclasses.dataclass
class Plan:
    """What `upscale.py self` will do with a volume, and why."""

    axis: int
    profile: SliceProfile
    pitch_ratios: tuple  # per in-plane axis: how much to stretch it so one pixel is one thin slice
    description: str


def make_plan(volume, axis=None, factor=None, thickness_mm=None, kind="box", profile_known=True):
    """Choose the slice axis, the factor and the slice profile of a Scan (UserError when they cannot
    be chosen): axis = DICOM's slice axis, else the largest voxel size; factor = that size over the
    in-plane one, rounded; thickness = the given one, else the file's slice thickness, else the slice
    spacing (no gap). `profile_known` False: a saved network brings its own profile (not described)."""
    data = volume.data
    if data.ndim != 3:
        raise UserError(f"upscaling across slices needs a 3-D volume, not a {data.ndim}-D array")
    if volume.no_grid:
        raise UserError(f"{volume.no_grid}: upscaling across slices needs one stack of slices")
    if isinstance(volume.scaling, np.ndarray):
        raise UserError(f"{volume.path}: its frames have their own rescale slopes and intercepts: upscaling across "
                        "slices needs one scaling (convert the file to NIfTI first, e.g. with dcm2niix)")
    if volume.spacing is None:  # .npy: no geometry
        if axis is None or factor is None:
            raise UserError("a .npy volume has no voxel sizes: give `axis` and `scale`")
        if thickness_mm is not None:
            raise UserError("a .npy volume has no voxel sizes: `slice_thickness` needs NIfTI or DICOM")
        spacing = [1.0, 1.0, 1.0]
        spacing[axis] = float(factor)
    else:
        spacing = list(volume.spacing)
    if volume.slice_axis is not None and axis is not None and axis != volume.slice_axis:
        raise UserError(f"a DICOM series is upscaled across its slices (axis {volume.slice_axis}), not axis {axis}")
    if axis is None and volume.slice_axis is not None:
        axis = volume.slice_axis  # DICOM says which axis its slices run along
    if axis is None:
        if max(spacing) < 1.5 * min(spacing):
            sizes = ", ".join(f"{v:g}" for v in spacing)
            raise NearlyIsotropic(f"the volume is nearly isotropic (voxel sizes {sizes} mm): give `axis` and `scale` "
                                  "to make its slices finer anyway")
        axis = int(np.argmax(spacing))
    if axis not in (0, 1, 2):
        raise UserError(f"`axis` must be 0, 1 or 2, not {axis}")
    in_plane = [spacing[a] for a in range(3) if a != axis]
    ratio = spacing[axis] / float(np.mean(in_plane))
    if factor is None:
        factor = int(round(ratio))
        if factor < 2:
            raise NearlyIsotropic(f"the slice spacing is only {ratio:.2f} times the in-plane pixel size: give "
                                  "`scale` (2 or more) to make the slices finer anyway")
    if not 2 <= factor <= 16:
        raise UserError(f"`scale` must be from 2 to 16 for upscaling across slices, got {factor}")
    if data.shape[axis] < 4:
        raise UserError(f"the volume has only {data.shape[axis]} slice(s) along axis {axis}: at least 4 are needed")
    thin = spacing[axis] / factor
    if thickness_mm is None:
        thickness_mm = volume.thickness or spacing[axis]
    if volume.spacing is None:
        thickness_mm = spacing[axis]
    profile = SliceProfile(factor, thickness_mm / thin, kind)
    pitch_ratios = tuple(p / thin for p in in_plane) if volume.spacing is not None else (1.0, 1.0)
    gap = spacing[axis] - thickness_mm
    description = (f"axis {axis}: {data.shape[axis]} slices x{factor} -> {data.shape[axis] * factor}"
                   + ("" if volume.spacing is None else
                      f"; spacing {spacing[axis]:g} mm -> {thin:g} mm, "
                      + ((f"{kind} profile {thickness_mm:g} mm thick"
                          + (f" ({gap:g} mm gap)" if gap > 1e-6 else f" ({-gap:g} mm overlap)" if gap < -1e-6 else ""))
                         if profile_known else "the saved network's own slice profile")
                      + f", in-plane {' x '.join(f'{p:g}' for p in in_plane)} mm"
                      + ("" if all(abs(r - 1) <= 0.02 for r in pitch_ratios) else
                         " (training slices resampled to the thin pitch)")))
    return Plan(axis, profile, pitch_ratios, description)
