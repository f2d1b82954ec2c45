"""Train / validation / test splits: the paper's per-class split and the alternatives."""

import csv
import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from mrisr.core.files import atomic_write
from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.paper.crops import read_crops

SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass
class Split:
    """Crop indices of each part, and how the split was made."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    method: str

    def sizes(self):
        return len(self.train), len(self.validation), len(self.test)

    def part(self, name):
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def _cut(indices, fractions=(0.8, 0.1)):
    """Cut an ordered list into first int(0.8 n), next int(0.1 n), the rest."""
    n = len(indices)
    n_train, n_validation = int(fractions[0] * n), int(fractions[1] * n)
    return indices[:n_train], indices[n_train : n_train + n_validation], indices[n_train + n_validation :]


def _join(parts, method):
    train, validation, test = (np.concatenate([p[i] for p in parts]).astype(int) if parts else
                               np.array([], dtype=int) for i in range(3))
    return Split(train, validation, test, method)


def paper_split(indices, labels, seed=None):
    """The paper's split: per class (ascending label), crops in index order, 80/10/10 by int().

    With `seed`, each class is shuffled first. The parts are concatenated class by class.
    """
    indices, labels = np.asarray(indices), np.asarray(labels)
    rng = None if seed is None else np.random.default_rng(seed)
    parts = []
    for label in np.unique(labels):
        members = np.sort(indices[labels == label])
        if rng is not None:
            members = rng.permutation(members)
        parts.append(_cut(members))
    return _join(parts, "paper (per class, index order)" if seed is None else f"paper, shuffled (seed {seed})")


def random_split(indices, seed=0):
    """A seeded random 80/10/10 split for unlabelled crops."""
    members = np.random.default_rng(seed).permutation(np.sort(np.asarray(indices)))
    return _join([_cut(members)], f"random (seed {seed}, unlabelled)")


def patient_split(indices, labels, patient_ids, seed=0):
    """80/10/10 by patient, per class: no patient is in two parts.

    Patients are grouped by their most frequent label and shuffled (seeded);
    laid end to end, each patient goes to the part (first 80%, next 10%, last
    10% of the class's slices) where the middle of its slices falls.
    """
    indices, patient_ids = np.asarray(indices), np.asarray(patient_ids)
    labels = np.zeros(len(indices), dtype=int) if labels is None else np.asarray(labels)
    rng = np.random.default_rng(seed)
    patients = np.unique(patient_ids)
    patient_label = {}
    for patient in patients:
        values, counts = np.unique(labels[patient_ids == patient], return_counts=True)
        patient_label[patient] = values[np.argmax(counts)]
    parts = []
    for label in sorted(set(patient_label.values())):
        group = rng.permutation([p for p in patients if patient_label[p] == label])
        total = sum(np.count_nonzero(patient_ids == p) for p in group)
        train, validation, test, taken = [], [], [], 0
        for patient in group:
            members = list(np.sort(indices[patient_ids == patient]))
            middle = (taken + len(members) / 2) / total  # where this patient's slices sit
            target = train if middle < 0.8 else validation if middle < 0.9 else test
            target.extend(members)
            taken += len(members)
        parts.append((np.array(train), np.array(validation), np.array(test)))
    return _join(parts, f"by patient (seed {seed})")


def read_test_split_file(path, model=None):
    """Crop indices of a test-split CSV (a `crop_index` column, optionally `model` to filter on)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"test split file {path} does not exist")
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if "crop_index" not in (reader.fieldnames or ()):
            raise UserError(f"{path}: no 'crop_index' column")
        rows = list(reader)
    if model is not None and rows and "model" in rows[0]:
        rows = [row for row in rows if row["model"] == model]
        if not rows:
            raise UserError(f"{path}: no rows with model {model!r}")
    try:
        return np.array(sorted({int(row["crop_index"]) for row in rows}), dtype=int)
    except ValueError:
        raise UserError(f"{path}: 'crop_index' holds a value that is not a whole number") from None


def fixed_test_split(indices, test_indices, labels=None, seed=0):
    """A given test set; the rest splits 8:1 into train and validation (per class when labelled)."""
    indices = np.asarray(indices)
    missing = np.setdiff1d(test_indices, indices)
    if missing.size:
        raise UserError(f"the test split names crop {missing[0]}, which is not among the crops")
    rest = ~np.isin(indices, test_indices)
    rng = np.random.default_rng(seed)
    groups = [indices[rest]] if labels is None else [
        indices[rest & (np.asarray(labels) == label)] for label in np.unique(labels)
    ]
    train, validation = [], []
    for group in groups:
        group = rng.permutation(np.sort(group))
        n_train = int(round(len(group) * 8 / 9))
        train.append(group[:n_train])
        validation.append(group[n_train:])
    return Split(np.concatenate(train).astype(int), np.concatenate(validation).astype(int),
                 np.asarray(test_indices, dtype=int), f"fixed test set, rest 8:1 (seed {seed})")


