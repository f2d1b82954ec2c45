"""What a trained model was trained on, and the test set that evaluation takes from that record.

Every training run records in its history file (and its checkpoint) the crop folder, a fingerprint
of that folder's pixels, the crop indices of each part of its split, a hash of the pixels of each
training and validation crop, the pairs and the scale. Evaluation and the figures take the test set
from that record by default. A test set chosen by split options that shares crops (the same pixels,
in any folder) with the model's training or validation crops is refused unless allowed.
"""

from pathlib import Path

from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.paper.names import history_path_for
from mrisr.paper.splits import split_crop_set, split_from_record, split_record


def data_record(crop_set, split, pairs, scale):
    """What a run trains on, as JSON-friendly data."""
    digest_of = dict(zip(crop_set.indices.tolist(), [] if crop_set.digests is None else crop_set.digests.tolist()))
    return {
        "crops": str(Path(crop_set.folder).resolve()),
        "fingerprint": crop_set.fingerprint,
        "crop_count": len(crop_set),
        "pairs": pairs,
        "scale": scale,
        "split": split_record(split),
        "train_digests": [digest_of[i] for i in split.train.tolist() if i in digest_of],
        "validation_digests": [digest_of[i] for i in split.validation.tolist() if i in digest_of],
    }


def data_differences(saved, current):
    """The differences between two data records that change what a run trains on (for --resume)."""
    if saved is None:
        return ["the checkpoint has no record of its crops"]
    differences = []
    if saved.get("fingerprint") != current.get("fingerprint"):
        differences.append(f"crops (the checkpoint's are {saved.get('crops')}, with other pixels)")
    for key in ("pairs", "scale"):
        if saved.get(key) != current.get(key):
            differences.append(f"{key} (checkpoint {saved.get(key)!r}, now {current.get(key)!r})")
    for part in ("train", "validation", "test"):
        if saved["split"][part] != current["split"][part]:
            differences.append(f"the {part} crops of the split")
    return differences


def read_data_record(model_path):
    """The data record beside a model file, or None (a model from elsewhere, an older version)."""
    import json

    path = history_path_for(model_path)
    if not path.is_file():
        return None
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    data = record.get("data") if isinstance(record, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("split"), dict):
        return None
    return data


def choose_test_set(crop_set, data, options, allow_overlap=False, say=inform):
    """The test part of `crop_set` to evaluate a model on, and a description of where it came from.

    - No split options and the same crops the model was trained on: the model's recorded test set.
    - Split options given, other crops (an external test set), or no record: the split options' test set.
    Either way the test crops must share no pixels with the model's training or validation crops,
    unless `allow_overlap` (then the overlap is reported)."""
    if data is not None and not options.given() and data.get("fingerprint") == crop_set.fingerprint:
        split = split_from_record(data["split"])
        test, description = split.test, f"the model's recorded split ({split.method})"
    else:
        split = split_crop_set(crop_set, options)
        test, description = split.test, split.method
        if data is None:
            say("note: no training record beside the model: the test set comes from the split options")
        elif not options.given():
            say(f"note: these crops are not the ones the model was trained on ({data.get('crops')}): "
                "evaluating them as an external test set, split by the split options")
    if data is not None and crop_set.digests is not None:
        check_overlap(crop_set, test, data, allow_overlap, say)
    return crop_set.subset(test), description


def check_overlap(crop_set, test, data, allow_overlap, say):
    """Refuse (or, when allowed, report) test crops whose pixels the model saw in training or validation."""
    seen = {"training": set(data.get("train_digests", ())), "validation": set(data.get("validation_digests", ()))}
    test_set = crop_set.subset(test)
    overlap = {part: [int(i) for i, d in zip(test_set.indices, test_set.digests) if d in digests]
               for part, digests in seen.items()}
    total = sorted(set(overlap["training"]) | set(overlap["validation"]))
    if not total:
        return
    parts = ", ".join(f"{len(v)} in its {k} set" for k, v in overlap.items() if v)
    shown = ", ".join(map(str, total[:10])) + (" ..." if len(total) > 10 else "")
    message = (f"{len(total)} of the {len(test_set)} test crops are crops the model was trained on ({parts}): "
               f"crop(s) {shown}")
    if not allow_overlap:
        raise UserError(message + "; drop the split options to use the model's recorded test set, or give "
                        "`allow_overlap` to evaluate anyway")
    say("warning: " + message + " (`allow_overlap`: their scores flatter the model)")


def recorded_pairs(data, pairs, scale):
    """The pairs and scale to evaluate with: those given, else the model's recorded ones, else paper."""
    if pairs is None:
        pairs = (data or {}).get("pairs") or "paper"
    if scale is None and data is not None and data.get("pairs") == pairs:
        scale = data.get("scale")
    return pairs, scale


def options_record(crops_folder, split, options):
    """What a training run records of its crops folder and split options (beside its data record)."""
    return {"crops": str(crops_folder), "split": split.method, "test_split": options.test_split,
            "splits_file": options.splits_file, "by_patient": options.by_patient}
