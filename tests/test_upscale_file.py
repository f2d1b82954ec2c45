"""Whole files through upscale.py and mrisr.upscale_file (mrisr/scans/upscale_file.py): the output of
the kind its suffix asks for, in the input's axis order, with values that never wrap, and a
through-plane result never worse than the cubic spline without a word."""

import numpy as np
import pytest

from tests.conftest import run_script, write_nifti, write_series
from tests.test_through_plane import blob_volume


def test_the_output_suffix_decides_its_kind_and_npy_keeps_the_axis_order(tmp_path, capsys):
    volume = np.random.default_rng(0).integers(0, 1000, size=(16, 12, 3)).astype(np.int16)
    write_nifti(tmp_path / "scan.nii.gz", volume, (1.0, 1.0, 3.0))
    code, _, err = run_script("upscale", ["bicubic", str(tmp_path / "scan.nii.gz"), str(tmp_path / "x2.npy"),
                                          "--quiet"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "x2.npy").shape == (32, 24, 3)  # as the NIfTI's axes, slices along axis 2
    series = tmp_path / "series"
    write_series(series, np.random.default_rng(1).integers(0, 3000, size=(10, 9, 4)).astype(np.uint16))
    code, _, err = run_script("upscale", ["bicubic", str(series), str(tmp_path / "series_x2.npy"), "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "series_x2.npy").is_file() and np.load(tmp_path / "series_x2.npy").shape == (20, 18, 4)
    larger = tmp_path / "larger"
    write_series(larger, np.random.default_rng(1).integers(0, 3000, size=(24, 20, 4)).astype(np.uint16))
    code, _, err = run_script("upscale", ["self", str(larger), str(tmp_path / "thin.npy"), "--steps", "2",
                                          "--mixed-precision", "float32", "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "thin.npy").is_file() and np.load(tmp_path / "thin.npy").shape == (24, 20, 16)


def test_integers_at_their_limits_never_wrap(tmp_path, capsys):
    top = np.iinfo(np.int64).max
    image = np.full((8, 8), top, np.int64)
    image[2:5, 2:5] = 0  # an edge: the cubic overshoots above the maximum there
    np.save(tmp_path / "int64.npy", image)
    code, _, err = run_script("upscale", ["bicubic", str(tmp_path / "int64.npy"), str(tmp_path / "o.npy")], capsys)
    assert code == 0, err
    result = np.load(tmp_path / "o.npy")
    assert result.dtype == np.int64 and result.min() >= 0 and result.max() > top - 2 ** 12  # clipped, not wrapped
    blobs = blob_volume(16).astype(np.float64)
    volume = np.rint(blobs[:, :, ::4] / blobs.max() * 1e6 + (2 ** 31 - 1 - 1.2e6)).astype(np.int32)
    assert volume.min() > 2 ** 30  # near the maximum, not wrapped
    write_nifti(tmp_path / "int32.nii.gz", volume, (1.0, 1.0, 4.0))
    code, _, err = run_script("upscale", ["self", str(tmp_path / "int32.nii.gz"), str(tmp_path / "thin.nii.gz"),
                                          "--steps", "5", "--mixed-precision", "float32", "--quiet"], capsys)
    assert code == 0, err
    import nibabel

    thin = np.asarray(nibabel.load(tmp_path / "thin.nii.gz").dataobj)
    assert thin.dtype == np.int32 and thin.min() > 2 ** 30


def test_self_with_almost_no_learning_is_never_worse_than_the_spline_and_says_so(tmp_path, capsys):
    """--minutes 0.05: the trial alone takes that long, no step is made; the output falls back to (or
    blends with) the cubic spline, and two lines say why."""
    import nibabel

    from mrisr.scans.through_plane import SliceProfile, degrade, spline_upsample

    truth = blob_volume(32, seed=4)
    thick = degrade(truth, 2, SliceProfile(4))
    write_nifti(tmp_path / "thick.nii.gz", thick, (1.0, 1.0, 4.0))
    code, out, err = run_script("upscale", ["self", str(tmp_path / "thick.nii.gz"), str(tmp_path / "thin.nii.gz"),
                                            "--minutes", "0.05", "--quiet"], capsys)
    assert code == 0, err
    assert "holds about 0 of the" in out and "warning: only 0 training steps" in out
    ours = np.asarray(nibabel.load(tmp_path / "thin.nii.gz").dataobj)
    spline = spline_upsample(thick, 2, 4)

    def psnr(volume):
        return 10 * np.log10((truth.max() - truth.min()) ** 2 / np.mean((volume - truth) ** 2))

    assert psnr(ours) >= psnr(spline) - 0.1, (psnr(ours), psnr(spline))


def test_a_nifti_is_read_into_memory_not_mapped(tmp_path):
    """A .nii truncated by another program while the work runs cannot crash it (SIGBUS on a mapping)."""
    from mrisr.scans.scan import read_scan

    path = write_nifti(tmp_path / "scan.nii", np.ones((16, 16, 8), np.float32), (1.0, 1.0, 4.0))
    scan = read_scan(path)
    assert not isinstance(scan.data, np.memmap) and scan.data.base is None or not isinstance(scan.data.base,
                                                                                              np.memmap)
    path.write_bytes(path.read_bytes()[:400])  # truncated afterwards: the scan in memory is whole
    assert float(scan.data.sum()) == 16 * 16 * 8


@pytest.mark.parametrize("script", ["upscale", "CNN", "GAN", "extract_crops", "balance_data", "CNN_plot_losses",
                                    "plot_visual_predictions"])
@pytest.mark.parametrize("backend, message", [("nonsense", "these tools run on tensorflow"),
                                              ("openvino", "these tools run on tensorflow")])
def test_a_keras_backend_that_cannot_run_is_one_line(script, backend, message, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    code, _, err = run_script(script, ["--help"], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_keras_backend_that_is_not_installed_is_one_line(monkeypatch, capsys):
    import importlib.util

    missing = next((name for name in ("jax", "torch") if importlib.util.find_spec(name) is None), None)
    if missing is None:
        pytest.skip("both JAX and PyTorch are installed here")
    monkeypatch.setenv("KERAS_BACKEND", missing)
    code, _, err = run_script("upscale", ["bicubic", "a.png", "b.png"], capsys)
    assert code == 2 and f"{missing} is not installed" in err, err
