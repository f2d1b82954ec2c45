"""Real scanners' files, none written by this project (Philips, Siemens: enhanced multi-frame with private
tags, mosaics, overlays, icons, CSA headers, phase images, empty optional tags), upscaled and read back by
independent readers: dcm2niix must place the output's voxels where the input's tile them, and find nothing
new to warn about; dicom3tools' validator must find no error the input did not have."""

import copy

import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.geometry import dicom_fields, tiling_affine
from mrisr.scans.scan import read_scan, write_scan
from mrisr.scans.upscale_file import upscale_file
from tests.conftest import (
    assert_valid_derived_dicom,
    dciodvfy_errors,
    dcm2niix_images,
    needs_dcm2niix,
    nibabel_file,
    vendor_file,
)

pytestmark = needs_dcm2niix


def quiet(line):
    pass


def assert_tiles(source, output, factors, atol=1e-3):
    """dcm2niix's image of an output against its image of the source: the output's voxels tile the source's
    (its axes, in whatever order dcm2niix gives them, `factors` times finer; the field of view where it was)."""
    along = [output.shape[axis] / source.shape[axis] for axis in range(3)]
    assert sorted(along) == sorted(factors) and output.shape[3:] == source.shape[3:], (source.shape, output.shape)
    np.testing.assert_allclose(output.affine, tiling_affine(source.affine, [int(f) for f in along]), atol=atol)


def only_image(images):
    assert len(images) == 1, [name for name, _ in images]
    return images[0][1]


def test_a_philips_enhanced_file_upscaled_in_plane_keeps_its_private_per_frame_copies_true(tmp_path):
    """nibabel's Philips MPRAGE (176 frames): before, its private copies of PixelSpacing and position
    (2005,140F) stayed as they were; dcm2niix warned 'PixelSpacing varies' and put the far corner 361 mm off."""
    import pydicom

    source = nibabel_file("philips_mprage.dcm.gz")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    before, _ = dcm2niix_images(source, tmp_path / "in")
    after, warnings = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")
    assert not warnings, warnings
    assert_tiles(only_image(before), only_image(after), (2, 2, 1))
    assert_private_copies_moved_with_the_frames(pydicom.dcmread(source), pydicom.dcmread(tmp_path / "x2.dcm"), 1)
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    assert not dciodvfy_errors(tmp_path / "x2.dcm") - dciodvfy_errors(source)


def assert_private_copies_moved_with_the_frames(before, after, depth):
    """Philips's private copy of each frame's position (which sits a fixed offset from the standard one in
    this file) moved as far as the frame (the first of the `depth` thin frames of each), and its pixel
    spacing the frame's."""
    def position(holder):
        return np.array([float(v) for v in holder.ImagePositionPatient])

    for old, new in zip(before.PerFrameFunctionalGroupsSequence, after.PerFrameFunctionalGroupsSequence[::depth]):
        moved = position(new.PlanePositionSequence[0]) - position(old.PlanePositionSequence[0])
        mirror_moved = position(new[0x2005, 0x140F][0]) - position(old[0x2005, 0x140F][0])
        np.testing.assert_allclose(mirror_moved, moved, atol=1e-5)
        assert [float(v) for v in new[0x2005, 0x140F][0].PixelSpacing] == \
            [float(v) for v in new.PixelMeasuresSequence[0].PixelSpacing]


def test_a_philips_enhanced_file_made_finer_across_slices_is_one_volume_of_twice_the_slices(tmp_path):
    """Before, dcm2niix read two volumes of 176 slices: the Philips slice numbers (2001,100A) repeated."""
    import pydicom

    source = nibabel_file("philips_mprage.dcm.gz")
    scan = read_scan(source)
    write_scan(scan, np.repeat(scan.data, 2, axis=2), tmp_path / "thin.dcm", (1, 1, 2), "x2")
    before, _ = dcm2niix_images(source, tmp_path / "in")
    after, warnings = dcm2niix_images(tmp_path / "thin.dcm", tmp_path / "out")
    assert not warnings, warnings
    assert_tiles(only_image(before), only_image(after), (1, 1, 2))
    written = pydicom.dcmread(tmp_path / "thin.dcm")
    numbers = [int(frame[0x2005, 0x140F][0][0x2001, 0x100A].value)
               for frame in written.PerFrameFunctionalGroupsSequence]
    assert numbers == list(range(1, 353)) and int(written[0x2001, 0x1018].value) == 352
    assert_private_copies_moved_with_the_frames(pydicom.dcmread(source), written, 2)
    assert_valid_derived_dicom(tmp_path / "thin.dcm")
    assert not dciodvfy_errors(tmp_path / "thin.dcm") - dciodvfy_errors(source)


