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
