"""The scan type: every input kind read with its geometry, the output's kind from its suffix, writes
that keep the header and data type (mrisr/scans/scan.py, nifti.py; DICOM in test_dicom.py)."""

import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.scan import output_kind, read_scan, write_scan
from tests.conftest import write_dicom, write_nifti, write_series


def test_a_dicom_image_round_trip_keeps_the_header_and_divides_the_spacing(tmp_path):
    import pydicom

    pixels = np.random.default_rng(0).integers(0, 4000, size=(9, 11)).astype(np.uint16)
    scan = read_scan(write_dicom(tmp_path / "in.dcm", pixels))
    assert scan.kind == "dicom" and scan.data.shape == (9, 11) and scan.data.dtype == np.uint16
    assert scan.affine is None  # no ImageOrientationPatient / ImagePositionPatient: no place in space
    np.testing.assert_array_equal(scan.data, pixels)
    bigger = np.repeat(np.repeat(scan.data, 2, axis=0), 2, axis=1)
    write_scan(scan, bigger, tmp_path / "out.dcm", (2, 2), "upscaled x2")
    written = pydicom.dcmread(tmp_path / "out.dcm")
    np.testing.assert_array_equal(written.pixel_array, bigger)
    assert (written.Rows, written.Columns) == (18, 22)
    assert [float(v) for v in written.PixelSpacing] == pytest.approx([0.4, 0.35])
    assert written.PatientName == "Test^Phantom" and written.SOPInstanceUID != scan.header.SOPInstanceUID
    assert "upscaled x2" in written.SeriesDescription and written.DerivationDescription == "upscaled x2"
    assert list(written.ImageType) == ["DERIVED", "PRIMARY", "M", "ND"]  # every value kept, DERIVED first


def test_a_compressed_dicom_is_written_uncompressed_with_its_bits(tmp_path):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    pixels = np.random.default_rng(2).integers(0, 4000, size=(8, 10)).astype(np.uint16)
    path = write_dicom(tmp_path / "in.dcm", pixels)
    compressed = pydicom.dcmread(path)
    compressed.compress(RLELossless)
    compressed.save_as(path, enforce_file_format=True)
    scan = read_scan(path)
    np.testing.assert_array_equal(scan.data, pixels)
    write_scan(scan, np.repeat(np.repeat(scan.data, 2, axis=0), 2, axis=1), tmp_path / "out.dcm", (2, 2), "x2")
    written = pydicom.dcmread(tmp_path / "out.dcm")
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and "NumberOfFrames" not in written
    assert (written.Rows, written.Columns, written.BitsStored, written.HighBit) == (16, 20, 12, 11)
    np.testing.assert_array_equal(written.pixel_array[::2, ::2], pixels)


def test_nifti_round_trip_and_the_tiling_affine(tmp_path):
    import nibabel

    volume = np.random.default_rng(1).integers(0, 1000, size=(6, 7, 4)).astype(np.int16)
    affine = np.array([[1.5, 0, 0, -10], [0, 1.5, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    scan = read_scan(write_nifti(tmp_path / "in.nii.gz", volume, affine=affine))
    assert scan.kind == "nifti" and scan.data.shape == (6, 7, 4) and scan.spacing == pytest.approx((1.5, 1.5, 3.0))
    upscaled = np.repeat(np.repeat(volume, 2, axis=0), 2, axis=1)
    write_scan(scan, upscaled, tmp_path / "out.nii.gz", (2, 2, 1), "x2")
    written = nibabel.load(tmp_path / "out.nii.gz")
    assert written.shape == (12, 14, 4) and written.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), upscaled)
    assert written.header.get_zooms() == pytest.approx((0.75, 0.75, 3.0))
    # New voxels (0..1, 0..1) tile old voxel (0, 0): their centres surround the old centre symmetrically.
    new_centres = [written.affine @ [i, j, 0, 1] for i in (0, 1) for j in (0, 1)]
    np.testing.assert_allclose(np.mean(new_centres, axis=0), affine @ [0, 0, 0, 1])
    np.testing.assert_allclose(written.affine[:3, 2], affine[:3, 2])  # the slice axis is kept


def test_an_oblique_permuted_nifti_is_written_where_nibabel_reads_it_back(tmp_path):
    """A non-diagonal affine (oblique, axes permuted and flipped), upscaled x3 along two axes: every new
    voxel centre, as nibabel reads the output, lies where the tiling of the old voxel puts it."""
    import nibabel

    rotation, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = (rotation @ np.diag([0.9, 1.2, 2.5]))[:, [2, 0, 1]] * [1, -1, 1]
    affine[:3, 3] = [12.0, -40.0, 7.5]
    volume = np.random.default_rng(5).random((5, 6, 4)).astype(np.float32)
    scan = read_scan(write_nifti(tmp_path / "in.nii", volume, affine=affine))
    write_scan(scan, np.zeros((15, 6, 12), np.float32), tmp_path / "out.nii", (3, 1, 3), "x3")
    written = nibabel.load(tmp_path / "out.nii")
    assert written.shape == (15, 6, 12)
    for old in ([0, 0, 0], [4, 5, 3], [2, 1, 1]):
        centres = [written.affine @ [3 * old[0] + a, old[1], 3 * old[2] + c, 1] for a in range(3) for c in range(3)]
        np.testing.assert_allclose(np.mean(centres, axis=0), affine @ [*old, 1], atol=1e-5)
    assert written.header.get_zooms() == pytest.approx(tuple(np.linalg.norm(written.affine[:3, :3], axis=0)))
    np.testing.assert_allclose(written.get_qform(), written.get_sform(), atol=1e-5)


def test_pictures_and_npy_keep_their_shape_and_axis_order(tmp_path):
    from PIL import Image

    grey = np.random.default_rng(2).integers(0, 256, size=(5, 8)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "in.png")
    scan = read_scan(tmp_path / "in.png")
    assert scan.data.shape == (5, 8) and scan.mode == "L" and scan.affine is None
    write_scan(scan, np.zeros((10, 16), np.uint8), tmp_path / "out.png", (2, 2), "x2")
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (10, 16)
    volume = np.random.default_rng(3).random((4, 5, 6)).astype(np.float32)
    np.save(tmp_path / "volume.npy", volume)
    scan = read_scan(tmp_path / "volume.npy")
    assert scan.data.shape == (4, 5, 6) and scan.kind == "npy"
    write_scan(scan, np.zeros((4, 10, 12), np.float32), tmp_path / "out.npy", (1, 2, 2), "x2")
    assert np.load(tmp_path / "out.npy").shape == (4, 10, 12)


def test_the_output_suffix_decides_the_kind_and_what_cannot_be_written_is_refused_first(tmp_path):
    np.save(tmp_path / "volume.npy", np.zeros((3, 4, 5)))
    npy = read_scan(tmp_path / "volume.npy")
    for name in ("out.png", "out.nii.gz", "out.dcm"):
        with pytest.raises(UserError, match=f"cannot write a .npy array as {name}|without geometry"):
            output_kind(npy, tmp_path / name)
    series = tmp_path / "series"
    write_series(series, np.zeros((6, 5, 4), np.uint16))
    scan = read_scan(series)
    assert output_kind(scan, tmp_path / "thin.npy") == "npy"  # a .npy, not a folder named thin.npy
    assert output_kind(scan, tmp_path / "thin.nii.gz") == "nifti"
    assert output_kind(scan, tmp_path / "thin") == "dicom-series"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UserError, match="new \\(or empty\\) folder"):
        output_kind(scan, tmp_path / "full")
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(UserError, match="JPEG holds 8-bit"):
        output_kind(read_scan(tmp_path / "deep.png"), tmp_path / "out.jpg")