def test_an_overlay_follows_the_pixels_so_the_marked_lesion_stays_where_it_was(tmp_path):
    """pydicom-data's Siemens MPR with an overlay plane: before, OverlayRows/Columns stayed 484 on a 968^2
    image and the lesion mark landed 151 mm away at half size."""
    source = vendor_file("MR-SIEMENS-DICOM-WithOverlays.dcm")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    before, _ = dcm2niix_images(source, tmp_path / "in")
    after, warnings = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")
    assert not warnings and len(before) == len(after) == 2  # the image, and the overlay as its own volume
    (_, image), (_, overlay) = before
    (_, finer_image), (_, finer_overlay) = after
    assert_tiles(image, finer_image, (2, 2, 1))
    assert_tiles(overlay, finer_overlay, (2, 2, 1))
    marked = np.asarray(overlay.dataobj)
    assert marked.sum() > 100
    np.testing.assert_array_equal(np.asarray(finer_overlay.dataobj), np.repeat(np.repeat(marked, 2, 0), 2, 1))
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    assert not dciodvfy_errors(tmp_path / "x2.dcm") - dciodvfy_errors(source)


def test_a_siemens_mosaic_is_read_as_its_volume_and_each_slice_upscaled_alone(tmp_path):
    """heudiconv's Siemens EPI mosaic (35 slices of 64x64 in one 384x384 image): before, upscaled as one
    picture, a single 768x768 slice 746 mm off, its tiles bleeding into each other."""
    import nibabel
    import pydicom

    from mrisr.scans.dicom import siemens_csa, vendors
    from mrisr.scans.upscaling import BicubicUpscaler, upscale_pixels

    source = vendor_file("axasc35.dcm")
    scan = read_scan(source)
    assert scan.kind == "dicom-mosaic" and scan.data.shape == (64, 64, 35)
    upscale_file("bicubic", source, tmp_path / "x2.nii", scale=2, say=quiet)
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    before, _ = dcm2niix_images(source, tmp_path / "in")
    after, warnings = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")
    assert not warnings, warnings
    assert_tiles(only_image(before), only_image(after), (2, 2, 1))
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    ours = nibabel.load(tmp_path / "x2.nii")
    assert ours.shape == (128, 128, 35)
    np.testing.assert_allclose(nibabel.as_closest_canonical(ours).affine,
                               nibabel.as_closest_canonical(only_image(after)).affine, atol=1e-3)
    written = pydicom.dcmread(tmp_path / "x2.dcm")  # Siemens's two copies of the position moved with it
    position = [float(v) for v in written.ImagePositionPatient]
    csa = vendors.private(written, 0x0029, vendors.SIEMENS_CSA, 0x10).value
    assert siemens_csa.item_numbers(csa, "SlicePosition_PCS") == pytest.approx(position, abs=1e-6)
    assert [float(v) for v in vendors.private(written, 0x0019, vendors.SIEMENS_MR, 0x15).value] == \
        pytest.approx(position, abs=1e-6)
    alone = upscale_pixels(BicubicUpscaler(2), scan.data[:, :, 17:18].transpose(2, 0, 1))[0].astype(float)
    difference = np.abs(np.asarray(ours.dataobj)[:, :, 17] - alone)  # before: 4.2% of the range at the tiles' edges
    assert difference.max() <= 0.005 * np.ptp(scan.data)  # no other tile in it (the rest: the volume's own range)
    with pytest.raises(UserError, match="cannot stay a mosaic"):
        write_scan(scan, np.repeat(scan.data, 2, axis=2), tmp_path / "thin.dcm", (1, 1, 2), "x2")


