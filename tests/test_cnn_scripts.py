"""CNN.py and CNN_plot_losses.py as a user runs them, on tiny crops."""

import csv

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_crop_folder, run_script


def test_train_evaluate_and_plot_write_every_file(tiny_crops, tmp_path, capsys):
    models = tmp_path / "CNN_models"
    for setup in ("MSE", "SSIM_then_MSE"):
        code, out, err = run_script("CNN", ["train", setup, "--crops", str(tiny_crops), "--models-dir", str(models),
                                            "--epochs", "1", "--batch-size", "8", "--no-xla", "--quiet"], capsys)
        assert code == 0, err
        assert (models / f"CNN_{setup}_model.keras").is_file()
        assert (models / f"CNN_{setup}_model_history.json").is_file()
    code, out, err = run_script("CNN", ["evaluate", str(models / "CNN_MSE_model.keras"), "MSE",
                                        "--crops", str(tiny_crops)], capsys)
    assert code == 0, err
    assert "bicubic" in out and "PSNR" in out
    predictions = models / "CNN_MSE_model_testing_predictions"
    with open(predictions / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and list(rows[0]) == ["test_sample", "crop_index", "psnr", "ssim", "bicubic_psnr",
                                                 "bicubic_ssim"]
    image = np.asarray(Image.open(predictions / "testing_sample_2.png"))
    assert image.shape == (12, 12, 4) and image.dtype == np.uint8
    code, out, err = run_script("CNN_plot_losses", ["--models-dir", str(models), "--out-dir",
                                                    str(tmp_path / "plots")], capsys)
    assert code == 0 and "CNN_SSIM_model_history.json" in out  # names what is missing
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert written == ["CNN_MSE_loss.png", "CNN_SSIM_then_MSE_loss.png", "CNN_training_loss_all.png",
                       "CNN_validation_loss_all.png"]


def test_evaluate_reports_the_same_split_as_balance_data(tiny_crops, tmp_path, capsys):
    """balance_data.py writes splits.csv from a fixed test split; training on it succeeds; evaluation
    scores exactly the crops splits.csv calls test."""
    split_file = tmp_path / "test.csv"
    split_file.write_text("crop_index\n0\n5\n")
    splits = tmp_path / "splits.csv"
    code, _, err = run_script("balance_data", ["--crops", str(tiny_crops), "--test-split", str(split_file),
                                               "--out", str(splits)], capsys)
    assert code == 0, err
    with open(splits) as file:
        test_rows = [row["crop_index"] for row in csv.DictReader(file) if row["split"] == "test"]
    assert sorted(test_rows, key=int) == ["0", "5"]
    models = tmp_path / "m"
    code, _, err = run_script("CNN", ["train", "MSE", "--crops", str(tiny_crops), "--models-dir", str(models),
                                      "--epochs", "1", "--no-xla", "--quiet", "--splits", str(splits)], capsys)
    assert code == 0, err
    code, out, err = run_script("CNN", ["evaluate", str(models / "CNN_MSE_model.keras"), "--crops",
                                        str(tiny_crops), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "2 test samples" in out, err
    with open(tmp_path / "out/metrics.csv") as file:
        assert sorted((row["crop_index"] for row in csv.DictReader(file)), key=int) == sorted(test_rows, key=int)


def test_bad_inputs_give_one_line_and_exit_2(tiny_crops, tmp_path, capsys):
    other = make_crop_folder(tmp_path / "other", count=6, sizes=(8, 16))
    models = tmp_path / "m"
    run_script("CNN", ["train", "MSE", "--crops", str(tiny_crops), "--models-dir", str(models), "--epochs", "1",
                       "--no-xla", "--quiet"], capsys)
    model = str(models / "CNN_MSE_model.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a model")
    cases = [
        (["evaluate", str(tmp_path / "none.keras"), "--crops", str(tiny_crops)], "does not exist"),
        (["evaluate", str(tmp_path / "broken.keras"), "--crops", str(tiny_crops)], "cannot load"),
        (["evaluate", model, "--crops", str(other)], "takes inputs of shape"),
        (["evaluate", model, "--crops", str(tiny_crops), "--test-split", str(tmp_path / "no.csv")], "does not exist"),
        (["train", "MSE", "--crops", str(tmp_path / "nowhere")], "not a crop folder"),
        (["train", "MSE", "--crops", str(tiny_crops), "--epochs", "0"], "must be positive"),
        (["train", "MSE", "--crops", str(tiny_crops), "--models-dir", str(tmp_path / "x"), "--resume"],
         "no checkpoint"),
    ]
    for argv, message in cases:
        code, _, err = run_script("CNN", argv, capsys)
        assert code == 2, argv
        assert message in err and "Traceback" not in err, (argv, err)
    code, _, err = run_script("CNN_plot_losses", ["--models-dir", str(tmp_path / "empty")], capsys)
    assert code == 2 and "no CNN histories" in err


def test_fully_convolutional_network_on_consistent_pairs_at_x4(tiny_crops, tmp_path, capsys):
    models = tmp_path / "models"
    code, out, err = run_script("CNN", ["train", "L1", "--arch", "espcn", "--pairs", "consistent", "--scale", "4",
                                        "--crops", str(tiny_crops), "--models-dir", str(models), "--epochs", "1",
                                        "--batch-size", "8", "--augment", "--quiet"], capsys)
    assert code == 0, err
    assert "consistent pairs (3x3 -> 12x12)" in out
    model_path = models / "CNN_espcn_L1_consistent_x4_model.keras"  # pairs and scale in the name
    # evaluate takes the pairs, the scale and the test set from the model's training record
    code, out, err = run_script("CNN", ["evaluate", str(model_path), "L1",
                                        "--crops", str(tiny_crops), "--out", str(tmp_path / "evaluation")], capsys)
    assert code == 0, err
    assert "consistent pairs" in out and "the model's recorded split" in out
    image = np.asarray(Image.open(tmp_path / "evaluation" / "testing_sample_0.png"))
    assert image.shape == (12, 12, 4)


def test_options_that_cannot_work_exit_2(tmp_path, capsys):
    odd = make_crop_folder(tmp_path / "odd", count=30, sizes=(5, 12))
    cases = [
        (["train", "MSE", "--pairs", "consistent", "--crops", str(odd)], "fixed 25x25 input"),
        (["train", "L1", "--arch", "edsr", "--crops", str(odd), "--models-dir", str(tmp_path / "m")], "integer"),
        (["train", "L1", "--arch", "edsr", "--scale", "3", "--crops", str(odd)], "--scale 3 does not fit"),
        (["train", "L1", "--arch", "edsr", "--time-limit", "0", "--crops", str(odd)], "--time-limit must be positive"),
    ]
    for argv, message in cases:
        code, out, err = run_script("CNN", argv, capsys)
        assert code == 2 and message in err, err


@pytest.mark.slow
def test_paper_pairs_at_x4_from_extract_crops_sizes(tmp_path, capsys):
    crops = make_crop_folder(tmp_path / "x4", count=30, sizes=(6, 24))
    models = tmp_path / "models"
    code, out, err = run_script("CNN", ["train", "L1", "--arch", "edsr", "--scale", "4", "--crops", str(crops),
                                        "--models-dir", str(models), "--epochs", "1", "--batch-size", "8",
                                        "--quiet"], capsys)
    assert code == 0, err
    assert "paper pairs (6x6 -> 24x24)" in out
    code, out, err = run_script("CNN", ["evaluate", str(models / "CNN_edsr_L1_x4_model.keras"), "--scale", "4",
                                        "--crops", str(crops), "--out", str(tmp_path / "evaluation")], capsys)
    assert code == 0, err
    assert np.asarray(Image.open(tmp_path / "evaluation" / "testing_sample_0.png")).shape == (24, 24, 4)


def metrics_indices(folder):
    with open(folder / "metrics.csv") as file:
        return [int(row["crop_index"]) for row in csv.DictReader(file)]


def test_evaluation_takes_the_recorded_split_and_refuses_training_crops(tiny_crops, tmp_path, capsys):
    import shutil

    from mrisr.core.files import load_json

    models = tmp_path / "models"
    code, _, err = run_script("CNN", ["train", "MSE", "--crops", str(tiny_crops), "--models-dir", str(models),
                                      "--epochs", "1", "--no-xla", "--quiet", "--seed", "2"], capsys)
    assert code == 0, err
    model = str(models / "CNN_MSE_model.keras")
    recorded = load_json(models / "CNN_MSE_model_history.json")["data"]["split"]
    # No split options: the model's own test set, whatever the default split would be.
    code, out, err = run_script("CNN", ["evaluate", model, "--crops", str(tiny_crops), "--out",
                                        str(tmp_path / "e1")], capsys)
    assert code == 0, err
    assert "recorded split" in out and metrics_indices(tmp_path / "e1") == recorded["test"]
    # Split options that pick training crops as the test set: refused, naming them.
    code, out, err = run_script("CNN", ["evaluate", model, "--crops", str(tiny_crops), "--seed", "0", "--out",
                                        str(tmp_path / "e2")], capsys)
    assert code == 2 and "crops the model was trained on" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e2").exists()
    code, out, err = run_script("CNN", ["evaluate", model, "--crops", str(tiny_crops), "--seed", "0", "--out",
                                        str(tmp_path / "e2"), "--allow-overlap"], capsys)
    assert code == 0 and "warning:" in out and "flatter the model" in out
    # The same pixels under other numbers in another folder are still the training crops.
    renumbered = tmp_path / "renumbered"
    for folder in ("down-scaled_cropped_images", "original_cropped_images"):
        (renumbered / folder).mkdir(parents=True)
        for path in (tiny_crops / folder).glob("*.png"):
            shutil.copy(path, renumbered / folder / f"{int(path.stem) + 100}.png")
    code, out, err = run_script("CNN", ["evaluate", model, "--crops", str(renumbered), "--out",
                                        str(tmp_path / "e3")], capsys)
    assert code == 2 and "crops the model was trained on" in err
    # Crops the model never saw are a legitimate external test set.
    other = make_crop_folder(tmp_path / "other", count=12, sizes=(6, 12), seed=9)
    code, out, err = run_script("CNN", ["evaluate", model, "--crops", str(other), "--out", str(tmp_path / "e4")],
                                capsys)
    assert code == 0 and "external test set" in out, err


def test_balance_data_splits_file_is_the_split_of_training(tiny_crops, tmp_path, capsys):
    from mrisr.core.files import load_json

    splits = tmp_path / "splits.csv"
    code, out, err = run_script("balance_data", ["--crops", str(tiny_crops), "--seed", "7", "--out", str(splits)],
                                capsys)
    assert code == 0, err
    with open(splits) as file:
        rows = list(csv.DictReader(file))
    models = tmp_path / "models"
    code, out, err = run_script("CNN", ["train", "MSE", "--crops", str(tiny_crops), "--splits", str(splits),
                                        "--models-dir", str(models), "--epochs", "1", "--no-xla", "--quiet"], capsys)
    assert code == 0, err
    split = load_json(models / "CNN_MSE_model_history.json")["data"]["split"]
    for part in ("train", "validation", "test"):
        assert sorted(split[part]) == sorted(int(r["crop_index"]) for r in rows if r["split"] == part)
    code, out, err = run_script("CNN", ["evaluate", str(models / "CNN_MSE_model.keras"), "--crops", str(tiny_crops),
                                        "--splits", str(splits), "--out", str(tmp_path / "e")], capsys)
    assert code == 0 and sorted(metrics_indices(tmp_path / "e")) == sorted(split["test"])
