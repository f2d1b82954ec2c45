"""DICOM: series ordered by position, every slice checked against the first, multi-frame files, and
the geometry written for finer grids (mrisr/scans/dicom.py). Built with pydicom in the tests."""

import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.scans.geometry import tiling_affine
from mrisr.scans.scan import read_scan, write_scan
from tests.conftest import OBLIQUE, dicom_dataset, write_dicom, write_multiframe, write_series


def lps_positions(datasets):
    return np.array([[float(v) for v in d.ImagePositionPatient] for d in datasets])


def test_a_series_is_ordered_by_position_and_written_finer_across_slices_with_new_uids(tmp_path):
    import pydicom

    volume = np.random.default_rng(5).integers(0, 3000, size=(10, 12, 6)).astype(np.uint16)
    volume[0, 0] = 1000 + np.arange(6)  # a marker of each slice's order
    normal = write_series(tmp_path / "series", volume)
    scan = read_scan(tmp_path / "series")
    assert scan.kind == "dicom-series" and scan.data.shape == (10, 12, 6) and scan.slice_axis == 2
    assert scan.data[0, 0].tolist() == [1000, 1001, 1002, 1003, 1004, 1005]
    assert scan.spacing == pytest.approx((0.8, 0.7, 3.0)) and scan.thickness == pytest.approx(2.5)
    thin = np.repeat(scan.data, 2, axis=2)
    write_scan(scan, thin, tmp_path / "out", (1, 1, 2), "through-plane x2")
    written = [pydicom.dcmread(p) for p in sorted((tmp_path / "out").iterdir())]
    assert len(written) == 12
    along = lps_positions(written) @ normal
    first = float(np.dot(normal, [10.0, -5.0, 7.0]))
    assert along == pytest.approx([first + 3.0 * ((k + 0.5) / 2 - 0.5) for k in range(12)], abs=1e-4)
    assert {float(d.SliceThickness) for d in written} == {1.5} == {float(d.SpacingBetweenSlices) for d in written}
    assert [float(d.SliceLocation) for d in written] == pytest.approx(list(along), abs=1e-4)
    assert len({d.SOPInstanceUID for d in written}) == 12 and len({d.SeriesInstanceUID for d in written}) == 1
    originals = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "series").iterdir()}
    assert not originals & {d.SOPInstanceUID for d in written}
    assert written[0].SeriesInstanceUID != scan.header[0].SeriesInstanceUID
    np.testing.assert_array_equal(np.stack([d.pixel_array for d in written], axis=-1), thin)
    again = read_scan(tmp_path / "out")
    assert again.spacing == pytest.approx((0.8, 0.7, 1.5))
    np.testing.assert_allclose(again.affine, tiling_affine(scan.affine, (1, 1, 2)), atol=1e-5)


def test_a_series_upscaled_in_plane_moves_each_first_pixel_so_the_new_pixels_tile_the_old(tmp_path):
    import pydicom

    volume = np.random.default_rng(6).integers(0, 3000, size=(6, 5, 4)).astype(np.uint16)
    write_series(tmp_path / "series", volume)
    scan = read_scan(tmp_path / "series")
    write_scan(scan, np.repeat(np.repeat(scan.data, 4, 0), 4, 1), tmp_path / "out", (4, 4, 1), "x4")
    written = sorted((pydicom.dcmread(p) for p in (tmp_path / "out").iterdir()), key=lambda d: d.InstanceNumber)
    row_direction, column_direction = np.array(OBLIQUE[:3]), np.array(OBLIQUE[3:])
    for k, dataset in enumerate(written):
        old_first = lps_positions([scan.header[k]])[0]
        # 3/8 of an old pixel back along the rows (0.8 mm apart) and the columns (0.7 mm apart)
        expected = old_first - 0.375 * 0.8 * column_direction - 0.375 * 0.7 * row_direction
        np.testing.assert_allclose(lps_positions([dataset])[0], expected, atol=1e-5)
        assert [float(v) for v in dataset.PixelSpacing] == pytest.approx([0.2, 0.175])
        assert float(dataset.SliceThickness) == 2.5  # in-plane: the slices are as thick as before


