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
