"""upscale.py as a user runs it: NIfTI, DICOM, PNG and .npy through a small trained-shape model."""

import numpy as np
import pytest

from tests.conftest import run_script, write_dicom


@pytest.fixture(scope="module")
def espcn_file(tmp_path_factory):
    from mrisr.nets.models import build_cnn

    path = tmp_path_factory.mktemp("models") / "espcn.keras"
    build_cnn("espcn", 25, 50, 4).save(path)
    return path


def test_upscales_nifti_dicom_png_and_npy(espcn_file, tmp_path, capsys):
    import nibabel
    import pydicom
    from PIL import Image

    rng = np.random.default_rng(0)
    nibabel.save(nibabel.Nifti1Image(rng.random((10, 12, 3)).astype(np.float32), np.diag([2.0, 2.0, 4.0, 1])),
                 tmp_path / "volume.nii.gz")
    write_dicom(tmp_path / "slice.dcm", rng.integers(0, 4000, size=(16, 20)))
    Image.fromarray(rng.integers(0, 256, size=(13, 7)).astype(np.uint8)).save(tmp_path / "picture.png")
    np.save(tmp_path / "array.npy", rng.random((9, 9)))
    for name, output in (("volume.nii.gz", "out.nii.gz"), ("slice.dcm", "out.dcm"), ("picture.png", "out.png"),
                         ("array.npy", "out.npy")):
        code, out, err = run_script("upscale", [str(espcn_file), str(tmp_path / name), str(tmp_path / output),
                                                "--quiet"], capsys)
        assert code == 0, err
        assert "x2 with espcn" in out
    volume = nibabel.load(tmp_path / "out.nii.gz")
    assert volume.shape == (20, 24, 3) and volume.header.get_zooms() == pytest.approx((1.0, 1.0, 4.0))
    assert pydicom.dcmread(tmp_path / "out.dcm").pixel_array.shape == (32, 40)
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (26, 14)
    assert np.load(tmp_path / "out.npy").shape == (18, 18)


def test_bad_input_model_or_output_exit_2_with_one_line(espcn_file, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    np.save(tmp_path / "array.npy", np.zeros((4, 4)))
    (tmp_path / "broken.keras").write_bytes(b"nonsense")
    cases = [
        ([str(espcn_file), str(tmp_path / "notes.txt"), str(tmp_path / "o.png")], "unsupported input"),
        ([str(espcn_file), str(tmp_path / "missing.png"), str(tmp_path / "o.png")], "does not exist"),
        ([str(tmp_path / "broken.keras"), str(tmp_path / "array.npy"), str(tmp_path / "o.npy")], "cannot load"),
        ([str(espcn_file), str(tmp_path / "array.npy"), str(tmp_path / "o.dcm")], "cannot write a .npy array as o.dcm"),
        (["bicubic", str(tmp_path / "array.npy"), str(tmp_path / "o.npy"), "--scale", "1"], "from 2 to 64"),
    ]
    for argv, message in cases:
        code, out, err = run_script("upscale", argv, capsys)
        assert code == 2 and message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["series", "enhanced"])
def test_a_full_disk_while_writing_dicom_is_one_line_and_leaves_nothing(tmp_path, kind, monkeypatch, capsys):
    """pydicom re-raises a write's 'No space left on device' with its tag and a traceback in the message:
    before, that traceback was the command's error line."""
    import errno
    import io

    import pydicom

    from tests.conftest import write_multiframe, write_series

    volume = np.random.default_rng(2).integers(0, 3000, size=(8, 8, 5)).astype(np.uint16)
    source = tmp_path / ("series" if kind == "series" else "enhanced.dcm")
    if kind == "series":
        write_series(source, volume)
    else:
        write_multiframe(source, volume, [0, 1, 2, 3, 4])
    output = tmp_path / ("out" if kind == "series" else "out.dcm")
    writes = {"to files": 0}
    original = pydicom.filewriter.write_data_element

    def disk_fills(fp, element, *arguments, **options):
        if not isinstance(getattr(fp, "parent", None), io.BytesIO):  # the check before the work writes to memory
            writes["to files"] += 1
            if writes["to files"] > 20:
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(fp, element, *arguments, **options)

    monkeypatch.setattr(pydicom.filewriter, "write_data_element", disk_fills)
    code, out, err = run_script("upscale", ["bicubic", str(source), str(output), "--scale", "2", "--quiet"], capsys)
    assert code == 2 and err == f"error: {output}: no space left on the device (nothing was replaced)\n", err
    assert sorted(path.name for path in tmp_path.iterdir()) == [source.name]
