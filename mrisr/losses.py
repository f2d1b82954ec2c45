"""The paper's losses: MSE, SSIM, and their 0.6/0.4 mix; and L1 (one definition each).

TensorFlow is imported inside the functions, so the names here can be used
without loading it (CNN_plot_losses.py does).
"""

LOSS_SETUPS = ("MSE", "SSIM", "SSIM_and_MSE", "SSIM_then_MSE")  # the paper's four
EXTRA_LOSS_SETUPS = ("L1",)  # beyond the paper
ALL_LOSS_SETUPS = LOSS_SETUPS + EXTRA_LOSS_SETUPS
LOSS_LABELS = {
    "L1": "L1",
    "MSE": "MSE",
    "SSIM": "SSIM",
    "SSIM_and_MSE": "SSIM and MSE",
    "SSIM_then_MSE": "SSIM then MSE",
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


def ssim_and_mse_loss(y_true, y_pred):
    """The paper's mix: 0.6 * SSIM loss + 0.4 * MSE."""
    return 0.6 * ssim_loss(y_true, y_pred) + 0.4 * mse_loss(y_true, y_pred)


LOSS_FUNCTIONS = {"MSE": mse_loss, "SSIM": ssim_loss, "SSIM_and_MSE": ssim_and_mse_loss, "L1": l1_loss}


def loss_phases(setup):
    """The loss of each training phase: SSIM_then_MSE has two, the others one."""
    if setup == "SSIM_then_MSE":
        return ["SSIM", "MSE"]
    if setup not in LOSS_FUNCTIONS:
        raise ValueError(f"unknown loss setup {setup!r}; choose from {', '.join(ALL_LOSS_SETUPS)}")
    return [setup]
