"""The weights that ship with the project: their short names, where they are, and where they came from."""

import dataclasses
import json
from pathlib import Path

from mrisr.cli import UserError

DATA_ATTRIBUTION = "Jun Cheng, brain tumor dataset, figshare, 2017, doi 10.6084/m9.figshare.1512427.v5"
DATA_LICENCE = "CC BY 4.0"


@dataclasses.dataclass(frozen=True)
class ShippedWeights:
    short_name: str
    file_name: str
    scale: int
    description: str


SHIPPED = {
    weights.short_name: weights for weights in (
        ShippedWeights("mri-x2", "mri_x2.keras", 2,
                       "edsr trained on real T1 brain MRI (figshare brain tumour data set, CC BY 4.0)"),
        ShippedWeights("mri-x4", "mri_x4.keras", 4,
                       "edsr trained on real T1 brain MRI (figshare brain tumour data set, CC BY 4.0)"),
        ShippedWeights("demo-x2", "demo_espcn_x2.keras", 2,
                       "DEMO weights: espcn trained 2 minutes on the MNI152 template, no patient data"),
    )
}


def pretrained_folder():
    """The folder of the shipped weights: `mrisr/weights` in an installed package (pyproject.toml maps
    the checkout's `pretrained/` there), else the checkout's `pretrained/`."""
    package = Path(__file__).resolve().parent
    installed = package / "weights"
    return installed if installed.is_dir() else package.parent / "pretrained"


def resolve_model(spec):
    """The file a model argument names: a short name of shipped weights (`mri-x2`, `mri-x4`,
    `demo-x2`) becomes its file; anything else is returned as given."""
    weights = SHIPPED.get(str(spec))
    if weights is None:
        return spec
    path = pretrained_folder() / weights.file_name
    if not path.is_file():
        raise UserError(f"the shipped weights {spec} ({path}) are missing from this installation: reinstall the "
                        "package, or retrain them (make pretrained-mri)")
    return str(path)


def describe_model(spec):
    """How the output names the weights it used: the short name, the file and what they are."""
    weights = SHIPPED.get(str(spec))
    if weights is None:
        return str(spec)
    return f"{weights.short_name} ({resolve_model(spec)}: {weights.description})"


def provenance(history, validation, test, bicubic_test, chosen_from, test_split_file):
    """The record that goes beside shipped weights trained on the real crops (JSON-friendly)."""
    data = history.get("data") or {}
    return {
        "data": {
            "attribution": DATA_ATTRIBUTION,
            "licence": DATA_LICENCE,
            "source": "figshare article 1512427 (also on Kaggle as 'Brain Tumor .npy'): 3064 T1-weighted "
                      "contrast-enhanced slices of 233 patients",
            "crops": "the tumour crops made by extract_crops.py (25x25 and 50x50 'bone' RGBA PNGs); the "
                     "networks see the 50x50 crops' grey value and their area-averaged downsample "
                     "(consistent pairs)",
            "crop_count": data.get("crop_count"),
            "fingerprint": data.get("fingerprint"),
            "split": (f"the paper's test split ({Path(test_split_file).name}, model CNN) held out; the rest split "
                      "8:1 into training and validation per class"),
            "train_crops": len(data.get("split", {}).get("train", ())),
            "validation_crops": len(data.get("split", {}).get("validation", ())),
            "test_crops": len(data.get("split", {}).get("test", ())),
        },
        "recipe": {key: history.get("settings", {}).get(key) for key in (
            "arch", "loss_setup", "pairs", "scale", "batch_size", "learning_rate", "lr_schedule", "augment", "ema",
            "time_limit_minutes", "seed")},
        "parameters": history.get("parameters"),
        "training_minutes": round(history.get("training_seconds", 0.0) / 60, 1),
        "epochs": len(history.get("history", {}).get("epoch", ())),
        "versions": history.get("versions"),
        "chosen_on_validation_from": chosen_from,
        "validation": validation,
        "test": test,
        "bicubic_test": bicubic_test,
    }


