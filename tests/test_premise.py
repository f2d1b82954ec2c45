"""The slice-to-slice detail ratio (mrisr/scans/through_plane/premise.py): near 1 where the structure looks alike in
every direction, far below where the truth is smooth across the slices, and the warning `self` says."""

import numpy as np

from mrisr.scans.through_plane import SliceProfile, degrade, normalise
from mrisr.scans.through_plane.premise import SMOOTH_ACROSS, detail_ratio, say_premise
from tests.test_through_plane import blob_volume


def thick01(volume, axis=2, factor=4):
    return normalise(degrade(volume, axis, SliceProfile(factor)))[0]


def test_isotropic_structure_gives_about_one_and_an_extruded_slice_far_less():
    volume = blob_volume(48, seed=3)
    for axis in range(3):
        assert 0.6 < detail_ratio(thick01(volume, axis), axis, SliceProfile(4)) < 1.6
    extruded = np.repeat(volume[:, :, 24:25], 48, axis=2) * np.linspace(0.9, 1.1, 48)
    assert detail_ratio(thick01(extruded), 2, SliceProfile(4)) < 0.05
    from scipy.ndimage import gaussian_filter1d

    smoother = [detail_ratio(thick01(gaussian_filter1d(volume, sigma, axis=2)), 2, SliceProfile(4))
                for sigma in (0.5, 2, 4, 8)]
    assert smoother == sorted(smoother, reverse=True)  # the smoother across, the lower


def test_the_warning_is_said_below_the_threshold_only():
    said = []
    for ratio in (None, 1.0, SMOOTH_ACROSS + 0.01, SMOOTH_ACROSS - 0.01, 0.01):
        say_premise(ratio, said.append)
    assert len(said) == 2 and f"ratio {SMOOTH_ACROSS - 0.01:.2f}" in said[0] and "held-out check" in said[0]


def test_self_says_it_on_an_extruded_volume():
    from mrisr.nets.models import through_plane_network
    from mrisr.scans.kinds import Scan
    from mrisr.scans.through_plane import make_plan, upscale_volume

    volume = blob_volume(32, seed=4)
    extruded = np.repeat(volume[:, :, 16:17], 32, axis=2) * np.linspace(0.9, 1.1, 32)
    thick = degrade(extruded, 2, SliceProfile(4))
    scan = Scan("nifti", thick, None, np.diag([1.0, 1.0, 4.0, 1.0]))
    said = []
    model = through_plane_network(4, SliceProfile(4).projection(), channels=4, blocks=1)
    upscale_volume(scan, make_plan(scan), model=model, progress=False, say=said.append, self_ensemble=False)
    assert any("changes from slice to slice far less" in line for line in said)
