"""Upscale a whole MRI image or volume with a trained model, or make a thick-slice volume's slices
finer with a network learned from the volume itself.

    python3 upscale.py mri-x2 scan.nii.gz scan_x2.nii.gz             # shipped weights, real MRI, x2
    python3 upscale.py CNN_models/CNN_edsr_L1_consistent_x2_model.keras slice.dcm slice_x2.dcm
    python3 upscale.py bicubic image.png image_x2.png
    python3 upscale.py self thick.nii.gz thin.nii.gz            # across slices, learned from thick.nii.gz
    python3 upscale.py study bids_dataset/ derivatives/          # every scan of a study (commands/study.py)
"""

import argparse
import sys

from mrisr.commands.cli import add_precision_option, add_standard_options, check_numbers, script_main
from mrisr.scans.through_plane import STARTS, Recipe
from mrisr.scans.upscale_file import upscale_file

DEFAULT_STEPS = Recipe.steps


def build_parser():
    parser = argparse.ArgumentParser(
        description="Upscale an image (PNG/JPEG/TIFF), a .npy array (2-D image or 3-D volume), a DICOM file or a "
        "NIfTI volume (slice by slice) with a model trained by CNN.py or GAN.py, or with bicubic interpolation. "
        "With 'upscale.py study INPUT OUTPUT_DIR', every scan of a study (upscale.py study --help). "
        "Or, with MODEL 'self', make the slices of a thick-slice volume (NIfTI, a folder of DICOM slices, a 3-D "
        ".npy) finer: a network learns from the volume's own in-plane detail how the scanner blurred the slice "
        "axis, and undoes it (beginning from one pretrained on real T1 slices: --start). The output keeps the "
        "input's data type (and, in-plane, its intensity range); DICOM and "
        "NIfTI outputs keep the header, with a geometry under which the new voxels tile the old ones. The input "
        "is never overwritten (an output "
        "that names the input is refused) and the output is written whole or not at all. NaN and infinite input "
        "values are kept in place (counted in a warning); a model that outputs NaN is refused.")
    parser.add_argument("model", metavar="MODEL",
                        help="shipped weights by short name: mri-x2 or mri-x4 (trained on real T1 brain MRI, "
                        "figshare brain tumour data set, CC BY 4.0) or demo-x2 (DEMO, MNI152 template); or a .keras "
                        "model file (fully convolutional networks work on any size; the paper's "
                        "fixed 25x25 models run on overlapping tiles; a model saved by 'self' with --save-model "
                        "upscales across slices), 'bicubic', or 'self' (across slices, learned from INPUT)")
    parser.add_argument("input", metavar="INPUT", help="the file to upscale (with 'self': NIfTI, a folder of "
                        "DICOM slices of one series, an enhanced multi-frame DICOM file or a Siemens mosaic, or a "
                        "3-D .npy)")
    parser.add_argument("output", metavar="OUTPUT",
                        help="the file to write; its suffix decides its kind: the input's kind, .npy (the input's "
                        "axis order), or .nii/.nii.gz from any input with geometry; a DICOM series is written as a "
                        "new folder")
    parser.add_argument("--axis", type=int, default=None, choices=(0, 1, 2),
                        help="for volumes: the axis the slices run along (slice by slice: default 2, axial in a "
                        "RAS-oriented NIfTI; with 'self': the axis to make finer, default the one with the largest "
                        "voxel size; needed for .npy)")
    parser.add_argument("--scale", type=int, default=None,
                        help="with 'bicubic': the factor (default 2); with a model: must match the model's; with "
                        "'self': thin slices per thick slice (default: the slice spacing over the in-plane pixel "
                        "size, rounded; needed for .npy)")
    parser.add_argument("--tile", type=int, default=192,
                        help="tile side in input pixels for fully convolutional models (default 192); bounds "
                        "memory on large slices, the result does not depend on it")
    self_options = parser.add_argument_group("across slices ('self', or a model saved by it)")
    self_options.add_argument("--slice-thickness", type=float, default=None, metavar="MM",
                              help="the slices' thickness in mm (default: DICOM's SliceThickness, else the slice "
                              "spacing; thinner than the spacing means a gap between slices)")
    self_options.add_argument("--profile", choices=("box", "gaussian"), default=None,
                              help="the scanner's slice profile: box (default) or gaussian (its full width at half "
                              "maximum is the thickness)")
    self_options.add_argument("--steps", type=int, default=None,
                              help=f"training steps of the network learned by 'self' (default {DEFAULT_STEPS}; "
                              "the gain keeps growing with them: docs/upscaling.md)")
    self_options.add_argument("--minutes", type=float, default=None,
                              help="the most time learning may take (default 10): it ends at --steps or here, "
                              "whichever comes first, and says when it expects fewer steps (docs/upscaling.md)")
    self_options.add_argument("--save-model", default=None, metavar="PATH",
                              help="also save the network learned by 'self' (.keras), to apply it again later as "
                              "MODEL")
    self_options.add_argument("--no-self-ensemble", action="store_true",
                              help="apply the network once, not to four flips of the volume averaged (4 times "
                              "faster to apply, about 0.04 dB lower on a real T1: docs/upscaling.md)")
    self_options.add_argument("--start", choices=STARTS, default=None,
                              help="what 'self' learns from: pretrained (default) begins from a small network "
                              "pretrained on real T1 slices for the factor where one ships (x2 to x6, a box "
                              "profile of touching slices) and learns the rest from INPUT; scratch learns from "
                              "INPUT alone, from random weights (docs/upscaling.md)")
    self_options.add_argument("--no-record", action="store_true",
                              help="write no record beside the output (by default OUTPUT's name with .json: the "
                              "input and its checksum, the settings, the learning and its held-out check, warnings, "
                              "the machine; docs/upscaling.md)")
    parser.add_argument("--volume-index", type=int, default=None,
                        help="for a 4-D NIfTI: the volume to upscale (from 0), in-plane or across slices")
    add_precision_option(parser, "upscaling and learning", "float32 for a model, auto for 'self'")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["study"]:  # upscale.py study INPUT OUTPUT_DIR: many scans (commands/study.py)
        from mrisr.commands import study

        return study.main(arguments[1:])
    args = build_parser().parse_args(arguments)
    check_numbers(args, positive=("slice_thickness", "minutes", "steps"))
    from mrisr.core.precision import choose_policy

    upscale_file(args.model, args.input, args.output, axis=args.axis, scale=args.scale, tile=args.tile,
                 precision=None if args.mixed_precision is None else choose_policy(args.mixed_precision),
                 slice_thickness=args.slice_thickness, profile=args.profile, steps=args.steps, minutes=args.minutes,
                 save_model=args.save_model, volume_index=args.volume_index,
                 self_ensemble=not args.no_self_ensemble, progress=not args.quiet, start=args.start,
                 record=not args.no_record, command=" ".join(["upscale.py"] + arguments))


if __name__ == "__main__":
    sys.exit(main())
