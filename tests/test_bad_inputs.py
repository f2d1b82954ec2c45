"""Every script, fed bad input as a new user would: one line on stderr, exit status 2, no traceback,
and nothing written or changed anywhere in the working folder."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_crop_folder, run_script, write_dicom, write_nifti, write_series


def snapshot(folder):
    """Every file under `folder` with its size, modification time and content hash."""
    state = {}
    for root, folders, files in os.walk(folder):
        for name in files + [f for f in folders if os.path.islink(os.path.join(root, f))]:
            path = Path(root) / name
            info = path.lstat()
            content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "link"
            state[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns, content)
        for name in folders:
            state[str((Path(root) / name).relative_to(folder)) + "/"] = "folder"
    return state


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Crops, a trained x2 model with its record, and files broken in each way the table uses."""
    from mrisr.paper.crops import read_crops
    from mrisr.paper.splits import make_split
    from mrisr.paper.training import CNNSettings, train_cnn

    root = tmp_path_factory.mktemp("workspace")
    crops = make_crop_folder(root / "crops", count=30, sizes=(6, 12))
    crop_set = read_crops(crops)
    settings = CNNSettings(loss_setup="L1", arch="espcn", epochs=1, batch_size=8, learning_rate=1e-3, xla=False,
                           pairs="consistent", scale=2)
    train_cnn(crop_set, make_split(crop_set.indices, crop_set.labels), settings, root / "models", verbose=0)
    mixed = make_crop_folder(root / "mixed", count=6, sizes=(6, 12))
    from PIL import Image

    Image.new("RGBA", (7, 7)).save(mixed / "original_cropped_images" / "3.png")
    malformed = make_crop_folder(root / "malformed", count=6, sizes=(6, 12))
    text = (malformed / "crops.csv").read_text().splitlines()
    text[2] = "two," + text[2].split(",", 1)[1]
    (malformed / "crops.csv").write_text("\n".join(text) + "\n")
    (root / "history").mkdir()
    (root / "history" / "CNN_MSE_model_history.json").write_text(json.dumps({"history": [1, 2, 3]}))
    np.save(root / "empty.npy", np.zeros((0, 0)))
    np.save(root / "volume.npy", np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    full = np.random.default_rng(1).random((64, 64))
    np.save(root / "whole.npy", full)
    np.save(root / "big.npy", np.zeros((2000, 2000)))  # x64: 131 GB of float64 output
    (root / "truncated.npy").write_bytes((root / "whole.npy").read_bytes()[:300])
    (root / "random.keras").write_bytes(os.urandom(2000))
    (root / "a_file").write_text("not a folder")
    os.symlink(root / "volume.npy", root / "link_to_volume.npy")
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), root / "iso.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 6, 3), np.float32), np.diag([1, 1, 4, 1])), root / "4d.nii.gz")
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 1), np.float32), np.diag([1, 1, 4, 1])), root / "flat.nii.gz")
    np.save(root / "plane.npy", np.zeros((8, 8), np.float32))
    from tests.conftest import write_dicom

    write_dicom(root / "one.dcm", np.zeros((8, 8), np.uint16))
    (root / "splits_foreign.csv").write_text("crop_index,split\n0,train\n1,validation\n999,test\n")
    broken_series(root)
    write_nifti(root / "complex.nii.gz", np.ones((8, 8, 6), np.complex64), (1.0, 1.0, 4.0))
    np.save(root / "mask.npy", np.zeros((8, 8), bool))
    for name, bad in (("zero_affine.nii", 0.0), ("nan_affine.nii", np.nan)):
        path = write_nifti(root / name, np.ones((8, 8, 6), np.float32), (1.0, 1.0, 4.0))
        header = nibabel.load(path).header.copy()
        header["qform_code"], header["sform_code"] = 0, 1
        for row in ("srow_x", "srow_y", "srow_z"):
            header[row] = bad
        path.write_bytes(header.binaryblock + path.read_bytes()[len(header.binaryblock):])
    model_bytes = (root / MODEL).read_bytes()  # a .keras file whose zip fails its CRC check
    (root / "crc.keras").write_bytes(model_bytes[:200] + bytes([model_bytes[200] ^ 0xFF]) + model_bytes[201:])
    import keras

    from mrisr.core.model_files import save_model

    save_model(keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)]), root / "dense.keras")
    save_model(keras.Sequential([keras.Input((25, 30, 4)), keras.layers.UpSampling2D(2)]), root / "oblong.keras")
    odd_files(root)
    return root


