"""Where voxels are: the tiling of finer voxels, affines without a place in space, DICOM's numbers
(mrisr/scans/geometry.py). The formats' geometry is checked against dcm2niix in test_dcm2niix.py."""

import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.geometry import check_affine, dicom_affine, dicom_fields, in_plane_shift, tiling_affine


def test_tiling_affine_keeps_the_field_of_view_where_nibabels_rescale_affine_shifts_it():
    from nibabel.affines import apply_affine, rescale_affine, voxel_sizes

    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    affine[:3, 3] = [10.0, -20.0, 5.0]
    shape, factors = np.array([11, 12, 7]), np.array([2, 2, 1])
    new = tiling_affine(affine, factors)
    # The outer faces of the first and last voxels are where they were, along every axis.
    np.testing.assert_allclose(apply_affine(new, np.full(3, -0.5)), apply_affine(affine, np.full(3, -0.5)))
    np.testing.assert_allclose(apply_affine(new, shape * factors - 0.5), apply_affine(affine, shape - 0.5))
    nibabel_affine = rescale_affine(affine, shape, voxel_sizes(affine) / factors, shape * factors)
    assert np.abs(nibabel_affine - new).max() == 0.125  # a quarter of an old 0.5 mm voxel at x2


def test_dicom_numbers_round_trip_through_the_affine():
    orientation = np.array([0.0, 1.0, 0.0, 0.0, 0.0, -1.0])  # sagittal: normal along -x (LPS)
    affine = dicom_affine(orientation, [20.0, -30.0, 40.0], [0.9, 0.8], [-3.0, 0.0, 0.0])
    np.testing.assert_allclose(affine[:3, 3], [-20.0, 30.0, 40.0])  # LPS -> RAS: x and y negated
    for k in (0, 2):
        position, spacing, step, location = dicom_fields(affine, k)
        np.testing.assert_allclose(position, [20.0 - 3.0 * k, -30.0, 40.0])
        assert spacing == pytest.approx([0.9, 0.8]) and step == pytest.approx(3.0)
        assert location == pytest.approx(-(20.0 - 3.0 * k))  # along the normal (-1, 0, 0)
    # in-plane x4: the first pixel's centre moves back by 3/8 of an old pixel along rows and columns
    position, spacing, _, _ = dicom_fields(tiling_affine(affine, (4, 4, 1)))
    np.testing.assert_allclose(position, [20.0, -30.0 - 0.375 * 0.8, 40.0 + 0.375 * 0.9])
    assert spacing == pytest.approx([0.225, 0.2])
    # the same move from one image's own orientation and spacing (how frames without a common grid move)
    np.testing.assert_allclose([20.0, -30.0, 40.0] + in_plane_shift(orientation, [0.9, 0.8], (4, 4)), position)


def test_affines_that_place_nothing_are_refused():
    for bad in (np.zeros((4, 4)), np.full((4, 4), np.nan), np.diag([1.0, 1.0, 0.0, 1.0]),
                np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])):
        with pytest.raises(UserError, match="no place in space"):
            check_affine(bad, "x.nii")
    check_affine(np.diag([0.5, 0.5, 6.0, 1.0]), "fine.nii")
