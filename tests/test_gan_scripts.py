"""GAN.py and plot_visual_predictions.py as a user runs them, on tiny crops."""

import pytest

from tests.conftest import run_script


@pytest.mark.slow
def test_gan_train_evaluate_and_figures(tiny_crops, tmp_path, capsys):
    models, scores = tmp_path / "GAN_models", tmp_path / "GAN_Score_plot"
    code, out, err = run_script("GAN", ["train", "2", "--crops", str(tiny_crops), "--models-dir", str(models),
                                        "--score-plot-dir", str(scores), "--batch-size", "8",
                                        "--disc-strides", "1,2,2,2", "--snapshot-every", "1", "--quiet"], capsys)
    assert code == 0, err
    assert "strides 1,2,2,2" in out and "scoreGenerator" in out
    assert (scores / "GAN_score_plot.png").is_file() and (models / "snapshots/epoch_0002.png").is_file()
    code, out, err = run_script("GAN", ["evaluate", str(models), "--crops", str(tiny_crops)], capsys)
    assert code == 0, err
    assert "GAN " in out and "bicubic" in out
    assert (models / "generator_testing_predictions/metrics.csv").is_file()
    assert (models / "generator_testing_predictions/testing_sample_0.png").is_file()
    code, out, err = run_script("plot_visual_predictions", ["GAN", "--crops", str(tiny_crops), "--models-dir",
                                                            str(models), "--out-dir", str(tmp_path / "v"),
                                                            "--with-bicubic", "--samples", "2,0,1"], capsys)
    assert code == 0, err
    assert (tmp_path / "v/GAN_visual_predictions.png").is_file()


def test_cnn_visual_figure(tiny_crops, tmp_path, capsys):
    from mrisr.core.model_files import save_model
    from mrisr.nets.models import build_cnn

    models = tmp_path / "CNN_models"
    for setup in ("MSE", "SSIM", "SSIM_and_MSE", "SSIM_then_MSE"):  # small stand-ins under the paper's names
        save_model(build_cnn("espcn", 6, 12, 4), models / f"CNN_{setup}_model.keras")
    code, out, err = run_script("plot_visual_predictions", ["CNN", "--crops", str(tiny_crops), "--models-dir",
                                                            str(models), "--out-dir", str(tmp_path / "v")], capsys)
    assert code == 0, err
    assert (tmp_path / "v/CNN_visual_predictions.png").is_file()


def test_bad_inputs_give_one_line_and_exit_2(tiny_crops, tmp_path, capsys):
    cases = [
        ("GAN", ["evaluate", str(tmp_path / "nothing"), "--crops", str(tiny_crops)], "does not exist"),
        ("GAN", ["train", "0", "--crops", str(tiny_crops)], "EPOCHS must be positive"),
        ("GAN", ["train", "1", "--crops", str(tiny_crops), "--disc-strides", "1,2"], "exactly 4 numbers"),
        ("GAN", ["train", "1", "--crops", str(tiny_crops), "--pretrain-epochs", "2"], "needs a --content-loss"),
        ("GAN", ["train", "1", "--crops", str(tiny_crops), "--generator", "nope", "--models-dir",
                 str(tmp_path / "g")], "invalid choice: 'nope'"),
        ("GAN", ["train", "1", "--crops", str(tiny_crops), "--resume", "--models-dir", str(tmp_path / "g2")],
         "no checkpoint"),
        ("plot_visual_predictions", ["CNN", "--crops", str(tiny_crops), "--models-dir", str(tmp_path)],
         "missing model(s)"),
        ("plot_visual_predictions", ["GAN", "--crops", str(tiny_crops), "--samples", "a,b"], "whole numbers"),
    ]
    for script, argv, message in cases:
        code, _, err = run_script(script, argv, capsys)
        assert code == 2, (script, argv, err)
        assert message in err and "Traceback" not in err, (argv, err)
