"""Pretrain the networks `upscale.py self` begins from: one per factor, on the grey target crops of a
crop folder (real T1 slices of many patients), learned as `self` learns from one volume's slices.

    python3 -m mrisr.commands.pretrain_self CROPS [--factors 2,3,4,5,6] [--steps 6000] [--out-dir pretrained]

Writes `through_plane_xF.weights.h5` and `through_plane_xF_history.json` (what made it) into --out-dir
for each factor F; `make pretrained-self CROPS=...` makes the shipped ones.
"""

import argparse
import sys
from pathlib import Path

from mrisr.commands.cli import add_precision_option, add_standard_options, check_numbers, parse_int_list, script_main
from mrisr.core.files import save_json
from mrisr.paper.crops import read_crops


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crops", metavar="CROPS", help="a crop folder made by extract_crops.py (its 50x50 targets, "
                        "as grey, are the training slices)")
    parser.add_argument("--factors", default="2,3,4,5,6",
                        help="thin slices per thick slice, one network each, comma-separated (default 2,3,4,5,6)")
    parser.add_argument("--steps", type=int, default=6000, help="training steps per network (default 6000)")
    parser.add_argument("--out-dir", default="pretrained", help="where the weights go (default pretrained/)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_precision_option(parser, "training", "auto: measured on this machine")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_standard_options(parser)
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    check_numbers(args, positive=("steps",))
    factors = parse_int_list(args.factors, "factor", minimum=2, maximum=16)
    pretrain(args.crops, factors, Path(args.out_dir), args.steps, args.mixed_precision or "auto", args.seed,
             progress=not args.quiet)


def pretrain(crops_folder, factors, out_dir, steps, precision, seed, progress=True, say=print):
    """Read the crops' targets as grey slices, train one network per factor and write each with its record."""
    import dataclasses
    import time

    from mrisr.core.model_files import library_versions
    from mrisr.nets.imaging import bone_rgba_to_grey
    from mrisr.nets.shipped import DATA_ATTRIBUTION, DATA_LICENCE
    from mrisr.scans.through_plane import Recipe, pretrain_network, save_start

    crop_set = read_crops(crops_folder)
    planes = bone_rgba_to_grey(crop_set.targets).astype("float32")
    say(f"{len(planes)} slices of {planes.shape[1]}x{planes.shape[2]} pixels from {crops_folder}")
    for factor in factors:
        started = time.monotonic()
        model, report = pretrain_network(planes, factor, steps, precision, seed, progress, say)
        path = out_dir / f"through_plane_x{factor}.weights.h5"
        save_start(model, path)
        save_json(path.with_name(f"through_plane_x{factor}_history.json"), {"provenance": {
            "what": f"the network upscale.py self begins from at x{factor} (box profile)",
            "data": f"the {len(planes)} target crops of {Path(crops_folder).name} as grey slices: {DATA_ATTRIBUTION}, "
                    f"{DATA_LICENCE}", "crops_fingerprint": crop_set.fingerprint,
            "recipe": dataclasses.asdict(dataclasses.replace(Recipe(), steps=steps)), "seed": seed,
            "steps": report.steps,
            "precision": report.precision, "seconds": round(time.monotonic() - started, 1),
            "held_out_network_db": round(report.held_out_network, 3),
            "held_out_spline_db": round(report.held_out_spline, 3), "versions": library_versions()}})
        say(f"x{factor}: {report.steps} steps in {(time.monotonic() - started) / 60:.1f} min ({report.precision}); "
            f"held-out slices {report.held_out_network:.2f} dB against the cubic spline's "
            f"{report.held_out_spline:.2f} ({report.held_out_gain:+.2f} dB) -> {path}")


if __name__ == "__main__":
    sys.exit(main())