def siemens_series(mosaic, folder, descending=True, peak=None):
    """A Siemens 2-D series of classic files, one per slice of a real mosaic: each the mosaic's header with
    its slice's pixels (scaled to reach `peak` where given) and position, its CSA header numbering the
    slices as acquired (ProtocolSliceNumber, from the top when `descending`, with InstanceNumber)."""
    import pydicom
    from pydicom.valuerep import format_number_as_ds

    from mrisr.scans.dicom import siemens_csa, vendors

    folder.mkdir()
    source, scan = pydicom.dcmread(mosaic), read_scan(mosaic)
    series, count = pydicom.uid.generate_uid(), scan.data.shape[2]
    volume = scan.data if peak is None else np.rint(scan.data * (peak / scan.data.max())).astype(scan.data.dtype)
    for k in range(count):
        dataset = copy.deepcopy(source)
        dataset.ImageType = [value for value in source.ImageType if value != "MOSAIC"]
        position, _, _, location = dicom_fields(scan.affine, k)
        number = count - k if descending else k + 1
        dataset.ImagePositionPatient = [format_number_as_ds(float(v)) for v in position]
        dataset.SliceLocation = format_number_as_ds(float(location))
        dataset.InstanceNumber, dataset.SeriesInstanceUID = number, series
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        header = vendors.private(dataset, 0x0029, vendors.SIEMENS_CSA, 0x10)
        header.value = siemens_csa.rewrite(header.value, {"ProtocolSliceNumber": [number - 1],
                                                          "NumberOfImagesInMosaic": [1],
                                                          "SlicePosition_PCS": list(position)})
        for offset in (0x0A, 0x15, 0x29):  # the mosaic's slice count, position and slice times
            del dataset[vendors.private(dataset, 0x0019, vendors.SIEMENS_MR, offset).tag]
        dataset.set_pixel_data(np.ascontiguousarray(volume[:, :, k]), "MONOCHROME2", int(dataset.BitsStored),
                               generate_instance_uid=False)
        dataset.save_as(folder / f"{number:04d}.dcm", enforce_file_format=True)
    return folder


def test_a_siemens_series_keeps_no_csa_header_that_numbers_slices_it_no_longer_has(tmp_path):
    """A Siemens 2-D series numbered from the top: before, the CSA headers of the thin slices (and of the
    in-plane output, renumbered by position) still numbered the slices as acquired, and dcm2niix warned
    "Weird CSA 'ProtocolSliceNumber' ... VALIDATE SLICETIMING" on the output but not on the input."""
    from tests.test_dcm2niix import through_plane_file

    source = siemens_series(vendor_file("axasc35.dcm"), tmp_path / "series")
    before, source_warnings = dcm2niix_images(source, tmp_path / "in")
    assert not source_warnings and only_image(before).shape == (64, 64, 35)
    upscale_file(through_plane_file(tmp_path, 2), source, tmp_path / "thin", self_ensemble=False, say=quiet)
    upscale_file("bicubic", source, tmp_path / "x2", scale=2, say=quiet)
    for name, factors in (("thin", (1, 1, 2)), ("x2", (2, 2, 1))):
        after, warnings = dcm2niix_images(tmp_path / name, tmp_path / f"{name}_out")
        assert not warnings, (name, warnings)
        assert_tiles(only_image(before), only_image(after), factors)
        assert_valid_derived_dicom(tmp_path / name)
        assert not dciodvfy_errors(tmp_path / name) - dciodvfy_errors(source)


def test_a_philips_file_of_two_volumes_is_upscaled_frame_by_frame(tmp_path):
    """Two volumes at the same positions (as a field map's magnitude and phase), made from the real Philips
    file: before, refused ('two frames lie at the same position'), though in-plane upscaling needs no
    single stack."""
    import pydicom

    original = pydicom.dcmread(nibabel_file("philips_mprage.dcm.gz"))
    pixels = original.pixel_array[:12]
    items = [original.PerFrameFunctionalGroupsSequence[k] for k in range(12)]
    second = copy.deepcopy(items)
    for item in second:
        item.FrameContentSequence[0].TemporalPositionIndex = 2
    original.PerFrameFunctionalGroupsSequence = pydicom.sequence.Sequence(items + second)
    original[0x2001, 0x1018].value = 12  # slices in a volume, as Philips says it
    original[0x2001, 0x105F].value[0][0x2001, 0x102D].value = 12
    original.set_pixel_data(np.ascontiguousarray(np.concatenate([pixels, pixels.max() - pixels])), "MONOCHROME2",
                            int(original.BitsStored), generate_instance_uid=False)
    source = tmp_path / "two_volumes.dcm"
    original.save_as(source, enforce_file_format=True)
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    before, _ = dcm2niix_images(source, tmp_path / "in")
    after, warnings = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")
    assert not warnings and only_image(before).shape == (256, 256, 12, 2)
    assert_tiles(only_image(before), only_image(after), (2, 2, 1))
    np.testing.assert_array_equal(np.asarray(only_image(after).dataobj)[::2, ::2, :, 0] > 0,
                                  np.asarray(only_image(before).dataobj)[:, :, :, 0] > 0)