def test_a_multiframe_file_is_ordered_by_position_and_written_with_thin_frames(tmp_path):
    import pydicom

    volume = np.random.default_rng(6).integers(0, 3000, size=(8, 9, 5)).astype(np.uint16)
    volume[0, 0] = 1000 + np.arange(5)
    write_multiframe(tmp_path / "multi.dcm", volume, [3, 0, 4, 1, 2])
    scan = read_scan(tmp_path / "multi.dcm")
    assert scan.kind == "dicom-multiframe" and scan.data[0, 0].tolist() == [1000, 1001, 1002, 1003, 1004]
    assert scan.spacing == pytest.approx((0.9, 0.8, 3.0)) and scan.thickness == pytest.approx(3.0)
    thin = np.repeat(scan.data, 3, axis=2)
    write_scan(scan, thin, tmp_path / "thin.dcm", (1, 1, 3), "through-plane x3")
    written = pydicom.dcmread(tmp_path / "thin.dcm")
    assert int(written.NumberOfFrames) == 15 and written.SOPInstanceUID != scan.header.SOPInstanceUID
    np.testing.assert_array_equal(np.moveaxis(written.pixel_array, 0, -1), thin)
    frames = written.PerFrameFunctionalGroupsSequence
    assert [int(f.FrameContentSequence[0].InStackPositionNumber) for f in frames] == list(range(1, 16))
    assert [int(f.FrameContentSequence[0].DimensionIndexValues) for f in frames] == list(range(1, 16))
    measures = written.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert float(measures.SliceThickness) == pytest.approx(1.0) and float(measures.SpacingBetweenSlices) == 1.0
    again = read_scan(tmp_path / "thin.dcm")
    assert again.spacing == pytest.approx((0.9, 0.8, 1.0))
    np.testing.assert_allclose(again.affine, tiling_affine(scan.affine, (1, 1, 3)), atol=1e-5)
    # in-plane x2: the spacing of the shared (and any per-frame) pixel measures is halved
    write_scan(scan, np.repeat(np.repeat(scan.data, 2, 0), 2, 1), tmp_path / "x2.dcm", (2, 2, 1), "x2")
    written = pydicom.dcmread(tmp_path / "x2.dcm")
    measures = written.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == pytest.approx([0.45, 0.4])
    assert float(measures.SliceThickness) == 3.0
    np.testing.assert_allclose(read_scan(tmp_path / "x2.dcm").affine, tiling_affine(scan.affine, (2, 2, 1)), atol=1e-5)


def series_files(folder):
    return sorted(folder.iterdir())


def test_a_slice_that_disagrees_with_the_first_is_refused_naming_its_file(tmp_path):
    import pydicom

    def fresh(name):
        folder = tmp_path / name
        write_series(folder, np.random.default_rng(1).integers(0, 3000, size=(6, 5, 6)).astype(np.uint16))
        return folder, series_files(folder)[3]

    for name, change, message in (
            ("spacing", lambda d: setattr(d, "PixelSpacing", [0.9, 0.9]), "has PixelSpacing"),
            ("rotated", lambda d: setattr(d, "ImageOrientationPatient",  # in-plane rotation, same normal
                                          list(OBLIQUE[3:]) + [-v for v in OBLIQUE[:3]]), "oriented otherwise"),
            ("series", lambda d: setattr(d, "SeriesInstanceUID", pydicom.uid.generate_uid()), "SeriesInstanceUID"),
            ("type", lambda d: setattr(d, "ImageType", ["ORIGINAL", "PRIMARY", "P", "ND"]), "ImageType"),
            ("bits", lambda d: setattr(d, "PixelRepresentation", 1), "PixelRepresentation")):
        folder, victim = fresh(name)
        dataset = pydicom.dcmread(victim)
        change(dataset)
        dataset.save_as(victim)
        with pytest.raises(UserError, match=message) as error:
            read_scan(folder)
        assert victim.name in str(error.value) and "\n" not in str(error.value)


