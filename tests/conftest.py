"""Shared test helpers: small data sets in the real formats, made on the fly."""

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED_CROPS = ROOT.parent / "shared" / "data" / "brain-tumor-crops"


def make_slices(count, size=64, seed=0):
    """Random int16 slices with one rectangular tumour each; returns images, masks, boxes."""
    rng = np.random.default_rng(seed)
    images, masks, boxes = [], [], []
    for _ in range(count):
        image = rng.integers(0, 3000, size=(size, size)).astype(np.int16)
        mask = np.zeros((size, size), dtype=bool)
        top, left = rng.integers(2, size // 2, size=2)
        height, width = rng.integers(3, size // 3, size=2)
        mask[top : top + height, left : left + width] = True
        images.append(image)
        masks.append(mask)
        boxes.append((int(top), int(left), int(top + height - 1), int(left + width - 1)))
    return images, masks, boxes


def object_array(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def write_kaggle(folder, images, masks, labels):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", object_array(images), allow_pickle=True)
    np.save(folder / "masks.npy", object_array(masks), allow_pickle=True)
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int64))
    return folder


def write_figshare_mat(path, image, mask, label, patient_id):
    """A MATLAB v7.3-style file: HDF5 with a 'cjdata' group, arrays stored transposed."""
    import h5py

    with h5py.File(path, "w") as file:
        group = file.create_group("cjdata")
        group["image"] = np.asarray(image).T
        group["tumorMask"] = np.asarray(mask, dtype=np.uint8).T
        group["label"] = np.array([[float(label)]])
        group["PID"] = np.array([[ord(c)] for c in patient_id], dtype=np.uint16)
        group["tumorBorder"] = np.zeros((1, 4))


@pytest.fixture
def kaggle_dir(tmp_path):
    images, masks, _ = make_slices(9)
    return write_kaggle(tmp_path / "brain_tumor_dataset", images, masks, [1, 2, 3] * 3)


# The top-level scripts (the paper's appendix) are thin wrappers around these command modules.
COMMANDS = {"extract_crops": "mrisr.commands.extract_crops", "balance_data": "mrisr.commands.balance_data",
            "CNN": "mrisr.commands.cnn", "GAN": "mrisr.commands.gan", "CNN_plot_losses": "mrisr.commands.cnn_plot_losses",
            "plot_visual_predictions": "mrisr.commands.plot_visual_predictions", "upscale": "mrisr.commands.upscale"}


def run_script(script_name, argv, capsys):
    """Run a script's main() in-process (the command module behind a top-level script, or a
    benchmark module); return (exit code, stdout, stderr)."""
    import importlib

    module = importlib.import_module(COMMANDS.get(script_name, script_name))
    code = module.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def make_crop_folder(folder, count=30, sizes=(6, 12), seed=0):
    """A labelled crop folder made by the real extraction code, with tiny crops for fast training."""
    from mrisr.paper.crops import extract_crops
    from mrisr.paper.sources import read_kaggle

    images, masks, _ = make_slices(count, seed=seed)
    labels = [1, 2, 3] * (count // 3) + [1] * (count % 3)
    source = read_kaggle(write_kaggle(Path(folder) / "source", images, masks, labels))
    extract_crops(source, folder, sizes=sizes, progress=False)
    return Path(folder)


@pytest.fixture
def tiny_crops(tmp_path):
    return make_crop_folder(tmp_path / "crops")
