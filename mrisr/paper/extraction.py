"""The paper's crop recipe (a square around each tumour, resized by OpenCV's cubic kernel, each crop
min-max normalised on its own), and the extraction that writes a crop folder from a slice source."""

import dataclasses
import os
from pathlib import Path

import numpy as np

from mrisr.core.files import atomic_write, remove_stale_temporaries, temporary_path
from mrisr.errors import UserError
from mrisr.nets.imaging import min_max_normalise, resize_cubic
from mrisr.paper.crops import (
    CSV_NAME,
    INPUT_DIR,
    INPUT_DIR_ALIASES,
    TARGET_DIR,
    CropRecord,
    save_crop_png,
    write_crops_csv,
)


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


    if max(sizes) > MAX_CROP_SIDE:
        raise UserError(f"crop sides above {MAX_CROP_SIDE} pixels are not supported, got {max(sizes)}")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"`out_dir` {out_dir} is a file, not a folder")
    existing = existing_crop_count(out_dir) if out_dir.is_dir() else 0
    if existing and not overwrite:
        raise UserError(f"{out_dir} already holds crops ({existing} files): use `overwrite` to replace them "
                        "whole, or another `out_dir`")
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