def odd_files(root):
    """The unusual inputs of the third round: each a clear line, never a traceback or a silent loss."""
    import pydicom
    from PIL import Image

    from tests.conftest import dicom_dataset
    from tests.test_dcm2niix import through_plane_file

    def series(name):
        folder = root / name
        write_series(folder, np.random.default_rng(4).integers(0, 3000, size=(8, 8, 6)).astype(np.uint16))
        return sorted(folder.iterdir())

    series("series_garbage")[2].write_bytes(os.urandom(3000))  # a slice file that is not DICOM
    files = series("series_garbage_unnamed")
    files[-1].rename(files[-1].with_name("IM0006"))  # the last slab, under a name without a suffix
    (files[-1].with_name("IM0006")).write_bytes(os.urandom(3000))
    victim = series("series_thickness")[3]
    dataset = pydicom.dcmread(victim)
    dataset.SliceThickness = 5.0
    dataset.save_as(victim)
    legacy = dicom_dataset(np.zeros((8, 8), np.uint16), orientation=(1, 0, 0, 0, 1, 0), position=(0, 0, 0))
    legacy.NumberOfFrames = 6
    legacy.PixelData = np.zeros((6, 8, 8), np.uint16).tobytes()
    legacy.save_as(root / "legacy_multiframe.dcm", enforce_file_format=True)
    wide = dicom_dataset(np.zeros((8, 8), np.uint16))
    wide.BitsAllocated, wide.BitsStored, wide.HighBit = 32, 32, 31
    wide.PixelData = np.full((8, 8), 70000, np.uint32).tobytes()
    wide.save_as(root / "uint32.dcm", enforce_file_format=True)
    Image.new("L", (20000, 20000)).save(root / "huge.png")
    pages = [Image.new("L", (16, 16), value) for value in (10, 200)]
    pages[0].save(root / "pages.tif", save_all=True, append_images=pages[1:])
    through_plane_file(root, 2)


def broken_series(root):
    """DICOM series folders that are wrong in one way each (made with pydicom)."""
    import pydicom

    def series(name):
        folder = root / name
        write_series(folder, np.random.default_rng(3).integers(0, 3000, size=(8, 8, 6)).astype(np.uint16))
        return sorted(folder.iterdir())

    victim = series("series_spacing")[2]
    dataset = pydicom.dcmread(victim)
    dataset.PixelSpacing = [0.5, 0.5]
    dataset.save_as(victim)
    victim = series("series_rotated")[2]
    dataset = pydicom.dcmread(victim)
    orientation = [float(v) for v in dataset.ImageOrientationPatient]
    dataset.ImageOrientationPatient = orientation[3:] + [-v for v in orientation[:3]]  # same normal
    dataset.save_as(victim)
    victim = series("series_corrupt")[-1]
    victim.write_bytes(victim.read_bytes()[:300])
    victim = series("series_truncated")[-1]
    victim.write_bytes(victim.read_bytes()[:-30])
    folder = root / "series_sheared"
    folder.mkdir()
    for k in range(6):
        write_dicom(folder / f"{k}.dcm", np.full((8, 8), 100 * k, np.uint16), orientation=(1, 0, 0, 0, 1, 0),
                    position=(0.0, 1.5 * k, 4.0 * k), series="1.2.826.0.1.3680043.8.498.5")


MODEL = "models/CNN_espcn_L1_consistent_x2_model.keras"

