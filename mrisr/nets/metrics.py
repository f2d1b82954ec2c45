"""The metrics protocol, used everywhere.

RGB channels only (alpha excluded), values in [0, 1], PSNR with data range 1,
SSIM as scikit-image's structural_similarity(data_range=1.0, channel_axis=-1),
per image, then the mean. Bicubic is always reported beside a model.
"""

import dataclasses

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mrisr.nets.imaging import resize_cubic


def rgb01(images):
    """The RGB channels of RGBA (or RGB) images as float64 clipped to [0, 1]."""
    return np.clip(np.asarray(images, dtype=np.float64)[..., :3], 0.0, 1.0)


def psnr(target, prediction):
    """PSNR in dB of one image pair (RGB, data range 1); identical images give inf."""
    target, prediction = rgb01(target), rgb01(prediction)
    if np.array_equal(target, prediction):
        return float("inf")
    return float(peak_signal_noise_ratio(target, prediction, data_range=1.0))


def ssim(target, prediction):
    """SSIM of one image pair: scikit-image, RGB, data range 1, 7x7 window."""
    return float(structural_similarity(rgb01(target), rgb01(prediction), data_range=1.0, channel_axis=-1))


def bicubic_upscale(inputs, output_size):
    """Cubic (OpenCV kernel) upscaling of the inputs' RGB to output_size, clipped to [0, 1]."""
    inputs = np.asarray(inputs)
    size = (output_size, output_size)
    return np.stack([np.clip(resize_cubic(image[..., :3], size), 0.0, 1.0) for image in inputs])


@dataclasses.dataclass
class Scores:
    psnr: np.ndarray
    ssim: np.ndarray

    @property
    def mean_psnr(self):
        return float(np.mean(self.psnr))

    @property
    def mean_ssim(self):
        return float(np.mean(self.ssim))


def score_images(targets, predictions):
    """Per-image PSNR and SSIM of two stacks of images."""
    pairs = list(zip(targets, predictions))
    return Scores(np.array([psnr(t, p) for t, p in pairs]), np.array([ssim(t, p) for t, p in pairs]))
