"""The shipped weights: they load, are small, beat bicubic on demo data, resolve by short name and
carry their provenance (no patient data in these tests: the images come from the MNI152 template)."""

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.nets.shipped import DATA_ATTRIBUTION, SHIPPED, describe_model, read_provenance, resolve_model
from mrisr.scans.upscaling import BicubicUpscaler, load_upscaler
from tests.conftest import ROOT, run_script

MINIMUM_GAIN_DB = {"mri-x2": 0.5, "mri-x4": 0.2, "demo-x2": 0.5}


def demo_slice():
    import nibabel

    from mrisr.paper.sources import demo_data_path

    volume = np.asarray(nibabel.load(str(demo_data_path())).dataobj, dtype=np.float64)
    image = volume[20:180, 20:212, 95]
    return (image - image.min()) / (image.max() - image.min())


@pytest.mark.parametrize("short_name", sorted(SHIPPED))
def test_shipped_weights_load_are_small_and_beat_bicubic(short_name):
    from skimage.metrics import peak_signal_noise_ratio

    path = Path(resolve_model(short_name))
    assert path.parent == ROOT / "pretrained" and path.name == SHIPPED[short_name].file_name
    assert path.stat().st_size <= 3 * 1024 * 1024
    upscaler = load_upscaler(short_name)
    scale = SHIPPED[short_name].scale
    assert upscaler.scale == scale and upscaler.tile_safe
    target = demo_slice()
    rows, columns = target.shape[0] // scale, target.shape[1] // scale
    low = target.reshape(rows, scale, columns, scale).mean(axis=(1, 3))
    model_psnr = peak_signal_noise_ratio(target, np.clip(upscaler.upscale(low), 0, 1), data_range=1.0)
    bicubic = np.clip(BicubicUpscaler(scale).upscale(low), 0, 1)
    assert model_psnr > peak_signal_noise_ratio(target, bicubic, data_range=1.0) + MINIMUM_GAIN_DB[short_name]


@pytest.mark.parametrize("short_name", ["mri-x2", "mri-x4"])
def test_weights_from_patient_data_carry_their_attribution_and_figures(short_name):
    record = read_provenance(resolve_model(short_name))
    assert record["data"]["attribution"] == DATA_ATTRIBUTION and record["data"]["licence"] == "CC BY 4.0"
    assert record["recipe"]["pairs"] == "consistent" and record["recipe"]["scale"] == SHIPPED[short_name].scale
    assert record["test"]["psnr"] > record["bicubic_test"]["psnr"]
    assert record["validation"]["images"] > 0 and record["training_minutes"] > 0
    history = json.loads(Path(resolve_model(short_name)).with_name(
        SHIPPED[short_name].file_name.replace(".keras", "_history.json")).read_text())
    assert "/work" not in history["data"]["crops"]  # no machine-specific path ships
    assert DATA_ATTRIBUTION in (ROOT / "README.md").read_text()
    # the model card beside the weights names the data, its licence and the recorded test figures
    card = Path(resolve_model(short_name)).with_suffix(".md").read_text()
    assert "CC BY 4.0" in card and "10.6084/m9.figshare.1512427.v5" in card and "not for diagnosis" in card.lower()
    assert f"{record['test']['psnr']:.2f}" in card and f"{record['bicubic_test']['psnr']:.2f}" in card


def test_every_shipped_weight_file_has_a_model_card_that_installs_with_it():
    import tomllib

    for weights in SHIPPED.values():
        card = (ROOT / "pretrained" / weights.file_name).with_suffix(".md")
        assert card.is_file() and card.read_text().startswith("# Model card")
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.md" in package_data["mrisr.weights"]


def test_other_model_arguments_pass_through_and_missing_files_are_one_line(tmp_path, monkeypatch):
    from mrisr.errors import UserError
    from mrisr.nets import shipped as pretrained

    assert resolve_model("bicubic") == "bicubic" and resolve_model("x.keras") == "x.keras"
    assert "mri-x2" in describe_model("mri-x2") and "CC BY 4.0" in describe_model("mri-x2")
    monkeypatch.setattr(pretrained, "pretrained_folder", lambda: tmp_path)
    with pytest.raises(UserError, match="missing"):
        resolve_model("mri-x4")


def test_upscale_script_names_the_weights_it_used(tmp_path, capsys):
    from PIL import Image

    image = (demo_slice()[:64, :64] * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "slice.png")
    code, out, _ = run_script("upscale", ["demo-x2", str(tmp_path / "slice.png"), str(tmp_path / "up.png")], capsys)
    assert code == 0 and "from demo-x2 (" in out and "demo_espcn_x2.keras" in out
    assert Image.open(tmp_path / "up.png").size == (128, 128)