def test_a_phase_image_stays_a_phase_image(tmp_path):
    """heudiconv's Siemens field-map phase (ImageType ORIGINAL\\PRIMARY\\P\\ND): before, the output's ImageType
    was DERIVED\\SECONDARY, and dcm2niix named it a magnitude image."""
    import pydicom

    source = vendor_file("siemens_phase.dcm")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    written = pydicom.dcmread(tmp_path / "x2.dcm")
    assert list(written.ImageType) == ["DERIVED", "PRIMARY", "P", "ND"]
    (name, image), = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")[0]
    assert name.endswith("_ph.nii")  # dcm2niix's name for a phase image
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    assert not dciodvfy_errors(tmp_path / "x2.dcm") - dciodvfy_errors(source)


def test_a_siemens_mip_with_an_empty_slice_thickness_and_a_jpeg_2000_icon(tmp_path):
    """nibabel's oblique Siemens MIP: an empty SliceThickness (legal DICOM; before, a traceback), JPEG 2000
    pixels with an icon image whose compressed fragments stayed in an uncompressed output (before,
    dciodvfy: 'Dicom dataset read failed')."""
    import pydicom

    source = nibabel_file("slicethickness_empty_string.dcm")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    written = pydicom.dcmread(tmp_path / "x2.dcm")
    icon = written.IconImageSequence[0]
    assert len(icon.PixelData) == icon.Rows * icon.Columns and icon.PhotometricInterpretation == "MONOCHROME2"
    assert int(written[0x6000, 0x0010].value) == written.Rows  # its overlay follows the pixels too
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    errors = dciodvfy_errors(tmp_path / "x2.dcm")
    assert not any("read failed" in error for error in errors), errors
    after, warnings = dcm2niix_images(tmp_path / "x2.dcm", tmp_path / "out")
    assert not warnings and after[0][1].shape[:2] == (768, 768)


def test_a_three_plane_localiser_is_upscaled_each_plane_in_its_place(tmp_path):
    """heudiconv's Siemens enhanced localiser: three frames in three orientations (before, refused)."""
    import pydicom


    source = vendor_file("siemens_localiser.dcm")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    with pytest.raises(UserError, match="oriented otherwise.*NIfTI needs one grid"):
        upscale_file("bicubic", source, tmp_path / "x2.nii", scale=2, say=quiet)
    before = pydicom.dcmread(source)
    after = pydicom.dcmread(tmp_path / "x2.dcm")
    for old, new in zip(before.PerFrameFunctionalGroupsSequence, after.PerFrameFunctionalGroupsSequence):
        orientation = np.array([float(v) for v in old.PlaneOrientationSequence[0].ImageOrientationPatient])
        spacing = [float(v) for v in old.PixelMeasuresSequence[0].PixelSpacing]
        moved = np.array([float(v) for v in new.PlanePositionSequence[0].ImagePositionPatient]) - \
            np.array([float(v) for v in old.PlanePositionSequence[0].ImagePositionPatient])
        np.testing.assert_allclose(moved, -0.25 * (spacing[0] * orientation[3:] + spacing[1] * orientation[:3]),
                                   atol=1e-5)
    assert_valid_derived_dicom(tmp_path / "x2.dcm")
    assert not dciodvfy_errors(tmp_path / "x2.dcm") - dciodvfy_errors(source)


