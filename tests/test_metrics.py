import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mrisr.nets.imaging import resize_cubic
from mrisr.nets.metrics import bicubic_upscale, psnr, score_images, ssim


def test_psnr_known_value_and_alpha_excluded():
    target = np.full((8, 8, 4), 0.5)
    prediction = target + 0.1
    prediction[..., 3] = 0.0  # alpha differs wildly: it must not count
    assert abs(psnr(target, prediction) - 20.0) < 1e-9
    assert psnr(target, target) == float("inf")


def test_metrics_agree_with_scikit_image():
    rng = np.random.default_rng(0)
    target, prediction = rng.random((50, 50, 4)), rng.random((50, 50, 4))
    assert psnr(target, prediction) == peak_signal_noise_ratio(target[..., :3], prediction[..., :3], data_range=1)
    assert ssim(target, prediction) == structural_similarity(target[..., :3], prediction[..., :3],
                                                             data_range=1.0, channel_axis=-1)
    assert ssim(target, target) == 1.0


def test_values_are_clipped_to_unit_range():
    target = np.zeros((10, 10, 3))
    assert psnr(target, np.full((10, 10, 3), -0.5)) == float("inf")  # clipped to 0: identical


def test_bicubic_and_scores():
    rng = np.random.default_rng(1)
    inputs = rng.random((2, 25, 25, 4))
    up = bicubic_upscale(inputs, 50)
    assert up.shape == (2, 50, 50, 3) and up.min() >= 0 and up.max() <= 1
    np.testing.assert_allclose(up[1], np.clip(resize_cubic(inputs[1, ..., :3], (50, 50)), 0, 1))
    scores = score_images(up, up[::-1])
    assert scores.psnr.shape == (2,) and scores.mean_psnr == np.mean(scores.psnr)
