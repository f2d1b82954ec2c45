"""The losses, on whichever Keras backend runs the tests (SSIM checked against tf.image.ssim on TensorFlow)."""

import keras
import numpy as np
import pytest
from keras import ops

from mrisr.nets.losses import loss_phases, mse_loss, ssim, ssim_and_mse_loss, ssim_loss

pytestmark = pytest.mark.backend  # also run on JAX and PyTorch by make test

numpy_of = ops.convert_to_numpy


def images(seed, shape=(3, 16, 16, 4)):
    return ops.convert_to_tensor(np.random.default_rng(seed).random(shape).astype(np.float32))


def test_identical_images_give_zero():
    y = images(0)
    for loss in (mse_loss, ssim_loss, ssim_and_mse_loss):
        np.testing.assert_allclose(numpy_of(loss(y, y)), 0.0, atol=1e-6)


def test_mse_and_ssim_values():
    y, z = images(0), images(1)
    np.testing.assert_allclose(numpy_of(mse_loss(y, z)), np.mean((numpy_of(y) - numpy_of(z)) ** 2, axis=(1, 2, 3)),
                               rtol=1e-6)
    assert (numpy_of(ssim_loss(y, z)) > 0.5).all()  # unrelated noise is far from similar


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.image.ssim is TensorFlow's")
@pytest.mark.parametrize("shape", [(6, 50, 50, 4), (3, 25, 25, 1), (2, 16, 16, 3)])
def test_ssim_is_tensorflows_ssim(shape):
    import tensorflow as tf

    rng = np.random.default_rng(sum(shape))
    y = rng.random(shape).astype(np.float32)
    z = np.clip(y + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    np.testing.assert_allclose(numpy_of(ssim(y, z)), tf.image.ssim(y, z, max_val=1.0).numpy(), atol=1e-5)


def test_the_paper_mix_of_ssim_and_mse_on_images_of_known_loss():
    """Two constant images 0.2 and 0.8: MSE 0.36; SSIM (Gaussian window, C1 = 0.01^2) has only its
    luminance term, (2ab + C1) / (a^2 + b^2 + C1); the paper weighs them 0.6 SSIM loss + 0.4 MSE. (Far
    apart, so that float32's cancellation in the variances, about 2e-4, stays below 1e-3 of the loss.)"""
    y = ops.convert_to_tensor(np.full((2, 16, 16, 4), 0.2, np.float32))
    z = ops.convert_to_tensor(np.full((2, 16, 16, 4), 0.8, np.float32))
    c1 = 0.01 ** 2
    ssim_value = (2 * 0.2 * 0.8 + c1) / (0.2 ** 2 + 0.8 ** 2 + c1)
    np.testing.assert_allclose(numpy_of(ssim_loss(y, z)), 1 - ssim_value, rtol=1e-3)
    np.testing.assert_allclose(numpy_of(mse_loss(y, z)), 0.36, rtol=1e-5)
    np.testing.assert_allclose(numpy_of(ssim_and_mse_loss(y, z)), 0.6 * (1 - ssim_value) + 0.4 * 0.36, rtol=1e-3)


def test_phases():
    assert loss_phases("SSIM_then_MSE") == ["SSIM", "MSE"]
    assert loss_phases("SSIM_and_MSE") == ["SSIM_and_MSE"]
    with pytest.raises(ValueError):
        loss_phases("L2")


def test_psnr_loss_is_minus_the_protocol_psnr_of_each_image():
    from mrisr.nets.losses import psnr_loss
    from mrisr.nets.metrics import psnr

    y, z = images(4, (3, 16, 16, 3)), images(5, (3, 16, 16, 3))
    z = 0.8 * y + 0.2 * z  # three pairs of different closeness
    expected = [-psnr(a, b) for a, b in zip(numpy_of(y), numpy_of(z))]
    np.testing.assert_allclose(numpy_of(psnr_loss(y, z)), expected, rtol=1e-4)
    assert numpy_of(psnr_loss(y, y)).max() < -90  # identical images: the floor of the logarithm


def test_psnr_loss_weighs_images_by_relative_error():
    """A fixed error shrunk on an almost right image lowers the PSNR loss more than on a badly wrong one
    (MSE treats the two alike)."""
    from mrisr.nets.losses import psnr_loss

    y = images(6, (2, 8, 8, 3))
    base_error = ops.convert_to_tensor(np.stack([np.full((8, 8, 3), 0.02), np.full((8, 8, 3), 0.3)]).astype(np.float32))
    step = ops.convert_to_tensor(np.full((2, 8, 8, 3), 0.01, np.float32))
    before = numpy_of(psnr_loss(y, y + base_error))
    after = numpy_of(psnr_loss(y, y + base_error - step))
    mse_gain = numpy_of(mse_loss(y, y + base_error)) - numpy_of(mse_loss(y, y + base_error - step))
    assert (before - after)[0] > 10 * (before - after)[1]
    assert mse_gain[1] > mse_gain[0]
