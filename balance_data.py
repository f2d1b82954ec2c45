"""Split the crops into training, validation and test sets, as in the paper (step 2).

    python3 balance_data.py                 # crops in the current folder, the paper's split
    python3 balance_data.py --crops ../shared/data/brain-tumor-crops \
        --test-split ../shared/data/brain-tumor-crops/paper_test_split.csv
"""

import argparse
import sys
import warnings

from mrisr.cli import UserError, script_main


def add_split_options(parser):
    """The split options, shared with CNN.py and GAN.py."""
    parser.add_argument("--crops", default=".",
                        help="crop folder made by extract_crops.py (default: the current folder)")
    parser.add_argument("--seed", type=int, default=None,
                        help="shuffle within each class before splitting (default: off, index order, "
                        "as the paper); also seeds the random splits")
    parser.add_argument("--by-patient", action="store_true",
                        help="split by patient so that no patient is in two sets (needs patient ids)")
    parser.add_argument("--test-split", default=None, metavar="FILE",
                        help="CSV with a crop_index column that fixes the test set; the rest splits 8:1 "
                        "into train and validation (e.g. the paper's paper_test_split.csv)")
    parser.add_argument("--test-split-model", default="CNN",
                        help="with --test-split: keep the rows whose 'model' column is this "
                        "(default CNN; the paper's file also has GAN)")


def build_parser():
    parser = argparse.ArgumentParser(
        description="Split the crops 80/10/10 per class in index order (the paper), or as the options "
        "say, print the sizes and write splits.csv (crop_index,split).")
    add_split_options(parser)
    parser.add_argument("--out", default="splits.csv", help="where to write the split (default splits.csv)")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from mrisr.crops import read_crops
    from mrisr.splits import patients_shared, split_crop_set, write_splits_csv

    crops = read_crops(args.crops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = split_crop_set(crops, args.seed, args.by_patient, args.test_split, args.test_split_model)
    for warning in caught:
        print(f"warning: {warning.message}")
    train, validation, test = split.sizes()
    print(f"{len(crops)} crops from {args.crops}; split: {split.method}")
    print(f"train {train}, validation {validation}, test {test}")
    if crops.labels is not None:
        for name in ("train", "validation", "test"):
            part = crops.subset(split.part(name))
            counts = {int(label): int((part.labels == label).sum()) for label in sorted(set(crops.labels))}
            print(f"  {name:<10} per class: {counts}")
    if crops.patient_ids is not None:
        shared, total = patients_shared(split, crops.indices, crops.patient_ids)
        print(f"{shared} of {total} test patients also appear in training"
              + ("" if args.by_patient else " (use --by-patient to keep patients apart)"))
    write_splits_csv(args.out, split)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