def read_provenance(path):
    """The provenance block of the history file beside shipped weights, or None."""
    history = Path(path).with_name(Path(path).stem + "_history.json")
    if not history.is_file():
        return None
    with open(history) as file:
        return json.load(file).get("provenance")


def consistent_scores(model, crop_set, crop_indices, scale):
    """Mean PSNR/SSIM of `model` and of bicubic on consistent pairs of the given crops."""
    from mrisr.crops import make_pairs
    from mrisr.evaluation import predict
    from mrisr.metrics import bicubic_upscale, score_images

    pairs = make_pairs(crop_set.subset(crop_indices), "consistent", scale)
    model_scores = score_images(pairs.targets, predict(model, pairs.inputs))
    bicubic_scores = score_images(pairs.targets, bicubic_upscale(pairs.inputs, pairs.targets.shape[1]))
    def figures(scores):
        return {"psnr": round(float(scores.mean_psnr), 3), "ssim": round(float(scores.mean_ssim), 4),
                "images": len(pairs.targets)}
    return figures(model_scores), figures(bicubic_scores)


def without_local_paths(value, folder):
    """`value` (JSON-like) with this machine's path of `folder` replaced by the folder's name."""
    if isinstance(value, dict):
        return {key: without_local_paths(item, folder) for key, item in value.items()}
    if isinstance(value, list):
        return [without_local_paths(item, folder) for item in value]
    if isinstance(value, str):
        for spelling in sorted({str(Path(folder).resolve()), str(folder)}, key=len, reverse=True):
            value = value.replace(spelling, Path(folder).resolve().name)
        return value
    return value


def ship_weights(candidates, crops_folder, scale, test_split_file, destination, say=print):
    """Choose the best of `candidates` (consistent-pair models trained on `crops_folder` with the
    paper's test split held out) on validation PSNR, and save it to `destination` without its
    optimizer, with its history and a provenance record (data attribution, recipe, validation and
    test figures) beside it. Returns the provenance."""
    from mrisr.crops import read_crops
    from mrisr.provenance import history_path_for
    from mrisr.splits import read_test_split_file, split_from_record
    from mrisr.storage import load_json, load_model, save_json, save_model

    crop_set = read_crops(crops_folder)
    paper_test = set(int(i) for i in read_test_split_file(test_split_file, "CNN"))
    chosen = None
    for path in candidates:
        history = load_json(history_path_for(path))
        data = history.get("data") or {}
        if (data.get("pairs"), data.get("scale")) != ("consistent", scale):
            raise UserError(f"{path} was not trained on consistent pairs at x{scale}")
        if data.get("fingerprint") != crop_set.fingerprint:
            raise UserError(f"{path} was trained on other crops than {crops_folder}")
        split = split_from_record(data["split"])
        if set(split.test.tolist()) != paper_test:
            raise UserError(f"{path} did not hold out the paper's test split ({test_split_file})")
        model = load_model(path)
        validation, _ = consistent_scores(model, crop_set, split.validation, scale)
        say(f"{path}: validation PSNR {validation['psnr']:.3f} dB, SSIM {validation['ssim']:.4f}")
        if chosen is None or validation["psnr"] > chosen[2]["psnr"]:
            chosen = (path, model, validation, history, split)
    path, model, validation, history, split = chosen
    test, bicubic_test = consistent_scores(model, crop_set, split.test, scale)
    say(f"chosen {path}: test PSNR {test['psnr']:.3f} dB (bicubic {bicubic_test['psnr']:.3f}), "
        f"SSIM {test['ssim']:.4f} (bicubic {bicubic_test['ssim']:.4f})")
    destination = Path(destination)
    record = provenance(history, validation, test, bicubic_test, [str(Path(c).name) for c in candidates],
                        test_split_file)
    history = {**history, "model": destination.name, "provenance": record}
    history["data"] = {**history["data"], "crops": "brain-tumor-crops (extract_crops.py on figshare 1512427)"}
    history = without_local_paths(history, crops_folder)
    save_model(model, destination, include_optimizer=False)
    save_json(history_path_for(destination), history)
    return record
