"""Benchmark: crop extraction of a Kaggle-format set of 3064 slices of 512x512.

Makes the set in a temporary folder (random int16 images, one tumour mask each,
15 slices at 256x256 as in the real data), runs extract_crops.py's code on it and
prints the time. Usage: python3 -m benchmarks.extract_speed [--slices 3064]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mrisr.paper.extraction import extract_crops
from mrisr.paper.sources import read_kaggle


def make_kaggle_set(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    images = np.empty(count, dtype=object)
    masks = np.empty(count, dtype=object)
    for i in range(count):
        size = 256 if i % 200 == 0 and i // 200 < 15 else 512
        images[i] = rng.integers(0, 2000, (size, size), dtype=np.int16)
        mask = np.zeros((size, size), dtype=bool)
        top, left = rng.integers(20, size // 2, size=2)
        height, width = rng.integers(10, size // 4, size=2)
        mask[top : top + height, left : left + width] = True
        masks[i] = mask
    np.save(folder / "images.npy", images, allow_pickle=True)
    np.save(folder / "masks.npy", masks, allow_pickle=True)
    np.save(folder / "labels.npy", rng.integers(1, 4, count))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=3064)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        data = Path(temporary) / "brain_tumor_dataset"
        data.mkdir()
        start = time.perf_counter()
        make_kaggle_set(data, args.slices)
        print(f"made a Kaggle-format set of {args.slices} slices in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        source = read_kaggle(data)
        loaded = time.perf_counter() - start
        summary = extract_crops(source, Path(temporary) / "out", progress=False)
        total = time.perf_counter() - start
        print(f"read .npy (restricted unpickler): {loaded:.1f} s")
        print(f"extract_crops: {summary.written} pairs in {total:.1f} s total "
              f"({1000 * total / summary.written:.2f} ms per slice)")


if __name__ == "__main__":
    main()