def make_split(indices, labels=None, patient_ids=None, seed=None, by_patient=False,
               test_indices=None):
    """Choose the split the options ask for; the one function every script uses."""
    if test_indices is not None:
        return fixed_test_split(indices, test_indices, labels, 0 if seed is None else seed)
    if by_patient:
        if patient_ids is None:
            raise UserError("`by_patient` needs patient ids (crops.csv from figshare or demo data)")
        return patient_split(indices, labels, patient_ids, 0 if seed is None else seed)
    if labels is None:
        inform("warning: the crops are unlabelled (no crops.csv with labels): using a seeded random "
               "80/10/10 split instead of the paper's per-class split")
        return random_split(indices, 0 if seed is None else seed)
    return paper_split(indices, labels, seed)


@dataclasses.dataclass
class SplitOptions:
    """How a split is asked for: the options every script shares."""

    seed: Optional[int] = None
    by_patient: bool = False
    test_split: Optional[str] = None  # a CSV with crop_index (and model) columns
    test_split_model: Optional[str] = None
    splits_file: Optional[str] = None  # a splits.csv written by balance_data.py

    def given(self):
        """Whether any option chooses a split (else a model's recorded split applies)."""
        return (self.seed is not None or self.by_patient or self.test_split is not None
                or self.splits_file is not None)


def split_crop_set(crop_set, options=None):
    """Split a CropSet as the SplitOptions ask; returns the Split."""
    options = options or SplitOptions()
    if options.splits_file is not None:
        if options.by_patient or options.test_split is not None:
            raise UserError("`splits` gives the whole split: do not combine it with `by_patient` or `test_split`")
        return read_splits_csv(options.splits_file, crop_set.indices)
    test_indices = None
    if options.test_split is not None:
        test_indices = read_test_split_file(options.test_split, options.test_split_model)
    return make_split(crop_set.indices, crop_set.labels, crop_set.patient_ids, options.seed, options.by_patient,
                      test_indices)


def patients_shared(split, indices, patient_ids, first="test", second="train"):
    """How many patients of one part also appear in another."""
    lookup = dict(zip(np.asarray(indices).tolist(), np.asarray(patient_ids).tolist()))
    first_patients = {lookup[i] for i in split.part(first).tolist()}
    second_patients = {lookup[i] for i in split.part(second).tolist()}
    return len(first_patients & second_patients), len(first_patients)


def write_splits_csv(path, split):
    """Write `crop_index,split` rows (atomically)."""

    rows = sorted((int(index), name) for name in SPLIT_NAMES for index in split.part(name))

    def write(temporary):
        with open(temporary, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(("crop_index", "split"))
            writer.writerows(rows)

    atomic_write(path, write)


def read_splits_csv(path, crop_indices=None):
    """Read a splits.csv (crop_index,split) into a Split; every index must be among `crop_indices`
    when they are given, and no crop may be in two parts."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"splits file {path} does not exist (write one with balance_data.py)")
    parts = {name: [] for name in SPLIT_NAMES}
    seen = set()
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if not {"crop_index", "split"} <= set(reader.fieldnames or ()):
            raise UserError(f"{path}: expected the columns crop_index,split (as balance_data.py writes)")
        for line, row in enumerate(reader, start=2):
            try:
                index = int(row["crop_index"])
            except (TypeError, ValueError):
                raise UserError(f"{path} line {line}: crop_index {row['crop_index']!r} is not a whole number") \
                    from None
            if row["split"] not in parts:
                raise UserError(f"{path} line {line}: split {row['split']!r} is not one of "
                                f"{', '.join(SPLIT_NAMES)}")
            if index in seen:
                raise UserError(f"{path} line {line}: crop {index} is listed twice")
            seen.add(index)
            parts[row["split"]].append(index)
    if crop_indices is not None:
        missing = sorted(seen - set(np.asarray(crop_indices).tolist()))
        if missing:
            raise UserError(f"{path} names crop {missing[0]}, which is not in the crop folder "
                            f"({len(missing)} such crop(s)): was it written for other crops?")
    if not parts["train"] or not parts["validation"]:
        raise UserError(f"{path}: the training and validation parts must not be empty")
    return Split(*(np.array(parts[name], dtype=int) for name in SPLIT_NAMES), f"from {path.name}")


def split_record(split):
    """A Split as JSON-friendly data (recorded with every training run)."""
    return {"method": split.method, **{name: [int(i) for i in split.part(name)] for name in SPLIT_NAMES}}


def split_from_record(record):
    return Split(*(np.array(record[name], dtype=int) for name in SPLIT_NAMES), record["method"])


def read_split_crops(crops_folder, options, say=inform):
    """The crops of a folder and their split by `options` (SplitOptions), said in one line."""

    crops = read_crops(crops_folder)
    split = split_crop_set(crops, options)
    say(f"{len(crops)} crops from {crops_folder}; split {split.method}: "
        "train {}, validation {}, test {}".format(*split.sizes()))
    return crops, split