def test_a_corrupt_or_truncated_slice_is_refused_naming_its_file_and_other_files_are_said(tmp_path):
    def fresh(name):
        folder = tmp_path / name
        write_series(folder, np.random.default_rng(2).integers(0, 3000, size=(6, 5, 10)).astype(np.uint16))
        return folder, series_files(folder)[-1]

    folder, victim = fresh("cut_header")
    victim.write_bytes(victim.read_bytes()[:300])  # the header cut short: a corrupt last file
    with pytest.raises(UserError, match=f"{victim.name}: a DICOM image without its pixel data"):
        read_scan(folder)
    folder, victim = fresh("cut_pixels")
    victim.write_bytes(victim.read_bytes()[:-20])  # pixel data cut short
    with pytest.raises(UserError, match=f"{victim.name}: its pixel data cannot be read"):
        read_scan(folder)
    folder, victim = fresh("garbage")
    victim.write_bytes(victim.read_bytes()[:132] + b"\xff" * 200)  # the preamble, then garbage
    with pytest.raises(UserError, match=f"cannot read .*{victim.name}"):
        read_scan(folder)
    folder, _ = fresh("with_notes")
    (folder / "README.txt").write_text("not an image")
    said = []
    scan = read_scan(folder, say=said.append)
    assert scan.data.shape == (6, 5, 10) and "1 file(s)" in said[0] and "README.txt" in said[0]


def test_a_sheared_stack_is_refused(tmp_path):
    """Positions stepping (0, 1.5, 4) mm with the normal (0, 0, 1), as a gantry tilt gives."""
    folder = tmp_path / "tilted"
    folder.mkdir()
    series = "1.2.826.0.1.3680043.8.498.77"
    for k in range(10):
        write_dicom(folder / f"{k:02d}.dcm", np.full((6, 5), k, np.uint16), orientation=(1, 0, 0, 0, 1, 0),
                    position=(0.0, 1.5 * k, 4.0 * k), thickness=4.0, series=series)
    with pytest.raises(UserError, match="do not run along their normal .*gantry tilt of about 20.6 degrees"):
        read_scan(folder)


def test_uneven_or_repeated_positions_are_refused(tmp_path):
    for name, steps in (("uneven", [0, 3, 6, 10, 13]), ("repeated", [0, 3, 3, 6, 9])):
        folder = tmp_path / name
        folder.mkdir()
        for k, z in enumerate(steps):
            write_dicom(folder / f"{k}.dcm", np.zeros((4, 4), np.uint16), orientation=(1, 0, 0, 0, 1, 0),
                        position=(0, 0, z), series="1.2.3." + str(len(name)))
        with pytest.raises(UserError, match="not evenly spaced|same position"):
            read_scan(folder)


