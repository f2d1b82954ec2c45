"""The crop recipe of the paper, and the crop folders it writes and every script reads.

A crop folder holds `down-scaled_cropped_images/{i}.png` (input),
`original_cropped_images/{i}.png` (target) and, when made here, `crops.csv`.
"""

import csv
import dataclasses
import os
from pathlib import Path
from typing import Optional

import numpy as np

from mrisr.errors import UserError
from mrisr.nets.imaging import min_max_normalise, resize_cubic

INPUT_DIR = "down-scaled_cropped_images"
INPUT_DIR_ALIASES = ("down-scaled_cropped_images", "downscaled_cropped_images")
TARGET_DIR = "original_cropped_images"
CSV_NAME = "crops.csv"
CSV_FIELDS = ("crop_index", "label", "patient_id", "ymin", "xmin", "ymax", "xmax", "source")


def bounding_box(mask):
    """First and last rows and columns where the mask is non-zero (inclusive): (ymin, xmin, ymax, xmax)."""
    rows = np.flatnonzero(np.any(mask, axis=1))
    columns = np.flatnonzero(np.any(mask, axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(columns[0]), int(rows[-1]), int(columns[-1])


def crop_window(box, image_shape, margin=20, centre=False):
    """The square crop around a bounding box, as (row_start, row_stop, column_start, column_stop).

    side = max(ymax - ymin, xmax - xmin); the square is anchored at the box's
    top-left corner (the authors' code) or, with `centre=True`, centred on the
    box; `margin` pixels are added on each side and the window is clipped to
    the image. Stops are exclusive.
    """
    ymin, xmin, ymax, xmax = box
    side = max(ymax - ymin, xmax - xmin)
    top, left = ymin, xmin
    if centre:
        top = ymin - (side - (ymax - ymin)) // 2
        left = xmin - (side - (xmax - xmin)) // 2
    height, width = image_shape
    return (
        max(top - margin, 0),
        min(top + side + margin, height),
        max(left - margin, 0),
        min(left + side + margin, width),
    )


def make_crop_pair(image, mask, sizes=(25, 50), margin=20, centre=False):
    """Crop a slice around its tumour and resize to each size: a list of grey images in [0, 1].

    Returns (crops, box), or (None, None) when the mask is empty, or (None, box) when the crop
    window holds a NaN or infinite value (its crops would be blank). Each crop is
    resized with OpenCV-style cubic interpolation (no anti-aliasing) and then
    min-max normalised on its own, as the paper's code did.
    """
    box = bounding_box(mask)
    if box is None:
        return None, None
    row_start, row_stop, column_start, column_stop = crop_window(box, image.shape, margin, centre)
    region = np.asarray(image, dtype=np.float64)[row_start:row_stop, column_start:column_stop]
    if not np.isfinite(region).all():
        return None, box
    crops = [min_max_normalise(resize_cubic(region, (size, size))) for size in sizes]
    return crops, box


@dataclasses.dataclass
class CropRecord:
    """One row of crops.csv."""

    crop_index: int
    label: Optional[int]
    patient_id: Optional[str]
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
    labels: Optional[np.ndarray]
    patient_ids: Optional[np.ndarray]
    folder: Path
    digests: Optional[np.ndarray] = None  # per crop: a hash of its input and target pixels
    fingerprint: Optional[str] = None  # of the whole folder: every index with its pixels

    def __len__(self):
        return len(self.indices)

    def subset(self, crop_indices):
        """The crops with the given crop indices, in the given order."""
        position = {index: i for i, index in enumerate(self.indices.tolist())}
        try:
            rows = np.array([position[int(index)] for index in crop_indices], dtype=int)
        except KeyError as error:
            raise UserError(f"crop {error.args[0]} is not in {self.folder}") from None
        take = lambda array: None if array is None else array[rows]  # noqa: E731
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


# --- pairs for training ------------------------------------------------------

PAIRS = ("paper", "consistent")


def area_downsample(grey, scale):
    """Anti-aliased downsampling of (N, H, W) images by an integer factor: the mean of each block."""
    n, height, width = grey.shape
    return grey.reshape(n, height // scale, scale, width // scale, scale).mean(axis=(2, 4))


def consistent_pairs(crop_set, scale=2):
    """The standard super-resolution pairs made from a CropSet's targets: the target (its centre,
    cut to a multiple of `scale`) and, as input, its area-averaged downsample by `scale` in grey,
    coloured and quantised as a crop PNG would be. Input and target share one intensity scale."""
    from mrisr.nets.imaging import bone_rgba_to_grey, grey_to_bone_rgba

    size = crop_set.targets.shape[1] // scale * scale
    if size == 0:
        raise UserError(f"the {crop_set.targets.shape[1]}-pixel targets are too small for scale {scale}")
    start = (crop_set.targets.shape[1] - size) // 2
    targets = crop_set.targets[:, start:start + size, start:start + size]
    grey = bone_rgba_to_grey(targets)
    inputs = grey_to_bone_rgba(area_downsample(grey, scale))
    return dataclasses.replace(crop_set, inputs=inputs.astype(np.float32), targets=targets)


def make_pairs(crop_set, pairs="paper", scale=None):
    """The training pairs a run asks for: the crops as they are, or consistent pairs (see above).
    For paper pairs `scale`, when given, must match the crops' sizes."""
    if pairs == "consistent":
        return consistent_pairs(crop_set, 2 if scale is None else scale)
    if pairs != "paper":
        raise ValueError(f"unknown pairs {pairs!r}; choose from {', '.join(PAIRS)}")
    low, high = crop_set.inputs.shape[1], crop_set.targets.shape[1]
    if scale is not None and low * scale != high:
        raise UserError(f"--scale {scale} does not fit the crops ({low}x{low} -> {high}x{high}); make x{scale} "
                        f"crops with extract_crops.py --sizes, or use --pairs consistent")
    return crop_set


# --- extraction --------------------------------------------------------------


MAX_CROP_SIDE = 2048  # a crop larger than the slices it comes from only costs memory


@dataclasses.dataclass
class ExtractionSummary:
    written: int
    skipped_empty: int
    seconds: float
    out_dir: Path
    skipped_non_finite: int = 0
    replaced: int = 0  # crops of an earlier extraction that --overwrite replaced


def existing_crop_count(out_dir):
    """How many crop files (and crops.csv) a folder already holds."""
    out_dir = Path(out_dir)
    count = int((out_dir / CSV_NAME).is_file())
    for name in INPUT_DIR_ALIASES + (TARGET_DIR,):
        if (out_dir / name).is_dir():
            count += sum(1 for _ in (out_dir / name).iterdir())
    return count


def extract_crops(source, out_dir, sizes=(25, 50), margin=20, centre=False, progress=True, overwrite=False):
    """Crop every slice of a `SliceSource` and write the crop folders and crops.csv into `out_dir`.

    Slices with an empty mask, or with a non-finite value inside the crop window, are skipped with a
    warning and counted. The crops are written into a staging folder first and moved into place when
    all are done, so an interruption leaves `out_dir` as it was. A folder that already holds crops
    is refused unless `overwrite`, which replaces its crops whole (never a mix of old and new).
    """
    import shutil
    import time

    from tqdm import tqdm

    from mrisr.core.files import atomic_write, remove_stale_temporaries, temporary_path

    if max(sizes) > MAX_CROP_SIDE:
        raise UserError(f"crop sides above {MAX_CROP_SIDE} pixels are not supported, got {max(sizes)}")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out-dir {out_dir} is a file, not a folder")
    existing = existing_crop_count(out_dir) if out_dir.is_dir() else 0
    if existing and not overwrite:
        raise UserError(f"{out_dir} already holds crops ({existing} files): use --overwrite to replace them "
                        "whole, or another --out-dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging_name = out_dir / ".extract_crops"
    remove_stale_temporaries(staging_name)
    staging = temporary_path(staging_name, folder=True)
    try:
        input_dir, target_dir = staging / INPUT_DIR, staging / TARGET_DIR
        for folder in (input_dir, target_dir):
            folder.mkdir()
        records, skipped, non_finite = [], [], []
        slices = tqdm(source.iterate(), total=source.count, desc="extracting crops", unit="slice",
                      disable=not progress)
        for item in slices:
            crops, box = make_crop_pair(item.image, item.mask, sizes, margin, centre)
            if box is None:
                skipped.append(item.index)
                tqdm.write(f"warning: slice {item.index} has an empty tumour mask: skipped")
                continue
            if crops is None:
                non_finite.append(item.index)
                tqdm.write(f"warning: slice {item.index} has NaN or infinite pixels in its crop window: skipped")
                continue
            save_crop_png(input_dir / f"{item.index}.png", crops[0])
            save_crop_png(target_dir / f"{item.index}.png", crops[1])
            records.append(CropRecord(item.index, item.label, item.patient_id, *box, item.source))
        write_crops_csv(staging / CSV_NAME, records)
        # Swap: the old crops aside, the new ones in, then crops.csv replaced atomically.
        old = temporary_path(staging_name, folder=True)
        for name in INPUT_DIR_ALIASES + (TARGET_DIR,):
            if (out_dir / name).exists():
                os.replace(out_dir / name, old / name)
        os.replace(input_dir, out_dir / INPUT_DIR)
        os.replace(target_dir, out_dir / TARGET_DIR)
        atomic_write(out_dir / CSV_NAME, lambda temporary: shutil.copyfile(staging / CSV_NAME, temporary))
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExtractionSummary(len(records), len(skipped), time.perf_counter() - start, out_dir, len(non_finite),
                             existing)