CASES = [
    # extract_crops.py
    ("extract_crops", ["--source", "demo", "--sizes", "25,50000", "--out-dir", "x"], "at most 2048"),
    ("extract_crops", ["--source", "demo", "--margin", "-3", "--out-dir", "x"], "--margin"),
    ("extract_crops", ["--source", "demo", "--out-dir", "crops", "--limit", "2"], "already holds crops"),
    ("extract_crops", ["--source", "demo", "--out-dir", "a_file", "--limit", "2"], "is a file"),
    ("extract_crops", ["--source", "demo", "--out-dir", "a_file/sub", "--limit", "2"], "a_file"),
    # balance_data.py
    ("balance_data", ["--crops", "crops", "--seed", "-1", "--out", "s.csv"], "--seed must be"),
    ("balance_data", ["--crops", "crops", "--out", "crops"], "is a folder"),
    ("balance_data", ["--crops", "crops", "--out", "a_file/s.csv"], "not a folder"),
    ("balance_data", ["--crops", "malformed", "--out", "s.csv"], "is not a whole number"),
    ("balance_data", ["--crops", "mixed", "--out", "s.csv"], "crops of one size"),
    # CNN.py
    ("CNN", ["train", "MSE", "--crops", "crops", "--lr", "nan", "--models-dir", "m"], "--lr must be positive"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--lr", "-1", "--models-dir", "m"], "--lr must be positive"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--lr", "inf", "--models-dir", "m"], "--lr must be positive"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--lr", "1e3", "--models-dir", "m"], "--lr must be at most 1"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--decay", "-1", "--models-dir", "m"], "--decay must not be"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--seed", "-4", "--models-dir", "m"], "--seed must be"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--splits", "none.csv", "--models-dir", "m"], "does not exist"),
    ("CNN", ["train", "MSE", "--crops", "crops", "--splits", "splits_foreign.csv", "--models-dir", "m"],
     "crop 999"),
    ("CNN", ["train", "L1", "--arch", "espcn", "--crops", "crops", "--models-dir", "a_file", "--epochs", "1"],
     "a_file"),
    ("CNN", ["train", "L1", "--arch", "espcn", "--pairs", "consistent", "--scale", "1", "--crops", "crops"],
     "--scale must be at least 2"),
    ("CNN", ["evaluate", MODEL, "--crops", "crops", "--scale", "4", "--out", "e"], "give the --scale"),
    ("CNN", ["evaluate", MODEL, "--crops", "crops", "--pairs", "consistent", "--scale", "4", "--out", "e"],
     "give the --scale"),
    ("CNN", ["evaluate", "random.keras", "--crops", "crops", "--out", "e"], "not a Keras model file"),
    ("CNN", ["evaluate", MODEL, "--crops", "crops", "--out", "a_file/e"], "not a folder"),
    ("CNN", ["evaluate", MODEL, "--crops", "crops", "--seed", "3", "--out", "e"], "crops the model was trained on"),
    # GAN.py
    ("GAN", ["train", "1", "--crops", "crops", "--content-loss", "mse", "--adversarial-weight", "-1",
             "--models-dir", "g"], "--adversarial-weight must not be negative"),
    ("GAN", ["train", "1", "--crops", "crops", "--batch-size", "0", "--models-dir", "g"], "--batch-size"),
    ("GAN", ["train", "1", "--crops", "crops", "--seed", "-2", "--models-dir", "g"], "--seed must be"),
    # CNN_plot_losses.py
    ("CNN_plot_losses", ["--models-dir", "history", "--out-dir", "p"], "is not a CNN history file"),
    # plot_visual_predictions.py
    ("plot_visual_predictions", ["CNN", "--crops", "crops", "--models-dir", "models"], "missing model(s)"),
    ("plot_visual_predictions", ["GAN", "--crops", "crops", "--samples", "-1"], "at least 0"),
    # upscale.py
    ("upscale", ["bicubic", "volume.npy", "volume.npy"], "is the input"),
    ("upscale", ["bicubic", "volume.npy", "models/../volume.npy"], "is the input"),
    ("upscale", ["bicubic", "link_to_volume.npy", "volume.npy"], "is the input"),
    ("upscale", ["bicubic", "volume.npy", "link_to_volume.npy"], "is the input"),
    ("upscale", ["bicubic", "empty.npy", "o.npy"], "holds no values"),
    ("upscale", ["bicubic", "truncated.npy", "o.npy"], "truncated or corrupt"),
    ("upscale", ["random.keras", "volume.npy", "o.npy"], "not a Keras model file"),
    ("upscale", ["bicubic", "volume.npy", "o.npy", "--scale", "100000"], "from 2 to 64"),
    ("upscale", ["bicubic", "big.npy", "o.npy", "--scale", "64"], "memory"),
    ("upscale", ["bicubic", "volume.npy", "a_file/o.npy"], "not a folder"),
    ("upscale", ["bicubic", "volume.npy", "models"], "is a folder"),
    ("upscale", [MODEL, "volume.npy", "o.npy", "--scale", "4"], "not by --scale 4"),
    # upscale.py self (across slices)
    ("upscale", ["self", "plane.npy", "o.npy", "--axis", "0", "--scale", "2"], "3-D volume"),
    ("upscale", ["self", "flat.nii.gz", "o.nii.gz"], "at least 4 are needed"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz"], "--volume-index"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "5"], "--volume-index must be"),
    ("upscale", ["self", "iso.nii.gz", "o.nii.gz"], "nearly isotropic"),
    ("upscale", ["self", "iso.nii.gz", "o.nii.gz", "--axis", "2"], "only 1.00 times"),
    ("upscale", ["self", "iso.nii.gz", "o.nii.gz", "--axis", "2", "--scale", "1"], "from 2 to 64"),
    ("upscale", ["self", "volume.npy", "o.npy"], "give --axis and --scale"),
    ("upscale", ["self", "one.dcm", "o.dcm"], "give the folder of the series"),
    ("upscale", ["self", "iso.nii.gz", "o.png", "--axis", "2", "--scale", "2"], "cannot write a NIfTI as o.png"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", "--minutes", "0"], "--minutes must be"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", "--save-model", "net.h5"], ".keras"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", "--slice-thickness", "-1"],
     "--slice-thickness must be positive"),
    ("upscale", ["bicubic", "volume.npy", "o.npy", "--slice-thickness", "3"], "MODEL 'self'"),
    ("upscale", ["bicubic", "volume.npy", "o.npy", "--no-self-ensemble"], "MODEL 'self'"),
    ("upscale", ["bicubic", "volume.npy", "o.npy", "--start", "scratch"], "MODEL 'self'"),
    # DICOM series whose slices disagree, are sheared, corrupt or truncated: refused naming the file
    *[("upscale", [model, f"series_{kind}", "o"], message) for model in ("bicubic", "self")
      for kind, message in (("spacing", "has PixelSpacing"), ("rotated", "oriented otherwise"),
                            ("corrupt", "without its pixel data"), ("truncated", "pixel data cannot be read"),
                            ("sheared", "do not run along their normal"))],
    # values without a meaning here, geometry without a place, budgets without an end
    ("upscale", ["self", "complex.nii.gz", "o.nii.gz"], "complex values"),
    ("upscale", ["bicubic", "complex.nii.gz", "o.nii.gz"], "complex values"),
    ("upscale", ["bicubic", "mask.npy", "o.npy"], "booleans"),
    ("upscale", ["self", "zero_affine.nii", "o.nii"], "no place in space"),
    ("upscale", ["bicubic", "nan_affine.nii", "o.nii"], "no place in space"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", "--minutes", "1e308"],
     "minutes must be above 0 and at most 1440"),
    ("upscale", ["self", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", "--steps", "0"], "--steps must be"),
    ("upscale", ["crc.keras", "volume.npy", "o.npy"], "cannot"),
    ("upscale", ["dense.keras", "volume.npy", "o.npy"], "not an image-to-image model"),
    # the third round: unreadable slices are refused (a slab lost without a word before), disagreeing
    # thicknesses, a legacy multi-frame file across slices, sizes and types no output can hold, a saved
    # network given learning options
    *[("upscale", [model, series, "o"], "cannot read") for model in ("bicubic", "self")
      for series in ("series_garbage", "series_garbage_unnamed")],
    ("upscale", ["self", "series_thickness", "o"], "has SliceThickness 5.0"),
    ("upscale", ["self", "legacy_multiframe.dcm", "o.nii", "--scale", "2"], "without per-frame positions"),
    ("upscale", ["bicubic", "legacy_multiframe.dcm", "o.nii"], "without per-frame positions"),
    ("upscale", ["bicubic", "uint32.dcm", "o.dcm"], "writes DICOM pixels of 8 or 16 bits"),
    ("upscale", ["bicubic", "huge.png", "o.png"], "memory"),
    ("upscale", ["bicubic", "pages.tif", "o.tif"], "holds 2 pages"),
    ("upscale", ["oblong.keras", "whole.npy", "o.npy"], "square crops only"),
    *[("upscale", ["through_plane_x2.keras", "4d.nii.gz", "o.nii.gz", "--volume-index", "0", *option],
       "network saved by 'self'") for option in (["--steps", "5"], ["--start", "scratch"], ["--profile", "gaussian"],
                                                 ["--minutes", "3"], ["--slice-thickness", "2"])],
]


@pytest.mark.parametrize("script, argv, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace, script, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    code, out, err = run_script(script, argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert snapshot(workspace) == before
