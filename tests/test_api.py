"""The Python API: arrays, NIfTI images and files upscaled as upscale.py does, crops read, a model evaluated."""

import numpy as np
import pytest

import mrisr
from mrisr.errors import UserError
from tests.conftest import make_crop_folder


def test_an_array_keeps_its_type_and_range_and_a_volume_its_axis():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 900, size=(20, 24)).astype(np.int16)
    bigger = mrisr.upscale(image, model="bicubic")
    assert bigger.shape == (40, 48) and bigger.dtype == np.int16
    assert bigger.min() >= 100 and bigger.max() <= 899
    volume = rng.random((5, 12, 14)).astype(np.float32)
    up = mrisr.upscale(volume, model="bicubic", axis=0)
    assert up.shape == (5, 24, 28) and up.dtype == np.float32
    along_last = mrisr.upscale(np.moveaxis(volume, 0, 2), model="bicubic", axis=2)
    np.testing.assert_allclose(np.moveaxis(along_last, 2, 0), up, atol=1e-6)
    volume[3, 0, :2] = volume.min(), volume.max()  # a slice with the volume's range upscales as on its own
    np.testing.assert_allclose(mrisr.upscale(volume, model="bicubic", axis=0)[3],
                               mrisr.upscale(volume[3], model="bicubic"), atol=1e-6)
    with pytest.raises(UserError, match="2-D image or a 3-D volume"):
        mrisr.upscale(np.zeros((2, 3, 4, 5, 6)), model="bicubic")


def test_shipped_weights_by_name_are_the_shipped_file_run_whole_by_keras():
    """mrisr.upscale with "demo-x2" (and a reused upscaler) on an image larger than one tile (tiles of 192
    pixels with overlap) against an independent computation: the file in pretrained/ loaded by Keras
    itself, its grey network called once on the whole image scaled to [0, 1] by the image's range, and
    scaled back."""
    import keras

    import mrisr.nets.models  # noqa: F401  (the project's layers, for Keras's loader)
    from tests.conftest import ROOT

    image = np.random.default_rng(1).random((300, 260)) * 300 + 50
    network = keras.saving.load_model(ROOT / "pretrained" / "demo_espcn_x2.keras").get_layer("grey_network")
    grey = ((image - image.min()) / (image.max() - image.min()))[None, :, :, None].astype(np.float32)
    expected = np.clip(keras.ops.convert_to_numpy(network(grey))[0, :, :, 0], 0, 1) * (image.max() - image.min()) \
        + image.min()
    np.testing.assert_allclose(mrisr.upscale(image, model="demo-x2"), expected, atol=1e-3)
    upscaler = mrisr.load_upscaler("demo-x2")
    assert upscaler.tile_safe and min(image.shape) > upscaler.tile + 2 * upscaler.margin  # several tiles each way
    np.testing.assert_allclose(mrisr.upscale(image, model=upscaler), expected, atol=1e-3)


def test_a_nifti_image_comes_back_with_its_header_and_tiling_affine(tmp_path):
    import nibabel

    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    image = nibabel.Nifti1Image(np.random.default_rng(2).integers(0, 500, (10, 12, 3)).astype(np.int16), affine)
    up = mrisr.upscale(image, model="bicubic")
    assert up.shape == (20, 24, 3) and up.get_data_dtype() == np.int16
    assert up.header.get_zooms() == pytest.approx((0.45, 0.45, 5.0))
    # x2 in-plane: voxels of 0.45 mm, the first centre a quarter of an old voxel (0.225 mm) back
    np.testing.assert_allclose(up.affine, [[0.45, 0, 0, -0.225], [0, 0.45, 0, -0.225], [0, 0, 5.0, 0], [0, 0, 0, 1]])
    nibabel.save(image, tmp_path / "scan.nii.gz")
    path = mrisr.upscale_file(tmp_path / "scan.nii.gz", tmp_path / "scan_x2.nii.gz", model="bicubic")
    written = nibabel.load(path)
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(up.dataobj))
    with pytest.raises(UserError, match="names the input|same file|is the input"):
        mrisr.upscale_file(path, path, model="bicubic")


