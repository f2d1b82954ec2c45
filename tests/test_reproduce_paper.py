"""benchmarks/reproduce_paper.py at a tiny scale: the four CNN setups and the GAN on a few small crops, two
epochs each, paused after the first epoch and continued by the same command."""

import csv

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from mrisr.core.files import load_json
from mrisr.paper.crops import read_crops
from tests.conftest import make_crop_folder, run_script

pytestmark = pytest.mark.slow


def write_test_split(crops_folder):
    """A paper_test_split.csv as the shared crops have: 6 CNN and 6 GAN test crops."""
    indices = sorted(read_crops(crops_folder).indices)
    with open(crops_folder / "paper_test_split.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(("model", "test_sample", "crop_index"))
        writer.writerows(("CNN", k, index) for k, index in enumerate(indices[:6]))
        writer.writerows(("GAN", k, index) for k, index in enumerate(indices[-6:]))
    return indices[:6]


def test_the_reproduction_pauses_continues_and_reports_beside_bicubic(tmp_path, capsys):
    crops_folder = make_crop_folder(tmp_path / "crops", count=36)
    cnn_test = write_test_split(crops_folder)
    work, out = tmp_path / "work", tmp_path / "out"
    options = [str(crops_folder), "--epochs", "2", "--gan-epochs", "2", "--samples", "0,1",
               "--work", str(work), "--out", str(out)]

    code, printed, _ = run_script("benchmarks.reproduce_paper", options + ["--minutes", "0"], capsys)
    assert code == 0 and "run the same command again" in printed
    report = load_json(out / "reproduction.json")
    states = {row["setup"]: row["state"] for row in report["setups"]}
    assert states == {"MSE": "paused", "SSIM": "waiting", "SSIM_and_MSE": "waiting", "SSIM_then_MSE": "waiting"}
    assert report["setups"][0]["epochs_so_far"] == 1 and report["setups"][0]["epochs"] is None
    assert report["gan"]["state"] == "waiting"

    code, printed, _ = run_script("benchmarks.reproduce_paper", options, capsys)
    assert code == 0 and "run the same command again" not in printed
    report = load_json(out / "reproduction.json")
    rows = {row["setup"]: row for row in report["setups"]}
    assert all(row["state"] == "done" for row in rows.values()) and report["gan"]["state"] == "done"
    assert rows["MSE"]["epochs"] == 2  # continued from its first epoch, not started again
    assert load_json(work / "CNN_models" / "CNN_MSE_model_history.json")["history"]["epoch"] == [1, 2]
    assert rows["SSIM_then_MSE"]["epochs_per_phase"] == [2, 2] and rows["SSIM_then_MSE"]["switch_epoch"] == 3
    assert [rows[s]["paper_epochs"] for s in ("MSE", "SSIM", "SSIM_and_MSE", "SSIM_then_MSE")] == [263, 242, 195, 324]
    assert report["gan"]["epochs_so_far"] == 2 and report["gan"]["paper_epochs"] == 1000
    assert sorted(report["ranking_by_test_psnr"]) == sorted(rows)

    # Bicubic beside each model, on the paper's test crops: OpenCV's cubic resize, RGB, PSNR per image.
    crops = read_crops(crops_folder)
    test = crops.subset(np.array(cnn_test))
    def cubic(image, target):
        return np.clip(cv2.resize(image, target.shape[:2][::-1], interpolation=cv2.INTER_CUBIC), 0, 1)[..., :3]

    bicubic = [peak_signal_noise_ratio(target[..., :3], cubic(image, target), data_range=1.0)
               for image, target in zip(test.inputs, test.targets)]
    for row in rows.values():
        assert row["test"]["samples"] == 6
        assert row["test"]["bicubic_psnr"] == pytest.approx(np.mean(bicubic), abs=2e-3)
    figures = out / "figures"
    for name in ("CNN_training_loss_all.png", "CNN_validation_loss_all.png", "CNN_SSIM_then_MSE_loss.png",
                 "CNN_visual_predictions.png", "GAN_score_plot.png"):
        assert (figures / name).is_file(), name
