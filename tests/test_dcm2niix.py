"""The geometry of every DICOM output, checked by an independent reader: dcm2niix converts the
project's DICOM output, and its NIfTI must match the project's own NIfTI output of the same input
(affine to 1e-3 mm, shape, every voxel value). Series, single images and enhanced multi-frame files,
oblique, upscaled in-plane (x2, x4) and through-plane (x2, x4)."""

import numpy as np
import pytest

from mrisr.scans.upscale_file import upscale_file
from tests.conftest import (
    DOUBLE_OBLIQUE,
    OBLIQUE,
    dcm2niix_images,
    needs_dcm2niix,
    write_dicom,
    write_multiframe,
    write_series,
)

pytestmark = needs_dcm2niix


def dcm2niix(dicom, folder):
    """dcm2niix's NIfTI of a DICOM file or series folder (its only output)."""
    images, _ = dcm2niix_images(dicom, folder)
    assert len(images) == 1, images
    return images[0][1]


def assert_same_voxels_in_the_same_places(theirs, ours):
    """Both images in their closest canonical orientation: the same grid and values."""
    import nibabel

    theirs, ours = nibabel.as_closest_canonical(theirs), nibabel.as_closest_canonical(ours)
    assert theirs.shape[:3] == ours.shape[:3]
    np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(theirs.dataobj, np.int64).reshape(ours.shape),
                                  np.asarray(ours.dataobj, np.int64))


def through_plane_file(folder, factor):
    """A through-plane network (random weights, no training: geometry only) saved as .keras."""
    import keras

    from mrisr.core.model_files import save_model
    from mrisr.nets.models import through_plane_network
    from mrisr.scans.through_plane import SliceProfile

    keras.utils.set_random_seed(factor)
    model = through_plane_network(factor, SliceProfile(factor).projection(), channels=4, blocks=1)
    path = folder / f"through_plane_x{factor}.keras"
    save_model(model, path)
    return str(path)


def volume(shape, seed):
    values = np.random.default_rng(seed).integers(100, 3000, size=shape).astype(np.uint16)
    return values


def inputs(tmp_path):
    """(name, path) of each kind of DICOM input, oblique."""
    series = tmp_path / "series"
    write_series(series, volume((12, 10, 6), 1), spacing=(0.8, 0.7), step=3.0, orientation=DOUBLE_OBLIQUE)
    single = write_dicom(tmp_path / "single.dcm", volume((12, 10), 2), (0.8, 0.7), orientation=OBLIQUE,
                         position=(10.0, -5.0, 7.0), thickness=3.0)
    multiframe = tmp_path / "multi.dcm"
    write_multiframe(multiframe, volume((12, 10, 6), 3), [4, 1, 0, 5, 2, 3], step=3.0, orientation=DOUBLE_OBLIQUE)
    return {"series": series, "single": single, "multiframe": multiframe}


@pytest.mark.parametrize("kind", ["series", "single", "multiframe"])
@pytest.mark.parametrize("scale", [2, 4])
def test_in_plane_dicom_output_sits_where_dcm2niix_and_our_nifti_put_it(tmp_path, kind, scale):
    source = inputs(tmp_path)[kind]
    dicom_out = tmp_path / ("out" if kind == "series" else "out.dcm")
    upscale_file("bicubic", source, dicom_out, scale=scale, progress=False, say=lambda line: None)
    upscale_file("bicubic", source, tmp_path / "ours.nii", scale=scale, progress=False, say=lambda line: None)
    import nibabel

    assert_same_voxels_in_the_same_places(dcm2niix(dicom_out, tmp_path), nibabel.load(tmp_path / "ours.nii"))


@pytest.mark.parametrize("kind", ["series", "multiframe"])
@pytest.mark.parametrize("factor", [2, 4])
def test_through_plane_dicom_output_sits_where_dcm2niix_and_our_nifti_put_it(tmp_path, kind, factor):
    import nibabel

    source = inputs(tmp_path)[kind]
    model = through_plane_file(tmp_path, factor)
    dicom_out = tmp_path / ("out" if kind == "series" else "out.dcm")
    upscale_file(model, source, dicom_out, progress=False, say=lambda line: None)
    upscale_file(model, source, tmp_path / "ours.nii", progress=False, say=lambda line: None)
    ours = nibabel.load(tmp_path / "ours.nii")
    assert ours.shape == (12, 10, 6 * factor)
    assert_same_voxels_in_the_same_places(dcm2niix(dicom_out, tmp_path), ours)


@pytest.mark.parametrize("kind", ["series", "single", "multiframe"])
def test_our_reading_of_each_dicom_input_is_dcm2niixs(tmp_path, kind):
    """No upscaling: the input as we read it, written as NIfTI, against dcm2niix's conversion."""
    import nibabel

    from mrisr.scans.scan import read_scan, write_scan

    source = inputs(tmp_path)[kind]
    scan = read_scan(source)
    write_scan(scan, scan.data, tmp_path / "ours.nii", (1, 1, 1), "copy")
    assert_same_voxels_in_the_same_places(dcm2niix(source, tmp_path), nibabel.load(tmp_path / "ours.nii"))
