"""Shipping weights trained on the real crops: the best of several runs chosen on validation, saved
without its optimizer beside its history and a provenance record (the data's attribution and licence,
the recipe, validation and test figures beside bicubic). `make pretrained-mri` runs it through
benchmarks/shipped_weights.py --ship; nets/shipped.py names the shipped files."""

from pathlib import Path

from mrisr.core.files import load_json, save_json
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.nets.shipped import DATA_ATTRIBUTION, DATA_LICENCE
from mrisr.paper.crops import read_crops
from mrisr.paper.names import history_path_for
from mrisr.paper.splits import read_test_split_file, split_from_record


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


def consistent_scores(model, crop_set, crop_indices, scale):
    """Mean PSNR/SSIM of `model` and of bicubic on consistent pairs of the given crops."""
    from mrisr.paper.evaluation import score_beside_bicubic
    from mrisr.paper.pairs import make_pairs

    pairs = make_pairs(crop_set.subset(crop_indices), "consistent", scale)
    _, _, model_scores, bicubic_scores = score_beside_bicubic(model, pairs)
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


def ship_weights(candidates, crops_folder, scale, test_split_file, destination, say=inform):
    """Choose the best of `candidates` (consistent-pair models trained on `crops_folder` with the
    paper's test split held out) on validation PSNR, and save it to `destination` without its
    optimizer, with its history and a provenance record (data attribution, recipe, validation and
    test figures) beside it. Returns the provenance."""
    from mrisr.core.model_files import save_model
    from mrisr.nets.loading import load_model

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
