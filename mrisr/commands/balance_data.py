"""Split the crops into training, validation and test sets, as in the paper (step 2).

    python3 balance_data.py                 # crops in the current folder, the paper's split
    python3 balance_data.py --crops brain-tumor-crops --test-split brain-tumor-crops/paper_test_split.csv
                                            # crops of the figshare data set and a fixed test split
"""

import argparse
import sys

from mrisr.commands.cli import add_split_options, add_standard_options, script_main, split_options
from mrisr.core.files import check_output_path
from mrisr.paper.crops import read_crops
from mrisr.paper.splits import patients_shared, split_crop_set, write_splits_csv


def build_parser():
    parser = argparse.ArgumentParser(
        description="Split the crops 80/10/10 per class in index order (the paper), or as the options "
        "say, print the sizes and write splits.csv (crop_index,split).")
    add_split_options(parser)
    parser.add_argument("--out", default="splits.csv", help="where to write the split (default splits.csv)")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)

    options = split_options(args)
    check_output_path(args.out)
    crops = read_crops(args.crops)
    split = split_crop_set(crops, options)
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
    print(f"Wrote {args.out}; train on exactly this split with CNN.py train ... --splits {args.out} "
          "(GAN.py likewise)")


if __name__ == "__main__":
    sys.exit(main())