def test_read_crops_and_evaluate(tmp_path, capsys):
    """mrisr.evaluate's metrics.csv against an independent scoring: scikit-image's PSNR of each prediction
    and of OpenCV's cubic upscaling of each input, on the RGB channels."""
    import csv

    import cv2
    from skimage.metrics import peak_signal_noise_ratio

    from mrisr.core.model_files import save_model
    from mrisr.nets.models import build_cnn
    from mrisr.paper.pairs import consistent_pairs

    crops = mrisr.read_crops(make_crop_folder(tmp_path / "crops", count=12, sizes=(8, 16)))
    assert crops.inputs.shape == (12, 8, 8, 4) and crops.targets.shape == (12, 16, 16, 4)
    save_model(build_cnn("espcn", 8, 16, 4), tmp_path / "model.keras")
    result = mrisr.evaluate(tmp_path / "model.keras", tmp_path / "crops", pairs="consistent", scale=2,
                            out_dir=tmp_path / "evaluation")
    pairs = consistent_pairs(crops.subset(result.crop_indices), 2)
    with open(tmp_path / "evaluation" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["crop_index"]) for row in rows] == list(result.crop_indices)
    for row, low, target, prediction in zip(rows, pairs.inputs, pairs.targets, result.predictions):
        bicubic = np.clip(cv2.resize(low[..., :3], (16, 16), interpolation=cv2.INTER_CUBIC), 0, 1)
        assert float(row["bicubic_psnr"]) == pytest.approx(peak_signal_noise_ratio(target[..., :3], bicubic,
                                                                                   data_range=1.0), abs=1e-3)
        assert float(row["psnr"]) == pytest.approx(peak_signal_noise_ratio(target[..., :3], prediction[..., :3],
                                                                           data_range=1.0), abs=1e-3)


@pytest.mark.parametrize("option, value", [("minutes", "10"), ("minutes", True), ("minutes", float("nan")),
                                           ("steps", 2.5), ("steps", "100"), ("steps", True), ("axis", 1.0),
                                           ("volume_index", -1), ("start", "warm"), ("profile", "square")])
def test_options_of_the_wrong_type_are_one_line_before_any_work(tmp_path, option, value):
    """Before, a string or a float where a number or a whole number belongs raised a TypeError."""
    np.save(tmp_path / "volume.npy", np.zeros((8, 8, 8), np.float32))
    options = {"axis": 2, "scale": 2, option: value}
    with pytest.raises(UserError, match=f"the (slice )?{option.replace('_', ' ')} must"):
        mrisr.upscale_file(tmp_path / "volume.npy", tmp_path / "out.npy", model="self", **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["volume.npy"]


def test_a_masked_array_keeps_its_mask_and_its_masked_values_change_nothing():
    """Before, the mask was dropped: masked values (here a huge fill) set the intensity range."""
    rng = np.random.default_rng(4)
    image = rng.integers(100, 900, size=(16, 20)).astype(np.int16)
    masked = np.ma.MaskedArray(image.copy(), mask=np.zeros_like(image, bool))
    masked[4:7, 5:9] = np.ma.masked
    masked.data[4:7, 5:9] = 30000
    bigger = mrisr.upscale(masked, model="bicubic")
    assert isinstance(bigger, np.ma.MaskedArray) and bigger.dtype == np.int16
    np.testing.assert_array_equal(bigger.mask, np.repeat(np.repeat(masked.mask, 2, 0), 2, 1))
    assert bigger.max() <= 899 and bigger.data.max() <= 899  # the masked fill never entered the range
    volume = np.ma.MaskedArray(np.stack([image] * 3, axis=1), mask=np.zeros((16, 3, 20), bool))
    volume[0, 1, 0] = np.ma.masked
    up = mrisr.upscale(volume, model="bicubic", axis=1)
    assert up.shape == (32, 3, 40) and up.mask[:2, 1, :2].all() and up.mask.sum() == 4
