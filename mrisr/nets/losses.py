"""The paper's losses: MSE, SSIM, and their 0.6/0.4 mix; and L1 and PSNR (one definition each),
in keras.ops so that they run on every Keras backend.

Keras is imported inside the functions, so the names here can be used without loading it
(CNN_plot_losses.py does).
"""

LOSS_SETUPS = ("MSE", "SSIM", "SSIM_and_MSE", "SSIM_then_MSE")  # the paper's four
EXTRA_LOSS_SETUPS = ("L1", "PSNR")  # beyond the paper
ALL_LOSS_SETUPS = LOSS_SETUPS + EXTRA_LOSS_SETUPS
LOSS_LABELS = {
    "L1": "L1",
    "MSE": "MSE",
    "SSIM": "SSIM",
    "SSIM_and_MSE": "SSIM and MSE",
    "SSIM_then_MSE": "SSIM then MSE",
    "PSNR": "PSNR",
}


def mse_loss(y_true, y_pred):
    """Mean squared error over all pixels and channels, per sample."""
    from keras import ops

    return ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred), axis=(1, 2, 3))


def _gaussian_window(size=11, sigma=1.5):
    import numpy as np

    coordinates = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    line = np.exp(-0.5 * (coordinates / sigma) ** 2)
    window = np.outer(line, line)
    return (window / window.sum()).astype(np.float32)


def ssim(y_true, y_pred, max_val=1.0):
    """SSIM per sample as tf.image.ssim computes it (Gaussian window 11x11, sigma 1.5, valid
    positions only, K1 0.01, K2 0.03, each channel alone, then the mean over channels), in
    keras.ops. Equal to tf.image.ssim to 1e-5 (tested)."""
    from keras import ops

    y_true = ops.cast(y_true, y_pred.dtype)
    channels = y_pred.shape[-1]
    window = ops.cast(ops.convert_to_tensor(_gaussian_window()), y_pred.dtype)
    kernel = ops.tile(ops.reshape(window, (11, 11, 1, 1)), (1, 1, channels, 1))

    def blur(x):
        return ops.depthwise_conv(x, kernel, strides=1, padding="valid")

    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mean_true, mean_pred = blur(y_true), blur(y_pred)
    luminance = (2.0 * mean_true * mean_pred + c1) / (ops.square(mean_true) + ops.square(mean_pred) + c1)
    covariance = blur(y_true * y_pred) - mean_true * mean_pred
    variances = blur(ops.square(y_true)) + blur(ops.square(y_pred)) - ops.square(mean_true) - ops.square(mean_pred)
    contrast_structure = (2.0 * covariance + c2) / (variances + c2)
    return ops.mean(luminance * contrast_structure, axis=(1, 2, 3))


def ssim_loss(y_true, y_pred):
    """1 - SSIM (as tf.image.ssim, max_val 1, over all four channels), per sample, as the paper."""
    return 1.0 - ssim(y_true, y_pred, max_val=1.0)


def l1_loss(y_true, y_pred):
    """Mean absolute error over all pixels and channels, per sample (beyond the paper)."""
    from keras import ops

    return ops.mean(ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred), axis=(1, 2, 3))


def psnr_loss(y_true, y_pred):
    """Minus the PSNR in dB (data range 1) of each sample over all its pixels and channels (beyond
    the paper). The batch mean is minus the mean PSNR over images, the protocol's figure: unlike MSE
    or L1, which weigh each image by its error, every image counts by its relative error. (A constant
    channel, such as the crops' alpha, shifts every value by the same amount, not the gradient.)"""
    import math

    from keras import ops

    return (10.0 / math.log(10.0)) * ops.log(mse_loss(y_true, y_pred) + 1e-10)


def ssim_and_mse_loss(y_true, y_pred):
    """The paper's mix: 0.6 * SSIM loss + 0.4 * MSE."""
    return 0.6 * ssim_loss(y_true, y_pred) + 0.4 * mse_loss(y_true, y_pred)


LOSS_FUNCTIONS = {"MSE": mse_loss, "SSIM": ssim_loss, "SSIM_and_MSE": ssim_and_mse_loss, "L1": l1_loss,
                  "PSNR": psnr_loss}


def loss_phases(setup):
    """The loss of each training phase: SSIM_then_MSE has two, the others one."""
    if setup == "SSIM_then_MSE":
        return ["SSIM", "MSE"]
    if setup not in LOSS_FUNCTIONS:
        raise ValueError(f"unknown loss setup {setup!r}; choose from {', '.join(ALL_LOSS_SETUPS)}")
    return [setup]
