import numpy as np
import pytest
import tensorflow as tf

from mrisr.losses import loss_phases, mse_loss, ssim_and_mse_loss, ssim_loss


def images(seed, shape=(3, 16, 16, 4)):
    return tf.constant(np.random.default_rng(seed).random(shape), dtype=tf.float32)


def test_identical_images_give_zero():
    y = images(0)
    for loss in (mse_loss, ssim_loss, ssim_and_mse_loss):
        np.testing.assert_allclose(loss(y, y).numpy(), 0.0, atol=1e-6)


def test_mse_and_ssim_values():
    y, z = images(0), images(1)
    np.testing.assert_allclose(mse_loss(y, z).numpy(), np.mean((y.numpy() - z.numpy()) ** 2, axis=(1, 2, 3)),
                               rtol=1e-6)
    np.testing.assert_allclose(ssim_loss(y, z).numpy(), 1 - tf.image.ssim(y, z, max_val=1.0).numpy(), rtol=1e-6)
    assert (ssim_loss(y, z).numpy() > 0.5).all()  # unrelated noise is far from similar


def test_combined_loss_is_the_weighted_sum():
    y, z = images(2), images(3)
    expected = 0.6 * ssim_loss(y, z).numpy() + 0.4 * mse_loss(y, z).numpy()
    np.testing.assert_allclose(ssim_and_mse_loss(y, z).numpy(), expected, rtol=1e-6)


def test_phases():
    assert loss_phases("SSIM_then_MSE") == ["SSIM", "MSE"]
    assert loss_phases("SSIM_and_MSE") == ["SSIM_and_MSE"]
    with pytest.raises(ValueError):
        loss_phases("L2")


def test_psnr_loss_is_minus_the_protocol_psnr_of_each_image():
    from mrisr.losses import psnr_loss
    from mrisr.metrics import psnr

    y, z = images(4, (3, 16, 16, 3)), images(5, (3, 16, 16, 3))
    z = 0.8 * y + 0.2 * z  # three pairs of different closeness
    expected = [-psnr(a, b) for a, b in zip(y.numpy(), z.numpy())]
    np.testing.assert_allclose(psnr_loss(y, z).numpy(), expected, rtol=1e-4)
    assert psnr_loss(y, y).numpy().max() < -90  # identical images: the floor of the logarithm


def test_psnr_loss_weighs_images_by_relative_error():
    """A fixed error shrunk on an almost right image lowers the PSNR loss more than on a badly wrong one
    (MSE treats the two alike)."""
    from mrisr.losses import psnr_loss

    y = images(6, (2, 8, 8, 3))
    base_error = tf.constant(np.stack([np.full((8, 8, 3), 0.02), np.full((8, 8, 3), 0.3)]), tf.float32)
    step = tf.constant(np.full((2, 8, 8, 3), 0.01), tf.float32)
    before = psnr_loss(y, y + base_error).numpy()
    after = psnr_loss(y, y + base_error - step).numpy()
    mse_gain = mse_loss(y, y + base_error).numpy() - mse_loss(y, y + base_error - step).numpy()
    assert (before - after)[0] > 10 * (before - after)[1]
    assert mse_gain[1] > mse_gain[0]
