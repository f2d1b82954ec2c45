"""What the held-out check of `upscale.py self` cannot see, measured where it can be: whether the volume
changes along its slices as much as its in-plane detail predicts.

The method's premise is that the anatomy looks alike in every direction, so in-plane detail, thickened
as the scanner thickened the slices, is what the slice axis lost. The held-out check scores the network
on in-plane slices (the only truth there is), so it cannot tell when the premise fails: a volume whose
truth is smooth along the slices while its in-plane detail is sharp gets in-plane-like detail added
across its slices (measured: an extruded real slice, 7 dB below the spline while the held-out check said
+3.8 dB). One cheap signal sees it: the mean squared difference between neighbouring thick slices,
against the same along the in-plane axes of the volume thickened there by the slice profile (the
training data's own statistic). Anatomy that looks alike in every direction gives a ratio near 1 (real
T1: 1.0 to 1.5, docs/measurements.md); a truth smooth across the slices gives far less.
"""

import numpy as np

from mrisr.core.messages import inform
from mrisr.scans.through_plane.profile import degrade

# Below this ratio, the line below is said. Measured (benchmarks/premise.py, results/premise/premise.json): a
# real T1 1.02-1.47 on its three axes; its truth blurred 8 mm across 0.19 and still +4.7 dB over the spline,
# 16 mm across 0.097 and 1.8 dB below it; an extruded slice 0.010 and 7.5 dB below; mixes of the two 0.012 to
# 0.092 and -0.5 to +0.8 dB. Every case below the spline measured under 0.1.
SMOOTH_ACROSS = 0.15


def _difference_energy(volume, axis):
    """Mean squared difference of neighbours along `axis`, over pairs where either has content (> 0.1)."""
    first = np.take(volume, range(volume.shape[axis] - 1), axis=axis)
    second = np.take(volume, range(1, volume.shape[axis]), axis=axis)
    content = (first > 0.1) | (second > 0.1)
    return float(np.mean((second - first)[content] ** 2)) if content.any() else 0.0


def detail_ratio(volume01, axis, profile, pitch_ratios=(1.0, 1.0)):
    """How much the normalised thick volume changes from slice to slice, against how much its in-plane
    detail, thickened by the slice `profile` along each in-plane axis (resampled to the thin pitch), changes
    from thick sample to thick sample; None where the in-plane axes are too short to thicken."""
    from scipy.ndimage import zoom

    along = _difference_energy(volume01, axis)
    across = []
    for in_plane, ratio in zip([a for a in range(3) if a != axis], pitch_ratios):
        source = volume01
        if abs(ratio - 1.0) > 0.02:
            factors = [1.0, 1.0, 1.0]
            factors[in_plane] = ratio
            source = zoom(volume01, factors, order=1)
        if source.shape[in_plane] >= 3 * profile.factor:
            across.append(_difference_energy(degrade(source, in_plane, profile), in_plane))
    if not across or np.mean(across) <= 0:
        return None
    return along / float(np.mean(across))


def say_premise(ratio, say=inform):
    """The warning a user reads when the volume is much smoother across its slices than in-plane."""
    if ratio is not None and ratio < SMOOTH_ACROSS:
        say(f"warning: this volume changes from slice to slice far less than its in-plane detail predicts (ratio "
            f"{ratio:.2f}; about 1 where the anatomy looks alike in every direction): the network may add "
            "in-plane-like detail across the slices that is not there, which the held-out check (scored on "
            "in-plane slices) cannot see; compare the output with the cubic spline before trusting it")