def test_frames_without_one_grid_are_upscaled_each_in_its_own_place_and_refused_where_one_grid_is_needed(tmp_path):
    """Two volumes at the same positions (two echoes, or magnitude and phase) in one enhanced file: each
    frame upscaled in-plane where it is; NIfTI and upscaling across slices, which need one grid, refused."""
    import pydicom

    from mrisr.scans.scan import output_kind
    from mrisr.scans.through_plane import make_plan

    volume = np.random.default_rng(3).integers(0, 3000, size=(6, 5, 8)).astype(np.uint16)
    path = tmp_path / "two_volumes.dcm"
    write_multiframe(path, volume, list(range(8)), orientation=OBLIQUE)
    dataset = pydicom.dcmread(path)
    for k in range(4, 8):  # the second volume at the first one's positions
        dataset.PerFrameFunctionalGroupsSequence[k].PlanePositionSequence[0].ImagePositionPatient = \
            dataset.PerFrameFunctionalGroupsSequence[k - 4].PlanePositionSequence[0].ImagePositionPatient
    dataset.save_as(path)
    scan = read_scan(path)
    assert scan.affine is None and "same position" in scan.no_grid and scan.frame_order.tolist() == list(range(8))
    np.testing.assert_array_equal(scan.data, volume)
    write_scan(scan, np.repeat(np.repeat(volume, 2, 0), 2, 1), tmp_path / "x2.dcm", (2, 2, 1), "x2")
    written = pydicom.dcmread(tmp_path / "x2.dcm")
    row_direction, column_direction = np.array(OBLIQUE[:3]), np.array(OBLIQUE[3:])
    for before, after in zip(dataset.PerFrameFunctionalGroupsSequence, written.PerFrameFunctionalGroupsSequence):
        old = lps_positions([before.PlanePositionSequence[0]])[0]
        expected = old - 0.25 * 0.9 * column_direction - 0.25 * 0.8 * row_direction  # a quarter of an old pixel
        np.testing.assert_allclose(lps_positions([after.PlanePositionSequence[0]])[0], expected, atol=1e-6)
    with pytest.raises(UserError, match="same position.*NIfTI needs one grid"):
        output_kind(scan, tmp_path / "out.nii")
    with pytest.raises(UserError, match="same position.*needs one stack"):
        make_plan(scan, factor=2)
    del dataset.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence
    dataset.save_as(path)
    with pytest.raises(UserError, match="frame 3 has no ImagePositionPatient"):
        output_kind(read_scan(path), tmp_path / "out.nii")


def test_a_single_dicom_image_with_geometry_has_an_affine():
    dataset = dicom_dataset(np.zeros((4, 6), np.uint16), (0.5, 0.6), orientation=OBLIQUE, position=(1, 2, 3),
                            thickness=5.0)
    assert dataset.SliceThickness == 5.0


def test_a_legacy_multiframe_file_upscaled_in_plane_moves_its_first_pixel_too(tmp_path):
    """Frames without per-frame geometry share one ImagePositionPatient: before, PixelSpacing was halved but
    the position not moved (half a new pixel off); across slices it has no stack (before: '.npy volume')."""
    import pydicom

    from mrisr.scans.through_plane import make_plan

    dataset = dicom_dataset(np.zeros((6, 5), np.uint16), (0.8, 0.7), orientation=OBLIQUE, position=(10, -5, 7))
    dataset.NumberOfFrames = 4
    dataset.PixelData = np.random.default_rng(7).integers(0, 3000, size=(4, 6, 5)).astype(np.uint16).tobytes()
    dataset.save_as(tmp_path / "legacy.dcm", enforce_file_format=True)
    scan = read_scan(tmp_path / "legacy.dcm")
    assert scan.kind == "dicom-multiframe" and scan.data.shape == (6, 5, 4) and scan.affine is None
    write_scan(scan, np.repeat(np.repeat(scan.data, 2, 0), 2, 1), tmp_path / "x2.dcm", (2, 2, 1), "x2")
    written = pydicom.dcmread(tmp_path / "x2.dcm")
    expected = np.array([10, -5, 7]) - 0.25 * 0.8 * np.array(OBLIQUE[3:]) - 0.25 * 0.7 * np.array(OBLIQUE[:3])
    np.testing.assert_allclose(lps_positions([written])[0], expected, atol=1e-9)
    with pytest.raises(UserError, match="multi-frame file without per-frame positions.*needs one stack"):
        make_plan(scan, factor=2)


