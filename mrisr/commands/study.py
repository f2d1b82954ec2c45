"""upscale.py study: every scan of a study made finer across its slices.

    python3 upscale.py study BIDS_DIR OUTPUT_DIR [--participant-label 01 02] [--suffixes T1w FLAIR]
    python3 upscale.py study scans_folder/ thin/ --workers 2
    python3 upscale.py study scans.txt thin/ --scheduler tcp://head-node:8786
"""

import argparse
import sys

from mrisr.commands.cli import add_precision_option, add_standard_options, check_numbers, script_main
from mrisr.scans.through_plane import STARTS, Recipe


def build_parser():
    parser = argparse.ArgumentParser(
        prog="upscale.py study",
        description="Make the slices of every thick-slice scan of a study finer, as 'upscale.py self' does one "
        "(each scan's axis, factor and profile from its own header; a scan that is already isotropic is skipped "
        "with a line). INPUT: a BIDS dataset (with dataset_description.json; the outputs then form a BIDS "
        "derivatives dataset: the same paths with a desc-thin entity), a folder (each NIfTI file and each folder "
        "of one DICOM series, found recursively, is a scan; the outputs keep their names and kinds), or a text file "
        "listing one scan a line. Beside each output, its record (the same name, .json): the input and its "
        "checksum, the settings, the learning and its held-out check, warnings, the machine. A scan is done when "
        "its output and record exist and the record matches the input and the settings: a study run again does "
        "only what is missing. A bad scan never stops the others: it is listed with its reason and the command "
        "ends with exit status 1. OUTPUT_DIR/report.html shows every scan.")
    parser.add_argument("input", metavar="INPUT", help="a BIDS dataset, a folder of scans, or a list file")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="where the outputs, records and report.html go")
    parser.add_argument("analysis_level", nargs="?", choices=("participant",), default="participant",
                        help="the BIDS App convention's third argument (participant, the only level)")
    parser.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                        help="BIDS: only these participants (with or without 'sub-')")
    parser.add_argument("--suffixes", nargs="+", default=None, metavar="SUFFIX",
                        help="BIDS: only images with these suffixes (e.g. T1w T2w FLAIR; default every anat image)")
    parser.add_argument("--workers", type=int, default=None,
                        help="local worker processes, the cores shared among them (default: one per GPU where "
                        "there are GPUs, else one per 2 cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="send the scans to the workers of a Dask distributed cluster (e.g. tcp://host:8786; "
                        "pip install \"mrisr[study]\"; docs/upscaling.md shows SLURM with dask-jobqueue)")
    parser.add_argument("--learn", choices=("scan", "protocol"), default="scan",
                        help="scan (default): each scan learns on its own, as 'self'; protocol: the scans of one "
                        "protocol (the same matrix, voxel sizes and plan) learn one network together, then each "
                        "is fine-tuned from it for --fine-tune-steps (a scan where that does not beat the spline "
                        "on its held-out slices learns on its own; docs/upscaling.md measures both)")
    parser.add_argument("--fine-tune-steps", type=int, default=1000,
                        help="with --learn protocol: steps of each scan from its protocol's network (default 1000; "
                        "0: the protocol's network applied as it is)")
    parser.add_argument("--network", default=None, metavar="NET.keras",
                        help="apply a network saved by 'self --save-model' to every scan instead of learning")
    parser.add_argument("--axis", type=int, default=None, choices=(0, 1, 2), help="as 'self' (default: per scan)")
    parser.add_argument("--scale", type=int, default=None, help="as 'self' (default: per scan)")
    parser.add_argument("--slice-thickness", type=float, default=None, metavar="MM", help="as 'self'")
    parser.add_argument("--profile", choices=("box", "gaussian"), default=None, help="as 'self' (default box)")
    parser.add_argument("--steps", type=int, default=None, help=f"as 'self' (default {Recipe.steps})")
    parser.add_argument("--minutes", type=float, default=None, help="as 'self' (default 10), for each scan")
    parser.add_argument("--start", choices=STARTS, default=None, help="as 'self' (default pretrained)")
    parser.add_argument("--no-self-ensemble", action="store_true", help="as 'self'")
    add_precision_option(parser, "learning", "auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    check_numbers(args, positive=("slice_thickness", "minutes", "steps", "workers"), non_negative=("fine_tune_steps",))
    from mrisr.studies.engine import run_study

    study = run_study(args.input, args.output_dir, participants=args.participant_label, suffixes=args.suffixes,
                      workers=args.workers, scheduler=args.scheduler, learn=args.learn,
                      fine_tune_steps=args.fine_tune_steps, progress=not args.quiet,
                      command=" ".join(["upscale.py", "study"] + argv), network=args.network, axis=args.axis,
                      scale=args.scale, slice_thickness=args.slice_thickness, profile=args.profile, steps=args.steps,
                      minutes=args.minutes, start=args.start, precision=args.mixed_precision,
                      self_ensemble=not args.no_self_ensemble)
    done = sum(result["status"] in ("done", "kept") for result in study.results)
    print(f"{done} of {len(study.results)} scan(s) done, {len(study.failed)} failed; report: {study.report}")
    return 1 if study.failed else 0


if __name__ == "__main__":
    sys.exit(main())
