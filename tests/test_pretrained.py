"""The shipped weights: they load, are small, beat bicubic on demo data, resolve by short name and
carry their provenance (no patient data in these tests: the images come from the MNI152 template)."""

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.nets.shipped import DATA_ATTRIBUTION, SHIPPED, describe_model, resolve_model
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
    history = json.loads(Path(resolve_model(short_name)).with_name(
        SHIPPED[short_name].file_name.replace(".keras", "_history.json")).read_text())
    record = history["provenance"]
    assert record["data"]["attribution"] == DATA_ATTRIBUTION and record["data"]["licence"] == "CC BY 4.0"
    assert record["recipe"]["pairs"] == "consistent" and record["recipe"]["scale"] == SHIPPED[short_name].scale
    assert record["test"]["psnr"] > record["bicubic_test"]["psnr"]
    assert record["validation"]["images"] > 0 and record["training_minutes"] > 0
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


def test_the_through_plane_starts_are_made_by_their_command_and_carry_their_provenance(tiny_crops, tmp_path, capsys):
    """`python3 -m mrisr.commands.pretrain_self` writes a start per factor that `upscale.py self` loads,
    with its record; the shipped starts carry the data's attribution."""
    from mrisr.nets.models import through_plane_network
    from mrisr.scans.through_plane import Recipe, SliceProfile, load_start

    code, out, err = run_script("mrisr.commands.pretrain_self", [str(tiny_crops), "--factors", "2,3", "--steps", "3",
                                                                 "--mixed-precision", "float32", "--out-dir",
                                                                 str(tmp_path / "starts"), "--quiet"], capsys)
    assert code == 0, err
    recipe = Recipe()
    for factor in (2, 3):
        path = tmp_path / "starts" / f"through_plane_x{factor}.weights.h5"
        assert f"x{factor}: 3 steps" in out and str(path) in out
        record = json.loads(path.with_name(f"through_plane_x{factor}_history.json").read_text())["provenance"]
        assert record["steps"] == 3 and record["precision"] == "float32" and DATA_ATTRIBUTION in record["data"]
        model = through_plane_network(factor, SliceProfile(factor).projection(), recipe.channels, recipe.blocks)
        load_start(model, path)
    code, _, err = run_script("mrisr.commands.pretrain_self", [str(tmp_path / "nowhere"), "--quiet"], capsys)
    assert code == 2 and "not a crop folder" in err and "Traceback" not in err
    for path in sorted((ROOT / "pretrained").glob("through_plane_x*.weights.h5")):
        record = json.loads(path.with_name(path.name.replace(".weights.h5", "_history.json")).read_text())
        assert DATA_ATTRIBUTION in record["provenance"]["data"] and record["provenance"]["steps"] == 6000
