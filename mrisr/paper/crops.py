"""The crop folders the paper's pipeline writes and every script reads, and the crop set read from one.

A crop folder holds `down-scaled_cropped_images/{i}.png` (input),
`original_cropped_images/{i}.png` (target) and, when made here, `crops.csv`.
"""

import csv
import dataclasses
from pathlib import Path

import numpy as np

from mrisr.errors import UserError

INPUT_DIR = "down-scaled_cropped_images"
INPUT_DIR_ALIASES = ("down-scaled_cropped_images", "downscaled_cropped_images")
TARGET_DIR = "original_cropped_images"
CSV_NAME = "crops.csv"
CSV_FIELDS = ("crop_index", "label", "patient_id", "ymin", "xmin", "ymax", "xmax", "source")


@dataclasses.dataclass
class CropRecord:
    """One row of crops.csv."""

    crop_index: int
    label: int | None
    patient_id: str | None
    ymin: int
    xmin: int
    ymax: int
    xmax: int
    source: str


def save_crop_png(path, grey):
    """Write a grey crop in [0, 1] as the paper did: an RGBA PNG in matplotlib's 'bone' colour map."""
    import matplotlib.pyplot as plt

    plt.imsave(path, grey, cmap="bone", vmin=0.0, vmax=1.0)


def write_crops_csv(path, records):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_FIELDS)
        for record in records:
            row = dataclasses.astuple(record)
            writer.writerow(["" if value is None else value for value in row])


def read_crops_csv(path):
    """Read crops.csv into {crop_index: CropRecord}."""
    records = {}
    with open(path, newline="", errors="replace") as file:
        reader = csv.DictReader(file)
        missing = set(("crop_index", "label")) - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            def number(key):
                value = row.get(key, "")
                if value in ("", None):
                    return None
                try:
                    return int(value)
                except (TypeError, ValueError):
                    raise UserError(f"{path} line {line}: {key} {value!r} is not a whole number (a malformed "
                                    f"{CSV_NAME}; extract_crops.py writes a correct one)") from None

            index = number("crop_index")
            if index is None:
                raise UserError(f"{path} line {line}: no crop_index")
            records[index] = CropRecord(
                index,
                number("label"),
                row.get("patient_id") or None,
                number("ymin"),
                number("xmin"),
                number("ymax"),
                number("xmax"),
                row.get("source", ""),
            )
    return records


# --- reading crop folders back ----------------------------------------------


@dataclasses.dataclass
class CropSet:
    """Paired crops as float32 RGBA in [0, 1], in ascending crop index order."""

    indices: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None
    patient_ids: np.ndarray | None
    folder: Path
    digests: np.ndarray | None = None  # per crop: a hash of its input and target pixels
    fingerprint: str | None = None  # of the whole folder: every index with its pixels

    def __len__(self):
        return len(self.indices)

    def subset(self, crop_indices):
        """The crops with the given crop indices, in the given order."""
        position = {index: i for i, index in enumerate(self.indices.tolist())}
        try:
            rows = np.array([position[int(index)] for index in crop_indices], dtype=int)
        except KeyError as error:
            raise UserError(f"crop {error.args[0]} is not in {self.folder}") from None
        take = lambda array: None if array is None else array[rows]
        return CropSet(
            self.indices[rows], self.inputs[rows], self.targets[rows],
            take(self.labels), take(self.patient_ids), self.folder, take(self.digests), self.fingerprint,
        )


def _numbered_pngs(folder):
    files = {}
    for path in folder.iterdir():
        if path.suffix.lower() == ".png" and path.stem.isdigit():
            files[int(path.stem)] = path
    return files


def find_input_dir(folder):
    for name in INPUT_DIR_ALIASES:
        if (folder / name).is_dir():
            return folder / name
    return None


def read_png_rgba(path, as_uint8=False):
    """Read a PNG as float32 RGBA in [0, 1] (grey and RGB files get channels added), or as uint8."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGBA"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UserError(f"cannot read image {path}: {error}") from None
    if array.dtype != np.uint8:
        raise UserError(f"{path}: expected 8-bit pixels, found {array.dtype}")
    return array if as_uint8 else array.astype(np.float32) / 255.0


def _read_same_size(files, indices, folder):
    """Read numbered PNGs as uint8 RGBA; every one must have the size of the first."""
    arrays, shape = [], None
    for index in indices:
        array = read_png_rgba(files[index], as_uint8=True)
        if shape is None:
            shape = array.shape
        elif array.shape != shape:
            raise UserError(f"{files[index]} is {array.shape[0]}x{array.shape[1]} but the crops before it in "
                            f"{folder} are {shape[0]}x{shape[1]}: a crop folder holds crops of one size")
        arrays.append(array)
    return np.stack(arrays)


def crop_digests(indices, inputs, targets):
    """Per crop, a hash of its pixels (uint8 RGBA input and target), and one of the whole folder."""
    import hashlib

    digests = [hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:20] for x, y in zip(inputs, targets)]
    whole = hashlib.sha256()
    for index, digest in zip(indices, digests):
        whole.update(f"{int(index)}:{digest};".encode())
    return np.array(digests), whole.hexdigest()[:32]


def read_crops(folder, limit=None):
    """Read a crop folder into a CropSet, pairing input and target by numeric index.

    Accepts `down-scaled_cropped_images` (the paper's name) or
    `downscaled_cropped_images` (the authors' code). Labels and patient ids
    come from crops.csv when it is present; otherwise they are None.
    """
    folder = Path(folder)
    input_dir, target_dir = find_input_dir(folder), folder / TARGET_DIR
    if input_dir is None or not target_dir.is_dir():
        raise UserError(
            f"{folder} is not a crop folder: expected {INPUT_DIR}/ (or downscaled_cropped_images/) "
            f"and {TARGET_DIR}/ inside it; make them with extract_crops.py"
        )
    inputs, targets = _numbered_pngs(input_dir), _numbered_pngs(target_dir)
    for name, have, other in ((input_dir, inputs, targets), (target_dir, targets, inputs)):
        unpaired = sorted(set(have) - set(other))
        if unpaired:
            raise UserError(f"{name / (str(unpaired[0]) + '.png')} has no partner crop in the other folder")
    indices = sorted(inputs)
    if not indices:
        raise UserError(f"{folder} holds no crops")
    if limit is not None:
        indices = indices[:limit]
    input_bytes = _read_same_size(inputs, indices, input_dir)
    target_bytes = _read_same_size(targets, indices, target_dir)
    digests, fingerprint = crop_digests(indices, input_bytes, target_bytes)
    input_array = input_bytes.astype(np.float32) / 255.0
    target_array = target_bytes.astype(np.float32) / 255.0
    del input_bytes, target_bytes
    labels = patient_ids = None
    csv_path = folder / CSV_NAME
    if csv_path.is_file():
        records = read_crops_csv(csv_path)
        absent = [i for i in indices if i not in records]
        if absent:
            raise UserError(f"{csv_path} has no row for crop {absent[0]}")
        if all(records[i].label is not None for i in indices):
            labels = np.array([records[i].label for i in indices], dtype=int)
        if all(records[i].patient_id for i in indices):
            patient_ids = np.array([records[i].patient_id for i in indices], dtype=object)
    return CropSet(np.array(indices, dtype=int), input_array, target_array, labels, patient_ids, folder,
                   digests, fingerprint)
