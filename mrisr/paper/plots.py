"""Every figure of the project, saved to files."""

from pathlib import Path

import numpy as np

from mrisr.core.files import atomic_write
from mrisr.nets.losses import LOSS_LABELS, LOSS_SETUPS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mark_epoch(axes, boundary, text, colour):
    """A dotted vertical line between two epochs, labelled at the top."""
    axes.axvline(boundary, color=colour, linestyle=":", linewidth=1)
    axes.annotate(text, (boundary, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                  textcoords="offset points", fontsize=8, color=colour)


def _mark_switch(axes, record, colour):
    switch = record.get("switch_epoch")
    if switch:
        _mark_epoch(axes, switch - 0.5, "SSIM \u2192 MSE", colour)


def save_figure(figure, path, dpi=120):
    """Save a figure atomically (the format from the suffix) and close it."""

    path = Path(path)
    try:
        atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=dpi, format=path.suffix[1:] or "png"))
    finally:
        _pyplot().close(figure)
    return path


def _save_epoch_figure(figure, axes, path, dpi=120):
    """Finish a figure drawn against epochs (whole-number ticks, legend) and save it."""
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path, dpi)


def _plot_by_phase(axes, history, key, label, **style):
    """Plot one loss curve, broken where the loss changes (the losses are on different scales)."""
    epochs, values, phases = history["epoch"], history[key], history["phase"]
    start = 0
    for end in range(1, len(epochs) + 1):
        if end == len(epochs) or phases[end] != phases[start]:
            axes.plot(epochs[start:end], values[start:end], marker="." if end - start < 30 else None,
                      label=label if start == 0 else None, **style)
            start = end


def plot_cnn_losses(histories, out_dir):
    """Training- and validation-loss figures: all setups on one plot and each setup alone.

    `histories` maps a loss setup to its history record (CNN_<LOSS>_model_history.json).
    Returns the written paths.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    colours = dict(zip(LOSS_SETUPS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    written = []
    for key, title in (("loss", "Training loss"), ("val_loss", "Validation loss")):
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for setup, record in histories.items():
            _plot_by_phase(axes, record["history"], key, LOSS_LABELS[setup], color=colours[setup])
            _mark_switch(axes, record, colours[setup])
        axes.set(xlabel="Epoch", ylabel="Loss", title=f"{title} of the CNN, all loss setups")
        path = out_dir / f"CNN_{'training' if key == 'loss' else 'validation'}_loss_all.png"
        written.append(_save_epoch_figure(figure, axes, path))
    for setup, record in histories.items():
        figure, axes = plt.subplots(figsize=(7, 4.5))
        _plot_by_phase(axes, record["history"], "loss", "training", color="tab:blue")
        _plot_by_phase(axes, record["history"], "val_loss", "validation", color="tab:orange")
        _mark_switch(axes, record, "black")
        axes.set(xlabel="Epoch", ylabel="Loss", title=f"CNN loss: {LOSS_LABELS[setup]}")
        written.append(_save_epoch_figure(figure, axes, out_dir / f"CNN_{setup}_loss.png"))
    return written


def plot_gan_scores(history, path):
    """The paper's figure 7: generator and discriminator scores against epochs."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(history["epoch"], history["score_generator"], label="Generator score")
    axes.plot(history["epoch"], history["score_discriminator"], label="Discriminator score")
    if "pretrain" in history["phase"]:
        _mark_epoch(axes, history["phase"].count("pretrain") + 0.5, "end of pre-training", "grey")
    axes.set(xlabel="Epoch", ylabel="Score", title="GAN scores on the validation set", ylim=(-0.02, 1.02))
    return _save_epoch_figure(figure, axes, path)


def _show(axes, image, title=None):
    axes.imshow(np.clip(np.asarray(image)[..., :3], 0, 1), interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=9)


def plot_image_grid(rows, column_titles, path, title=None, row_titles=None, panel_notes=None):
    """A grid of images: `rows` is a list of lists of images; `panel_notes[r][c]` is written under a panel."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_rows, n_columns = len(rows), len(column_titles)
    figure, axes = plt.subplots(n_rows, n_columns, figsize=(1.9 * n_columns, 2.0 * n_rows + 0.4), squeeze=False)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            _show(axes[r, c], image, column_titles[c] if r == 0 else None)
            if panel_notes and panel_notes[r][c]:
                axes[r, c].set_xlabel(panel_notes[r][c], fontsize=8)
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r], fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_snapshot(inputs, generated, targets, path, title):
    """A few validation samples during GAN training: input, generated, target per row."""
    rows = [[x, g, y] for x, g, y in zip(inputs, generated, targets)]
    return plot_image_grid(rows, ["X (input)", "Generator", "Y (target)"], path, title)


def error_map(target, prediction, max_error=0.25):
    """|prediction - target| of the RGB mean, coloured with 'magma' from 0 to `max_error` (RGB in [0, 1])."""
    plt = _pyplot()
    error = np.abs(np.asarray(prediction)[..., :3] - np.asarray(target)[..., :3]).mean(axis=-1)
    return plt.get_cmap("magma")(np.clip(error / max_error, 0, 1))[..., :3]


def plot_comparison_with_errors(inputs, bicubic, predictions, targets, path, model_name, title=None,
                                panel_notes=None, max_error=0.25):
    """Test samples side by side: input, bicubic, model, target, then the error maps of bicubic and model."""
    rows = [[x, b, p, y, error_map(y, b, max_error), error_map(y, p, max_error)]
            for x, b, p, y in zip(inputs, bicubic, predictions, targets)]
    columns = ["input", "bicubic", model_name, "target", "|bicubic - target|", f"|{model_name} - target|"]
    return plot_image_grid(rows, columns, path, title, panel_notes=panel_notes)
