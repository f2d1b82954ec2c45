"""The paper's losses: MSE, SSIM, and their 0.6/0.4 mix; and L1 and PSNR (one definition each).

TensorFlow is imported inside the functions, so the names here can be used
without loading it (CNN_plot_losses.py does).
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
    import tensorflow as tf

    return tf.reduce_mean(tf.square(tf.cast(y_true, y_pred.dtype) - y_pred), axis=[1, 2, 3])


def ssim_loss(y_true, y_pred):
    """1 - SSIM (tf.image.ssim, max_val 1, over all four channels), per sample, as the paper."""
    import tensorflow as tf

    return 1.0 - tf.image.ssim(tf.cast(y_true, y_pred.dtype), y_pred, max_val=1.0)


def l1_loss(y_true, y_pred):
    """Mean absolute error over all pixels and channels, per sample (beyond the paper)."""
    import tensorflow as tf

    return tf.reduce_mean(tf.abs(tf.cast(y_true, y_pred.dtype) - y_pred), axis=[1, 2, 3])


def psnr_loss(y_true, y_pred):
    """Minus the PSNR in dB (data range 1) of each sample over all its pixels and channels (beyond
    the paper). The batch mean is minus the mean PSNR over images, the protocol's figure: unlike MSE
    or L1, which weigh each image by its error, every image counts by its relative error. (A constant
    channel, such as the crops' alpha, shifts every value by the same amount, not the gradient.)"""
    import tensorflow as tf

    mse = mse_loss(y_true, y_pred)
    return (10.0 / tf.math.log(tf.constant(10.0, mse.dtype))) * tf.math.log(mse + 1e-10)


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
