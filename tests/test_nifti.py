"""NIfTI written back as it came: the stored type with its scaling, its codes (0 included), NIfTI-2 as
NIfTI-2, one volume of a 4-D file in-plane; on nibabel's own test files (real scans) where they have it."""

import nibabel
import numpy as np
import pytest

import mrisr
from mrisr.errors import UserError
from mrisr.scans.geometry import tiling_affine
from mrisr.scans.upscale_file import upscale_file
from tests.conftest import nibabel_file, write_nifti


def quiet(line):
    pass


def test_a_scaled_int16_volume_keeps_its_type_and_its_scaling(tmp_path):
    """nibabel's functional.nii: int16 with scl_slope 0.0754 and scl_inter 3100.8, 20 volumes. Before, the
    in-plane output was float64 (ten times the size) and a 4-D input was refused in-plane."""
    source = nibabel_file("functional.nii")
    image = nibabel.load(source)
    upscale_file("bicubic", source, tmp_path / "x2.nii", scale=2, volume_index=7, say=quiet)
    written = nibabel.load(tmp_path / "x2.nii")
    assert written.get_data_dtype() == np.int16 and written.shape == (34, 42, 3)
    assert (written.dataobj.slope, written.dataobj.inter) == (image.dataobj.slope, image.dataobj.inter)
    np.testing.assert_allclose(written.affine, tiling_affine(image.affine, (2, 2, 1)), atol=1e-6)
    real = np.asarray(image.dataobj)[..., 7]  # nibabel's own scaling of the input
    expected = mrisr.upscale(real.astype(np.float64), model="bicubic", axis=2)
    np.testing.assert_allclose(np.asarray(written.dataobj), expected, atol=image.dataobj.slope)  # one stored step
    with pytest.raises(UserError, match="4-D \\(20 volumes\\): choose one with `volume_index`"):
        upscale_file("bicubic", source, tmp_path / "all.nii", scale=2, say=quiet)
    upscale_file("bicubic", source, tmp_path / "x2.npy", scale=2, volume_index=7, say=quiet)
    np.testing.assert_allclose(np.load(tmp_path / "x2.npy"), np.asarray(written.dataobj), rtol=1e-6)  # real values


def test_the_codes_stay_what_they_were_and_nifti2_stays_nifti2(tmp_path):
    """nibabel's standard.nii.gz (qform_code 0, sform_code 2) and example_nifti2.nii.gz (NIfTI-2, 4-D).
    Before, a qform_code of 0 became 1 and NIfTI-2 was written as NIfTI-1."""
    upscale_file("bicubic", nibabel_file("standard.nii.gz"), tmp_path / "standard.nii.gz", scale=2, say=quiet)
    written = nibabel.load(tmp_path / "standard.nii.gz")
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (0, 2)
    upscale_file("bicubic", nibabel_file("example_nifti2.nii.gz"), tmp_path / "two.nii.gz", scale=2, volume_index=1,
                 say=quiet)
    assert isinstance(nibabel.load(tmp_path / "two.nii.gz"), nibabel.Nifti2Image)
    standard = nibabel.load(nibabel_file("standard.nii.gz"))
    assert isinstance(mrisr.upscale(standard, model="bicubic"), nibabel.Nifti1Image)


def test_a_volume_without_a_world_space_stays_without_one(tmp_path):
    """Both codes 0: no world space, only voxel sizes. Before, the output claimed scanner coordinates."""
    source = write_nifti(tmp_path / "plain.nii", np.arange(6 * 7 * 4, dtype=np.float32).reshape(6, 7, 4),
                         zooms=(1.5, 1.5, 3.0))
    header = nibabel.load(source).header.copy()
    header["qform_code"] = header["sform_code"] = 0
    nibabel.save(nibabel.Nifti1Image(np.asarray(nibabel.load(source).dataobj), None, header), source)
    before = nibabel.load(source)
    assert (int(before.header["qform_code"]), int(before.header["sform_code"])) == (0, 0)
    upscale_file("bicubic", source, tmp_path / "x2.nii", scale=2, say=quiet)
    after = nibabel.load(tmp_path / "x2.nii")
    assert (int(after.header["qform_code"]), int(after.header["sform_code"])) == (0, 0)
    assert after.header.get_zooms() == pytest.approx((0.75, 0.75, 3.0))
    np.testing.assert_allclose(after.affine, tiling_affine(before.affine, (2, 2, 1)), atol=1e-6)
