"""The shipped DEMO weights load, upscale by 2, and beat bicubic on a demo slice."""

from pathlib import Path

import numpy as np
import pytest

from mrisr.upscaling import BicubicUpscaler, load_upscaler

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"


def demo_slice():
    import nibabel

    from mrisr.sources import demo_data_path

    volume = np.asarray(nibabel.load(str(demo_data_path())).dataobj, dtype=np.float64)
    image = volume[20:180, 20:212, 95]
    return (image - image.min()) / (image.max() - image.min())


@pytest.mark.parametrize("name", ["demo_espcn_x2.keras"])
def test_shipped_weights_beat_bicubic(name):
    from skimage.metrics import peak_signal_noise_ratio

    upscaler = load_upscaler(str(PRETRAINED / name))
    assert upscaler.scale == 2 and upscaler.tile_safe
    target = demo_slice()
    low = target.reshape(80, 2, 96, 2).mean(axis=(1, 3))
    model_psnr = peak_signal_noise_ratio(target, np.clip(upscaler.upscale(low), 0, 1), data_range=1.0)
    bicubic_psnr = peak_signal_noise_ratio(target, np.clip(BicubicUpscaler(2).upscale(low), 0, 1), data_range=1.0)
    assert model_psnr > bicubic_psnr + 0.5
