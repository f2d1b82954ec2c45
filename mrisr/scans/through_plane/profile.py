"""Slice profiles: how a thick slice weighs the thin slices it covers, thickening a fine volume so, and
the cubic spline along the slices (the baseline and the network's own first guess)."""

import dataclasses
import functools
import math

import numpy as np

from mrisr.errors import UserError

PROFILES = ("box", "gaussian")


@dataclasses.dataclass
class SliceProfile:
    """How one thick slice weighs the thin slices: `factor` thin slices per thick slice, `thickness`
    in thin slices, a box or a Gaussian (full width at half maximum = thickness)."""

    factor: int
    thickness: float = None
    kind: str = "box"

    def __post_init__(self):
        if self.thickness is None:
            self.thickness = float(self.factor)
        if self.factor < 2 or self.factor > 16:
            raise UserError(f"the factor must be a whole number from 2 to 16, not {self.factor}")
        if not (math.isfinite(self.thickness) and 0 < self.thickness <= 4 * self.factor):
            raise UserError(f"the slice thickness must be above 0 and at most 4 slice spacings, "
                            f"got {self.thickness / self.factor:g} spacings")
        if self.kind not in PROFILES:
            raise UserError(f"the slice profile must be one of {', '.join(PROFILES)}, not {self.kind!r}")

    def taps(self):
        """(offsets, weights): thin-slice offsets from a thick slice's first thin slice, weights summing to 1."""
        centre = (self.factor - 1) / 2
        if self.kind == "box":
            low, high = centre - self.thickness / 2, centre + self.thickness / 2
            offsets = np.arange(math.floor(low + 0.5), math.ceil(high - 0.5) + 1)
            weights = np.clip(np.minimum(offsets + 0.5, high) - np.maximum(offsets - 0.5, low), 0, None)
        else:
            from scipy.special import ndtr

            sigma = self.thickness / (2 * math.sqrt(2 * math.log(2)))
            reach = math.ceil(3 * sigma + 1)
            offsets = np.arange(math.floor(centre) - reach, math.ceil(centre) + reach + 1)
            weights = ndtr((offsets + 0.5 - centre) / sigma) - ndtr((offsets - 0.5 - centre) / sigma)
        keep = weights > 1e-9
        return offsets[keep], weights[keep] / weights[keep].sum()

    def projection(self):
        """The weights of a thick slice's own F sub-slices, for the consistency projection, or None
        when the profile reaches far outside its slab (then a projection on the slab alone is wrong)."""
        offsets, weights = self.taps()
        inside = (offsets >= 0) & (offsets < self.factor)
        if weights[~inside].sum() > 0.01:
            return None
        profile = np.zeros(self.factor)
        profile[offsets[inside]] = weights[inside]
        return profile / profile.sum()


def degrade(fine, axis, profile, start=0, count=None):
    """Thick samples of `fine` along `axis`: thick i = sum_j w_j fine[start + i F + offset_j] (the
    ends replicated), for i < count (default: as many as fit from `start`)."""
    fine = np.moveaxis(np.asarray(fine), axis, 0)
    factor = profile.factor
    if count is None:
        count = (fine.shape[0] - start) // factor
    offsets, weights = profile.taps()
    positions = np.clip(start + factor * np.arange(count)[:, None] + offsets[None, :], 0, fine.shape[0] - 1)
    thick = np.tensordot(weights, fine[positions], axes=([0], [1])) if count else fine[:0]
    return np.moveaxis(thick.astype(np.float32), 0, axis)


@functools.lru_cache(maxsize=32)
def spline_matrix(count, factor):
    """The (count * F, count) matrix of cubic B-spline interpolation from thick slices to thin ones:
    thin slice k sits at thick coordinate (k + 0.5) / F - 0.5 (edges: nearest)."""
    from scipy.ndimage import map_coordinates

    coordinates = (np.arange(count * factor) + 0.5) / factor - 0.5
    matrix = np.empty((count * factor, count))
    for column in range(count):
        unit = np.zeros(count)
        unit[column] = 1.0
        matrix[:, column] = map_coordinates(unit, [coordinates], order=3, mode="nearest")
    matrix.setflags(write=False)
    return matrix


def spline_upsample(thick, axis, factor):
    """Cubic-spline interpolation of `thick` along `axis` to F times as many slices."""
    thick = np.moveaxis(np.asarray(thick, np.float32), axis, 0)
    matrix = spline_matrix(thick.shape[0], factor).astype(np.float32)
    return np.moveaxis(np.tensordot(matrix, thick, axes=([1], [0])), 0, axis)
