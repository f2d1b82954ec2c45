"""Crop the tumours out of the brain tumour MRI data set, as in the paper (step 1).

    python3 extract_crops.py                      # reads ./brain_tumor_dataset/
    python3 extract_crops.py --source demo --out-dir demo_run
"""

import argparse
import sys

from mrisr.commands.cli import add_standard_options, parse_int_list, script_main
from mrisr.errors import UserError


def build_parser():
    parser = argparse.ArgumentParser(
        description="Crop each slice's tumour (mask bounding box, squared, plus a margin), resize it "
        "with cubic interpolation to a small input and a large target, min-max normalise each and "
        "save both as RGBA PNGs in matplotlib's 'bone' colour map, with crops.csv beside them.",
    )
    parser.add_argument(
        "--source", choices=("auto", "kaggle", "figshare", "demo"), default="auto",
        help="where the slices come from: 'kaggle' (images.npy, masks.npy, labels.npy), 'figshare' "
        "(a folder of N.mat files), 'demo' (the MNI152 template shipped with nilearn, with synthetic "
        "tumour masks: demo data, not patient data), or 'auto' (default): Kaggle or figshare files in "
        "--data-dir, else the demo when --data-dir is not given",
    )
    parser.add_argument("--data-dir", default=None,
                        help="folder of the source files (default: ./brain_tumor_dataset, as the paper)")
    parser.add_argument("--out-dir", default=".",
                        help="where down-scaled_cropped_images/, original_cropped_images/ and crops.csv "
                        "are written (default: the current folder, as the paper)")
    parser.add_argument("--sizes", default="25,50",
                        help="input and target side in pixels (default 25,50 = the paper; 25,100 or 13,50 "
                        "for x4)")
    parser.add_argument("--margin", type=int, default=20,
                        help="pixels added around the square on each side (default 20 = the paper)")
    parser.add_argument("--centre", action="store_true",
                        help="centre the square on the tumour's box (default: anchored at the box's "
                        "top-left corner, as the authors' code)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N slices (quick runs)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the crops already in --out-dir, whole (default: refuse to touch a folder "
                        "that holds crops, so old and new crops never mix)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from mrisr.paper.extraction import MAX_CROP_SIDE

    sizes = parse_int_list(args.sizes, "--sizes", count=2, maximum=MAX_CROP_SIDE)
    if sizes[0] >= sizes[1]:
        raise UserError(f"--sizes: the input side must be smaller than the target side, got {args.sizes}")
    if args.margin < 0 or args.margin > 10_000:
        raise UserError(f"--margin must be between 0 and 10000 pixels, got {args.margin}")
    if args.limit is not None and args.limit <= 0:
        raise UserError("--limit must be positive")

    from mrisr.paper.extraction import extract_crops
    from mrisr.paper.sources import open_source

    source = open_source(args.source, args.data_dir, args.limit)
    demo = " (DEMO DATA, not patient data)" if source.is_demo else ""
    print(f"Source: {source.name}, {source.count} slices{demo}")
    summary = extract_crops(source, args.out_dir, sizes, args.margin, args.centre, progress=not args.quiet,
                            overwrite=args.overwrite)
    print(
        f"Wrote {summary.written} crop pairs ({sizes[0]}x{sizes[0]} and {sizes[1]}x{sizes[1]}) to "
        f"{summary.out_dir}/ in {summary.seconds:.1f} s; skipped {summary.skipped_empty} slice(s) "
        f"with an empty mask and {summary.skipped_non_finite} with NaN or infinite pixels in the crop window"
        + (f"; replaced the {summary.replaced} files of the earlier crops" if summary.replaced else "") + "."
    )


if __name__ == "__main__":
    sys.exit(main())