def test_bad_inputs_get_one_clear_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="unsupported input"):
        read_scan(tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read"):
        read_scan(tmp_path / "broken.png")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="Python objects"):
        read_scan(tmp_path / "objects.npy")
    with pytest.raises(UserError, match="does not exist"):
        read_scan(tmp_path / "missing.nii")
    for name, array, message in (("complex.npy", np.ones((4, 4), np.complex64), "complex"),
                                 ("mask.npy", np.zeros((4, 4), bool), "booleans"),
                                 ("empty.npy", np.zeros((0, 4)), "no values")):
        np.save(tmp_path / name, array)
        with pytest.raises(UserError, match=message):
            read_scan(tmp_path / name)
    write_nifti(tmp_path / "complex.nii", np.ones((4, 4, 4), np.complex64), (1.0, 1.0, 1.0))
    with pytest.raises(UserError, match="complex"):
        read_scan(tmp_path / "complex.nii")


@pytest.mark.parametrize("bad", [0.0, np.nan])
def test_a_nifti_without_a_place_in_space_is_refused_when_read(tmp_path, bad):
    """An affine of zeros or NaN (nibabel will not write one: the header's bytes are patched)."""
    import nibabel

    path = write_nifti(tmp_path / "bad.nii", np.ones((4, 4, 4), np.float32), (1.0, 1.0, 1.0))
    header = nibabel.load(path).header.copy()
    header["qform_code"], header["sform_code"] = 0, 1
    for row in ("srow_x", "srow_y", "srow_z"):
        header[row] = bad
    path.write_bytes(header.binaryblock + path.read_bytes()[len(header.binaryblock):])
    with pytest.raises(UserError, match="no place in space"):
        read_scan(path)


def test_sixteen_bit_png_and_two_dimensional_nifti(tmp_path):
    import nibabel
    from PIL import Image

    deep = np.random.default_rng(5).integers(0, 65535, size=(6, 7)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    scan = read_scan(tmp_path / "deep.png")
    assert scan.data.dtype == np.uint16
    np.testing.assert_array_equal(scan.data, deep)
    write_scan(scan, np.repeat(np.repeat(scan.data, 2, 0), 2, 1), tmp_path / "out.png", (2, 2), "x2")
    assert np.asarray(Image.open(tmp_path / "out.png")).dtype == np.uint16
    nibabel.save(nibabel.Nifti1Image(np.ones((5, 6), np.float32), np.diag([0.5, 0.5, 1.0, 1.0])), tmp_path / "flat.nii")
    scan = read_scan(tmp_path / "flat.nii")
    assert scan.data.shape == (5, 6)
    write_scan(scan, np.ones((10, 12), np.float32), tmp_path / "out.nii", (2, 2), "x2")
    written = nibabel.load(tmp_path / "out.nii")
    assert written.shape[:2] == (10, 12) and written.header.get_zooms()[:2] == pytest.approx((0.25, 0.25))