def test_a_slice_without_the_128_byte_preamble_is_a_slice_of_the_series(tmp_path):
    """Valid DICOM without the preamble exists (written by older systems): before, such a file was 'left
    out' with a note, and its slab was lost."""
    import pydicom

    volume = np.random.default_rng(8).integers(0, 3000, size=(6, 5, 5)).astype(np.uint16)
    write_series(tmp_path / "series", volume)
    victim = series_files(tmp_path / "series")[2]
    dataset = pydicom.dcmread(victim)
    dataset.preamble = None
    pydicom.dcmwrite(victim, dataset, enforce_file_format=False)
    assert victim.read_bytes()[128:132] != b"DICM"
    said = []
    scan = read_scan(tmp_path / "series", say=said.append)
    assert scan.data.shape == (6, 5, 5) and not said
    np.testing.assert_array_equal(np.sort(scan.data.reshape(-1, 5), axis=1), np.sort(volume.reshape(-1, 5), axis=1))


def test_what_cannot_be_written_is_refused_before_any_learning(tmp_path, monkeypatch):
    """A series of 32-bit pixels asked back as DICOM: before, the error came from pydicom after the work."""
    import pydicom

    from mrisr.scans import through_plane
    from mrisr.scans.upscale_file import upscale_file

    write_series(tmp_path / "series", np.zeros((8, 8, 6), np.uint16), step=4.0)
    for path in series_files(tmp_path / "series"):
        dataset = pydicom.dcmread(path)
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 32, 32, 31
        dataset.PixelData = np.full((8, 8), 70000, np.uint32).tobytes()
        dataset.save_as(path)

    def no_learning(*arguments, **options):
        raise AssertionError("learning started")

    monkeypatch.setattr(through_plane, "train_network", no_learning)
    with pytest.raises(UserError, match="uint32 pixels: this tool writes DICOM pixels of 8 or 16 bits"):
        upscale_file("self", tmp_path / "series", tmp_path / "out", say=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_empty_or_odd_optional_numbers_are_handled_or_refused_in_one_line(tmp_path):
    """Empty SliceThickness and SpacingBetweenSlices are legal (absent); ImagerPixelSpacing without
    PixelSpacing is divided like it; a negative or textual PixelSpacing is refused in one line."""
    import pydicom

    dataset = dicom_dataset(np.zeros((6, 5), np.uint16), (0.8, 0.7), orientation=OBLIQUE, position=(1, 2, 3))
    dataset.SliceThickness, dataset.SpacingBetweenSlices = "", ""
    dataset.save_as(tmp_path / "empty.dcm", enforce_file_format=True)
    scan = read_scan(tmp_path / "empty.dcm")
    assert scan.thickness is None and scan.spacing == pytest.approx((0.8, 0.7))
    assert np.linalg.norm(scan.affine[:3, 2]) == pytest.approx(1.0)  # a slice of no known depth: 1 mm
    del dataset.PixelSpacing
    dataset.ImagerPixelSpacing = [0.8, 0.7]
    dataset.save_as(tmp_path / "imager.dcm", enforce_file_format=True)
    scan = read_scan(tmp_path / "imager.dcm")
    assert scan.affine is None  # no spacing in the patient: no place in space
    write_scan(scan, np.zeros((12, 10), np.uint16), tmp_path / "imager_x2.dcm", (2, 2), "x2")
    assert [float(v) for v in pydicom.dcmread(tmp_path / "imager_x2.dcm").ImagerPixelSpacing] == [0.4, 0.35]
    for name, value, message in (("negative", b"-0.8\\0.7", "must be above 0"), ("text", b"a\\b     ", "not 2 number")):
        path = write_dicom(tmp_path / f"{name}.dcm", np.zeros((6, 5), np.uint16), (0.8, 0.7), orientation=OBLIQUE,
                           position=(1, 2, 3))
        path.write_bytes(path.read_bytes().replace(b"0.8\\0.7 ", value))  # pydicom itself refuses to write these
        with pytest.raises(UserError, match=f"{name}.dcm: PixelSpacing is .*{message}"):
            read_scan(path)
