"""extract_crops.py and balance_data.py as a user runs them."""

import csv

import numpy as np

from tests.conftest import make_slices, run_script, write_kaggle


def test_extract_kaggle_then_balance(tmp_path, kaggle_dir, capsys):
    out = tmp_path / "crops"
    code, stdout, _ = run_script("extract_crops", ["--source", "kaggle", "--data-dir", str(kaggle_dir),
                                                   "--out-dir", str(out), "--quiet"], capsys)
    assert code == 0 and "Wrote 9 crop pairs" in stdout
    assert len(list((out / "down-scaled_cropped_images").glob("*.png"))) == 9
    code, stdout, _ = run_script("balance_data", ["--crops", str(out), "--out", str(tmp_path / "s.csv")],
                                 capsys)
    assert code == 0 and "train 6, validation 0, test 3" in stdout
    with open(tmp_path / "s.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 9 and {r["split"] for r in rows} == {"train", "test"}


def test_extract_sizes_for_x4(tmp_path, kaggle_dir, capsys):
    code, _, _ = run_script("extract_crops", ["--data-dir", str(kaggle_dir), "--out-dir", str(tmp_path),
                                              "--sizes", "13,50", "--limit", "2", "--quiet"], capsys)
    from PIL import Image

    assert code == 0
    assert np.asarray(Image.open(tmp_path / "down-scaled_cropped_images/1.png")).shape == (13, 13, 4)
    assert not (tmp_path / "original_cropped_images/2.png").exists()


def test_extract_demo(tmp_path, capsys):
    code, stdout, _ = run_script("extract_crops", ["--source", "demo", "--out-dir", str(tmp_path),
                                                   "--limit", "4", "--quiet"], capsys)
    assert code == 0 and "DEMO DATA, not patient data" in stdout
    assert (tmp_path / "crops.csv").read_text().count(",demo\n") == 4


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys):
    images, masks, _ = make_slices(3)
    short = write_kaggle(tmp_path / "short", images, masks[:2], [1, 2, 3])
    (tmp_path / "empty").mkdir()
    cases = [
        (["--source", "kaggle", "--data-dir", str(tmp_path / "empty")], "lacks images.npy"),
        (["--source", "kaggle", "--data-dir", str(short)], "differ in length"),
        (["--source", "figshare", "--data-dir", str(tmp_path / "empty")], "no N.mat files"),
        (["--data-dir", str(tmp_path / "empty")], "no brain tumour data found"),
        (["--sizes", "50,25"], "smaller than the target"),
        (["--sizes", "25"], "exactly 2 numbers"),
    ]
    for argv, message in cases:
        code, _, stderr = run_script("extract_crops", argv + ["--out-dir", str(tmp_path / "o")], capsys)
        assert code == 2, argv
        assert message in stderr and stderr.count("\n") == 1 and "Traceback" not in stderr
    code, _, stderr = run_script("balance_data", ["--crops", str(tmp_path / "empty")], capsys)
    assert code == 2 and "not a crop folder" in stderr
