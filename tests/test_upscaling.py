import keras
import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.nets import models
from mrisr.nets.imaging import resize_cubic
from mrisr.scans.upscaling import (
    BicubicUpscaler,
    ConvolutionalUpscaler,
    FixedSizeUpscaler,
    load_upscaler,
    receptive_margin,
    upscale_pixels,
)


def random_network(arch="edsr", scale=2, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = models.build_cnn(arch, 8, 8 * scale, 4)
    # Non-trivial residuals everywhere, so the test would see any seam.
    for layer in models.grey_network(model).layers:
        if layer.weights:
            layer.set_weights([w + np.random.default_rng(seed).normal(0, 0.05, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.backend
@pytest.mark.parametrize("arch", ["espcn", "edsr"])
def test_tiles_give_the_whole_image_result(arch):
    model = random_network(arch)
    network = models.grey_network(model)
    margin = receptive_margin(network)
    whole = ConvolutionalUpscaler(network, 2, arch, tile=1000, margin=margin)
    tiled = ConvolutionalUpscaler(network, 2, arch, tile=16, margin=margin)
    image = np.random.default_rng(1).random((53, 70))
    expected = whole.upscale(image)
    assert expected.shape == (106, 140)
    np.testing.assert_allclose(tiled.upscale(image), expected, atol=2e-5)


def test_tiles_without_enough_margin_would_show_seams():
    network = models.grey_network(random_network("edsr"))
    image = np.random.default_rng(1).random((53, 70))
    whole = ConvolutionalUpscaler(network, 2, "edsr", tile=1000, margin=24).upscale(image)
    seamy = ConvolutionalUpscaler(network, 2, "edsr", tile=16, margin=2).upscale(image)
    assert np.abs(seamy - whole).max() > 1e-3  # so the test above can fail


def test_x4_and_odd_sizes():
    network = models.grey_network(random_network("espcn", scale=4))
    output = ConvolutionalUpscaler(network, 4, "espcn", tile=16, margin=receptive_margin(network)).upscale(
        np.random.default_rng(2).random((21, 9)))
    assert output.shape == (84, 36)


def column_jumps(image, period):
    """Mean absolute step between neighbouring columns, by column position modulo `period`."""
    steps = np.abs(np.diff(image, axis=1)).mean(axis=0)
    return np.array([steps[phase::period].mean() for phase in range(period)])


def test_fixed_size_models_cover_the_image_without_seams():
    from mrisr.nets.imaging import bone_rgba_to_grey, grey_to_bone_rgba

    keras.utils.set_random_seed(1)
    model = models.paper_generator(6, 12, 4)
    upscaler = FixedSizeUpscaler(model, "paper_generator")
    assert upscaler.scale == 2
    rows, columns = np.mgrid[0:36, 0:48] / 48.0
    image = 0.5 + 0.3 * np.sin(3 * columns + 2 * rows)  # smooth: any seam is the tiling's
    blended = upscaler.upscale(image)
    assert blended.shape == (72, 96) and np.isfinite(blended).all()
    # The control: the same model on touching tiles, each normalised as the upscaler does, shows
    # its tile edges as columns of jumps hundreds of times the typical step.
    hard = np.zeros((72, 96))
    for r in range(0, 36, 6):
        for c in range(0, 48, 6):
            tile = image[r:r + 6, c:c + 6]
            low, span = tile.min(), tile.max() - tile.min()
            predicted = model.predict(grey_to_bone_rgba((tile - low) / span)[None], verbose=0)[0]
            hard[2 * r:2 * r + 12, 2 * c:2 * c + 12] = bone_rgba_to_grey(np.clip(predicted, 0, 1)) * span + low
    hard_jumps, blended_jumps = column_jumps(hard, 12), column_jumps(blended, 12)
    assert hard_jumps.max() > 20 * np.median(hard_jumps)
    assert blended_jumps.max() < 2 * np.median(blended_jumps)
    small = upscaler.upscale(image[:4, :5])  # smaller than one tile
    assert small.shape == (8, 10)


def test_upscale_pixels_keeps_range_and_type():
    pixels = np.random.default_rng(4).integers(-1000, 3000, size=(3, 10, 12)).astype(np.int16)
    output = upscale_pixels(BicubicUpscaler(2), pixels)
    assert output.shape == (3, 20, 24) and output.dtype == np.int16
    assert output.min() >= pixels.min() and output.max() <= pixels.max()
    expected = resize_cubic((pixels[1] - pixels.min()) / float(pixels.max() - pixels.min()), (20, 24))
    expected = np.clip(expected, 0, 1) * float(pixels.max() - pixels.min()) + pixels.min()
    np.testing.assert_array_equal(output[1], np.rint(expected).astype(np.int16))
    rgb = np.random.default_rng(5).integers(0, 256, size=(1, 6, 7, 3)).astype(np.uint8)
    assert upscale_pixels(BicubicUpscaler(3), rgb).shape == (1, 18, 21, 3)


def test_load_upscaler_reads_models_and_rejects_what_cannot_upscale(tmp_path):
    import keras

    model = random_network("espcn")
    model.save(tmp_path / "espcn.keras")
    upscaler = load_upscaler(str(tmp_path / "espcn.keras"))
    assert isinstance(upscaler, ConvolutionalUpscaler) and upscaler.scale == 2 and upscaler.tile_safe
    with pytest.raises(UserError, match="not by `scale` 4"):
        load_upscaler(str(tmp_path / "espcn.keras"), scale=4)
    classifier = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Flatten(), keras.layers.Dense(1)])
    classifier.save(tmp_path / "classifier.keras")
    with pytest.raises(UserError, match="cannot upscale|not an image-to-image"):
        load_upscaler(str(tmp_path / "classifier.keras"))
    with pytest.raises(UserError, match="does not exist"):
        load_upscaler(str(tmp_path / "missing.keras"))
    assert load_upscaler("bicubic", scale=3).scale == 3


def test_fixed_size_tiles_streamed_in_batches_give_the_one_batch_result():
    model = models.paper_generator(6, 12, 4)
    image = np.random.default_rng(6).random((31, 26))
    one_batch = FixedSizeUpscaler(model, "g", batch_size=10_000).upscale(image)
    streamed = FixedSizeUpscaler(model, "g", batch_size=7).upscale(image)
    np.testing.assert_allclose(streamed, one_batch, atol=1e-6)


def test_non_finite_input_is_kept_in_place_and_never_spread():
    pixels = np.random.default_rng(7).random((2, 12, 10)).astype(np.float32) * 100 + 50
    pixels[0, 3, 4] = np.nan
    pixels[1, 0, 0] = np.inf
    from mrisr.scans.values import intensity_range

    assert intensity_range(pixels)[2] == 2
    output = upscale_pixels(BicubicUpscaler(2), pixels)
    assert output.dtype == np.float32
    assert np.isnan(output[0, 6:8, 8:10]).all() and np.isposinf(output[1, :2, :2]).all()
    assert np.count_nonzero(~np.isfinite(output)) == 8  # each bad voxel's 2x2 block, nothing else
    finite = np.isfinite(output)
    assert output[finite].min() >= np.nanmin(pixels[np.isfinite(pixels)]) - 1e-4
    assert output[finite].max() <= pixels[np.isfinite(pixels)].max() + 1e-4
    with pytest.raises(UserError, match="every value"):
        upscale_pixels(BicubicUpscaler(2), np.full((1, 4, 4), np.nan))


def test_a_model_that_outputs_nan_is_refused(tmp_path):
    from mrisr.errors import RunFailed

    model = random_network("espcn")
    network = models.grey_network(model)
    layer = [layer for layer in network.layers if layer.weights][0]
    layer.set_weights([np.full_like(w, np.nan) for w in layer.get_weights()])
    model.save(tmp_path / "nan.keras")  # Keras saves it; the project's save_model would refuse
    with pytest.raises(UserError, match="NaN or infinite weights"):
        load_upscaler(str(tmp_path / "nan.keras"))
    # Outputs are checked too, for what the weights do not show (a NaN made inside the network).
    upscaler = load_upscaler("bicubic")
    upscaler.upscale = lambda grey: np.full((grey.shape[0] * 2, grey.shape[1] * 2), np.nan)
    upscaler.name = "broken"
    with pytest.raises(RunFailed, match="broken gives NaN"):
        upscale_pixels(upscaler, np.ones((1, 4, 4)))
    from mrisr.core.model_files import save_model

    with pytest.raises(RunFailed, match="non-finite weights"):
        save_model(model, tmp_path / "refused.keras")
    assert not (tmp_path / "refused.keras").exists()


def test_non_finite_values_are_kept_across_slices_too():
    from mrisr.scans.values import keep_non_finite

    source = np.ones((3, 2, 2), np.float32)
    source[1, 0, 1] = np.nan
    result = keep_non_finite(np.zeros((9, 2, 2), np.float32), source, 3, axes=(0,))
    assert np.isnan(result[3:6, 0, 1]).all() and np.count_nonzero(np.isnan(result)) == 3


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32])
def test_casting_in_place_rounds_and_clips_as_a_copy_does_and_reuses_the_input(dtype):
    from mrisr.scans.values import cast_like

    info = np.iinfo(dtype)
    values = np.array([-1e12, info.min - 0.6, -2.5, -0.49, 0.5, 1.5, 2.51, info.max + 0.4, 1e12], np.float64)
    expected = np.clip(np.rint(values), info.min, info.max).astype(dtype)
    copied = cast_like(values.copy(), dtype)
    scratch = values.copy()
    in_place = cast_like(scratch, dtype, overwrite=True)
    assert in_place.dtype == copied.dtype == dtype
    np.testing.assert_array_equal(copied, expected)
    np.testing.assert_array_equal(in_place, expected)
    np.testing.assert_array_equal(scratch, expected.astype(np.float64))  # rounded and clipped where it lay
    kept = values.copy()
    cast_like(kept, dtype)
    np.testing.assert_array_equal(kept, values)  # without overwrite the input is left as it was
