import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.medical_io import check_output, read_image, upscaled_affine, write_image


def write_dicom(path, pixels, spacing=(0.8, 0.7)):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.Modality, dataset.PatientName, dataset.SeriesDescription = "MR", "Test^Phantom", "T1 axial"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelSpacing = list(spacing)
    dataset.PixelData = pixels.astype(np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_dicom_round_trip_keeps_the_header_and_divides_the_spacing(tmp_path):
    import pydicom

    pixels = np.random.default_rng(0).integers(0, 4000, size=(9, 11)).astype(np.uint16)
    source = read_image(write_dicom(tmp_path / "in.dcm", pixels))
    assert source.kind == "dicom" and source.pixels.shape == (1, 9, 11) and source.pixels.dtype == np.uint16
    np.testing.assert_array_equal(source.pixels[0], pixels)
    bigger = np.repeat(np.repeat(source.pixels, 2, axis=1), 2, axis=2)
    write_image(source, bigger, tmp_path / "out.dcm", 2)
    written = pydicom.dcmread(tmp_path / "out.dcm")
    np.testing.assert_array_equal(written.pixel_array, bigger[0])
    assert (written.Rows, written.Columns) == (18, 22)
    assert [float(v) for v in written.PixelSpacing] == pytest.approx([0.4, 0.35])
    assert written.PatientName == "Test^Phantom" and written.SOPInstanceUID != source.header.SOPInstanceUID
    assert "upscaled x2" in written.SeriesDescription


def test_a_compressed_dicom_is_written_uncompressed_with_its_bits(tmp_path):
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    pixels = np.random.default_rng(2).integers(0, 4000, size=(8, 10)).astype(np.uint16)
    path = write_dicom(tmp_path / "in.dcm", pixels)
    compressed = pydicom.dcmread(path)
    compressed.compress(RLELossless)
    compressed.save_as(path, enforce_file_format=True)
    source = read_image(path)
    np.testing.assert_array_equal(source.pixels[0], pixels)
    write_image(source, np.repeat(np.repeat(source.pixels, 2, axis=1), 2, axis=2), tmp_path / "out.dcm", 2)
    written = pydicom.dcmread(tmp_path / "out.dcm")
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and "NumberOfFrames" not in written
    assert (written.Rows, written.Columns, written.BitsStored, written.HighBit) == (16, 20, 12, 11)
    np.testing.assert_array_equal(written.pixel_array[::2, ::2], pixels)


def test_nifti_round_trip_and_affine(tmp_path):
    import nibabel

    volume = np.random.default_rng(1).integers(0, 1000, size=(6, 7, 4)).astype(np.int16)
    affine = np.array([[1.5, 0, 0, -10], [0, 1.5, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    nibabel.save(nibabel.Nifti1Image(volume, affine), tmp_path / "in.nii.gz")
    source = read_image(tmp_path / "in.nii.gz", axis=2)
    assert source.pixels.shape == (4, 6, 7)
    upscaled = np.repeat(np.repeat(source.pixels, 2, axis=1), 2, axis=2)
    write_image(source, upscaled, tmp_path / "out.nii.gz", 2)
    written = nibabel.load(tmp_path / "out.nii.gz")
    assert written.shape == (12, 14, 4) and written.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.moveaxis(upscaled, 0, 2))
    assert written.header.get_zooms() == pytest.approx((0.75, 0.75, 3.0))
    # New voxels (0..1, 0..1) tile old voxel (0, 0): their centres surround the old centre symmetrically.
    old_centre = affine @ [0, 0, 0, 1]
    new_centres = [written.affine @ [i, j, 0, 1] for i in (0, 1) for j in (0, 1)]
    np.testing.assert_allclose(np.mean(new_centres, axis=0), old_centre)
    np.testing.assert_allclose(upscaled_affine(affine, 0, 2)[:3, 0], affine[:3, 0])  # the slice axis is kept


def test_pictures_and_npy(tmp_path):
    from PIL import Image

    grey = np.random.default_rng(2).integers(0, 256, size=(5, 8)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "in.png")
    source = read_image(tmp_path / "in.png")
    assert source.pixels.shape == (1, 5, 8) and source.mode == "L"
    write_image(source, np.zeros((1, 10, 16), np.uint8), tmp_path / "out.png", 2)
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (10, 16)
    volume = np.random.default_rng(3).random((4, 5, 6)).astype(np.float32)
    np.save(tmp_path / "volume.npy", volume)
    source = read_image(tmp_path / "volume.npy", axis=0)
    assert source.pixels.shape == (4, 5, 6)
    write_image(source, np.zeros((4, 10, 12), np.float32), tmp_path / "out.npy", 2)
    assert np.load(tmp_path / "out.npy").shape == (4, 10, 12)


def test_bad_inputs_get_one_clear_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="unsupported format"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read"):
        read_image(tmp_path / "broken.png")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="Python objects"):
        read_image(tmp_path / "objects.npy")
    with pytest.raises(UserError, match="does not exist"):
        read_image(tmp_path / "missing.nii")
    np.save(tmp_path / "volume.npy", np.zeros((3, 4, 5)))
    for name in ("out.png", "out.nii.gz"):
        with pytest.raises(UserError, match=f"cannot write a npy input as {name}"):
            check_output(read_image(tmp_path / "volume.npy"), tmp_path / name)


def test_sixteen_bit_png_and_two_dimensional_nifti(tmp_path):
    import nibabel
    from PIL import Image

    deep = np.random.default_rng(5).integers(0, 65535, size=(6, 7)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    source = read_image(tmp_path / "deep.png")
    assert source.pixels.dtype == np.uint16
    np.testing.assert_array_equal(source.pixels[0], deep)
    write_image(source, np.repeat(np.repeat(source.pixels, 2, 1), 2, 2), tmp_path / "out.png", 2)
    assert np.asarray(Image.open(tmp_path / "out.png")).dtype == np.uint16
    flat = nibabel.Nifti1Image(np.ones((5, 6), np.float32), np.diag([0.5, 0.5, 1.0, 1.0]))
    nibabel.save(flat, tmp_path / "flat.nii")
    source = read_image(tmp_path / "flat.nii")
    assert source.pixels.shape == (1, 5, 6)
    write_image(source, np.ones((1, 10, 12), np.float32), tmp_path / "out.nii", 2)
    written = nibabel.load(tmp_path / "out.nii")
    assert written.shape[:2] == (10, 12) and written.header.get_zooms()[:2] == pytest.approx((0.25, 0.25))


def test_tiling_affine_keeps_the_field_of_view_where_nibabels_rescale_affine_shifts_it():
    from nibabel.affines import apply_affine, rescale_affine, voxel_sizes

    from mrisr.scans.medical_io import tiling_affine

    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    affine[:3, 3] = [10.0, -20.0, 5.0]
    shape, factors = np.array([11, 12, 7]), np.array([2, 2, 1])
    new = tiling_affine(affine, factors)
    # The outer faces of the first and last voxels are where they were, along every axis.
    np.testing.assert_allclose(apply_affine(new, np.full(3, -0.5)), apply_affine(affine, np.full(3, -0.5)))
    np.testing.assert_allclose(apply_affine(new, shape * factors - 0.5), apply_affine(affine, shape - 0.5))
    nibabel_affine = rescale_affine(affine, shape, voxel_sizes(affine) / factors, shape * factors)
    assert np.abs(nibabel_affine - new).max() == 0.125  # a quarter of an old 0.5 mm voxel at x2
