"""The file names of the paper's trained models and their histories, in one place.

CNN runs write `CNN_<LOSS>_model.keras` for the paper's network on the paper's x2 crops, as the paper
named them; other networks add their name, other pairs and scales theirs, so that runs that differ in
them never write the same file. A GAN run writes generator.keras, discriminator.keras and history.json.
"""

from pathlib import Path

GENERATOR = "generator.keras"
DISCRIMINATOR = "discriminator.keras"
GAN_HISTORY = "history.json"


def cnn_stem(loss_setup, arch="paper", pairs="paper", scale=None, crop_scale=2):
    """CNN_[<ARCH>_]<LOSS>[_consistent_x<S> | _x<S>]_model."""
    name = "CNN" if arch == "paper" else f"CNN_{arch}"
    name += f"_{loss_setup}"
    if pairs == "consistent":
        name += f"_consistent_x{scale or 2}"
    elif (scale or crop_scale) != 2:
        name += f"_x{scale or crop_scale}"
    return name + "_model"


def cnn_model_path(models_dir, loss_setup, **run):
    return Path(models_dir) / f"{cnn_stem(loss_setup, **run)}.keras"


def cnn_history_path(models_dir, loss_setup, **run):
    return Path(models_dir) / f"{cnn_stem(loss_setup, **run)}_history.json"


def history_path_for(model_path):
    """The history file a training run wrote beside its model."""
    model_path = Path(model_path)
    if model_path.name in (GENERATOR, DISCRIMINATOR):
        return model_path.parent / GAN_HISTORY
    return model_path.with_name(model_path.stem + "_history.json")