def test_a_12_bit_series_made_finer_keeps_its_values_inside_12_bits(tmp_path):
    """A Siemens 2-D series of 12-bit slices reaching 4095 (heudiconv's EPI slices, scaled to the 12-bit
    top): before, thin values above 4095 were kept (clipped to uint16 only), and pydicom refused to write
    them after all the learning; nothing was written, exit 1."""
    import pydicom

    from tests.test_dcm2niix import through_plane_file

    source = siemens_series(vendor_file("axasc35.dcm"), tmp_path / "series", peak=4095)
    assert read_scan(source).data.max() == 4095 and read_scan(source).value_range == (0, 4095)
    upscale_file(through_plane_file(tmp_path, 2), source, tmp_path / "thin", self_ensemble=False, say=quiet)
    written = [pydicom.dcmread(path) for path in sorted((tmp_path / "thin").iterdir())]
    values = np.stack([dataset.pixel_array for dataset in written])
    assert len(written) == 70 and values.max() == 4095 and int(written[0].BitsStored) == 12
    assert [int(d.LargestImagePixelValue) for d in written] == [int(d.pixel_array.max()) for d in written]


def test_in_plane_the_vendors_slice_location_and_numbering_stay_and_the_pixel_statistics_follow(tmp_path):
    """heudiconv's Siemens phantom: before, SliceLocation was recomputed (it is the vendor's to define;
    nothing moved along the slice) and LargestImagePixelValue kept the source's value."""
    import pydicom

    source = vendor_file("phantom.dcm")
    upscale_file("bicubic", source, tmp_path / "x2.dcm", scale=2, say=quiet)
    before, after = pydicom.dcmread(source), pydicom.dcmread(tmp_path / "x2.dcm")
    assert after.SliceLocation == before.SliceLocation and after.InstanceNumber == before.InstanceNumber
    assert int(after.LargestImagePixelValue) == int(after.pixel_array.max())
    assert int(after.SmallestImagePixelValue) == int(after.pixel_array.min())


def test_positions_and_spacings_are_written_to_sixteen_characters(tmp_path):
    """Before, six decimals: the far corner of a 2048-pixel row 1.5 micrometres off."""
    import pydicom

    from tests.conftest import OBLIQUE, write_dicom

    spacing = (0.123456789012, 0.0987654321098)
    source = write_dicom(tmp_path / "fine.dcm", np.zeros((1024, 1024), np.uint16), spacing, orientation=OBLIQUE,
                         position=(-101.234567890123, 33.3333333333333, 7.77777777777777))
    scan = read_scan(source)
    write_scan(scan, np.zeros((2048, 2048), np.uint16), tmp_path / "x2.dcm", (2, 2), "x2")
    again = read_scan(tmp_path / "x2.dcm")
    corner = np.array([2047, 2047, 0, 1])
    assert np.abs(again.affine @ corner - tiling_affine(scan.affine, (2, 2, 1)) @ corner).max() < 1e-6  # mm
    assert all(len(str(value)) <= 16 for value in pydicom.dcmread(tmp_path / "x2.dcm").PixelSpacing)


def test_a_dicom_series_is_made_finer_along_its_own_slices_without_an_axis(tmp_path):
    """A series whose slices are 3.6 mm apart with 3.25 mm pixels: before, 'nearly isotropic: give --axis',
    though DICOM says which axis its slices run along; only the factor is missing."""
    from mrisr.scans.through_plane import make_plan

    scan = read_scan(siemens_series(vendor_file("axasc35.dcm"), tmp_path / "series"))
    with pytest.raises(UserError, match="only 1.11 times the in-plane pixel size: give `scale`"):
        make_plan(scan)
    plan = make_plan(scan, factor=2)
    assert plan.axis == 2 and plan.profile.factor == 2


def test_a_missing_decoder_is_named_not_called_a_corrupt_file(tmp_path):
    """pydicom-data's enhanced MR in JPEG-LS: without a JPEG-LS decoder installed, before, 'a truncated or
    corrupt file'."""
    import importlib.util


    source = vendor_file("emri_small_jpeg_ls_lossless.dcm")
    if any(importlib.util.find_spec(name) for name in ("gdcm", "jpeg_ls", "libjpeg")):
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(UserError, match="compressed as JPEG-LS Lossless Image Compression and no decoder .*"
                                        "mrisr\\[dicom\\]") as error:
        read_scan(source)
    assert "corrupt" not in str(error.value)
