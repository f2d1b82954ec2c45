import numpy as np
import pytest

from mrisr.nets.metrics import bicubic_upscale, psnr, score_images, ssim


def test_psnr_known_value_and_alpha_excluded():
    target = np.full((8, 8, 4), 0.5)
    prediction = target + 0.1
    prediction[..., 3] = 0.0  # alpha differs wildly: it must not count
    assert abs(psnr(target, prediction) - 20.0) < 1e-9
    assert psnr(target, target) == float("inf")


def test_psnr_and_ssim_of_known_pairs():
    """Values worked out by hand: PSNR = 10 log10(1 / MSE) over the RGB channels; for two constant images
    SSIM's contrast and structure terms are 1 and its luminance term is (2ab + C1) / (a^2 + b^2 + C1),
    C1 = (0.01 * data range)^2."""
    target = np.full((20, 20, 4), 0.5)
    prediction = target.copy()
    prediction[:10, :, 1] += 0.3  # one RGB channel, half the pixels: MSE = 0.09 / 2 / 3 = 0.015
    assert psnr(target, prediction) == pytest.approx(10 * np.log10(1 / 0.015), abs=1e-9)
    c1 = 0.01 ** 2
    assert ssim(target, np.full((20, 20, 4), 0.6)) == pytest.approx((0.6 + c1) / (0.61 + c1), abs=1e-9)
    assert ssim(target, target) == 1.0


def test_values_are_clipped_to_unit_range():
    target = np.zeros((10, 10, 3))
    assert psnr(target, np.full((10, 10, 3), -0.5)) == float("inf")  # clipped to 0: identical


def test_bicubic_is_opencvs_and_scores_are_per_image_then_the_mean():
    """The baseline is OpenCV's INTER_CUBIC on the RGB channels, clipped to [0, 1] (OpenCV, a test
    dependency, is the independent reference); the scores of known pairs are known."""
    import cv2

    inputs = np.random.default_rng(1).random((2, 25, 25, 4))
    up = bicubic_upscale(inputs, 50)
    assert up.shape == (2, 50, 50, 3)
    for image, upscaled in zip(inputs, up):
        reference = cv2.resize(image[..., :3].astype(np.float64), (50, 50), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(upscaled, np.clip(reference, 0, 1), atol=1e-6)
    targets = np.full((2, 8, 8, 3), 0.5)
    predictions = targets + np.array([0.1, 0.01])[:, None, None, None]  # 20 dB and 40 dB
    scores = score_images(targets, predictions)
    assert scores.psnr == pytest.approx([20.0, 40.0]) and scores.mean_psnr == pytest.approx(30.0)
