"""One recipe of `upscale.py self` on a real volume, in this process: how the choices of
`mrisr.scans.through_plane.Recipe` (width, depth, steps, precision) were made.

    python3 -m benchmarks.through_plane_recipe T1.nii.gz [--axis 1] [--factor 4] [--channels 32] [--blocks 8]
        [--steps 12000] [--learning-rate 1e-3] [--batch-size 16] [--thick-length 12] [--width 48]
        [--mixed-precision float32] [--start scratch] [--out results/through_plane/recipes.jsonl]

The volume is made F times thick along --axis (box profile), the network learns from the thick volume as
`upscale.py self` does (the held-out blend included), and the result is scored inside the head against
the original beside the cubic spline, as benchmarks/through_plane.py scores, with the self-ensemble
(the default) and without it. One JSON line per run is appended to --out: the recipe, the steps, the
seconds of learning, the step time the trial measured, the PSNR of the spline and of the result, the
gain (and `gain_once`, without the self-ensemble), `gain_clipped` (the result clipped to the thick volume's
range of values, as the command once did: what that clip costs) and the held-out gain.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from mrisr.commands.cli import script_main
from mrisr.errors import UserError


def build_parser():
    from mrisr.scans.through_plane import Recipe

    default = Recipe()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", help="an isotropic NIfTI to make thick and restore")
    parser.add_argument("--axis", type=int, default=1, choices=(0, 1, 2), help="the axis made thick (default 1)")
    parser.add_argument("--factor", type=int, default=4, help="thin slices per thick slice (default 4)")
    parser.add_argument("--channels", type=int, default=default.channels, help="network width")
    parser.add_argument("--blocks", type=int, default=default.blocks, help="residual blocks")
    parser.add_argument("--steps", type=int, default=default.steps, help="training steps")
    parser.add_argument("--learning-rate", type=float, default=default.learning_rate, help="Adam's initial rate")
    parser.add_argument("--batch-size", type=int, default=default.batch_size, help="patches a step")
    parser.add_argument("--thick-length", type=int, default=default.thick_length, help="patch: thick slices")
    parser.add_argument("--width", type=int, default=default.width, help="patch: in-plane pixels")
    parser.add_argument("--mixed-precision", default="float32", choices=("auto", "float32", "mixed_bfloat16"),
                        help="the policy (default float32; auto: the trial's choice)")
    parser.add_argument("--start", default="scratch", choices=("pretrained", "scratch"),
                        help="begin from the shipped pretrained network (for the default width and depth) or "
                        "from random weights (default scratch, as the records before the starts were made)")
    parser.add_argument("--out", default="results/through_plane/recipes.jsonl", help="JSON lines appended here")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    from benchmarks.machine import describe_machine
    from benchmarks.through_plane import Scorer, thick_volume
    from mrisr.scans.through_plane import (
        Recipe,
        SliceProfile,
        choose_start,
        normalise,
        spline_upsample,
        thin_output,
        train_network,
    )

    image = nibabel.load(args.volume)
    data = np.asarray(image.dataobj, np.float32)
    profile = SliceProfile(args.factor)
    truth, thick, _ = thick_volume(image, data, args.axis, profile)
    recipe = dataclasses.replace(Recipe(), channels=args.channels, blocks=args.blocks, steps=args.steps,
                                 learning_rate=args.learning_rate, batch_size=args.batch_size,
                                 thick_length=args.thick_length, width=args.width)
    volume01, low, span = normalise(thick)
    started = time.monotonic()
    start = choose_start(args.start, profile, recipe, say=lambda line: None)
    if args.start == "pretrained" and start is None:
        raise UserError(f"no pretrained start for x{args.factor} with {args.channels} channels and {args.blocks} "
                        "blocks")
    model, report = train_network(volume01, args.axis, profile, recipe, minutes=1440,
                                  precision=args.mixed_precision, progress=False, say=lambda line: None, start=start)
    learning = time.monotonic() - started
    scorer = Scorer(truth)
    scores = {}
    for self_ensemble in (False, True):
        thin = thin_output(model, volume01, args.axis, args.factor, low, span, np.float32, report.blend_weight,
                           self_ensemble, progress=False)
        scores[self_ensemble] = scorer(thin)[0]
    # the clip the command once applied: thin values within the thick volume's range (its slab averages)
    clipped = scorer(np.clip(thin, thick.min(), thick.max()))[0]
    ours = scores[True]
    spline = scorer(spline_upsample(thick, args.axis, args.factor))[0]
    record = {"volume": Path(args.volume).name, "axis": args.axis, "factor": args.factor,
              "recipe": dataclasses.asdict(recipe), "start": args.start, "precision": report.precision,
              "steps": report.steps,
              "learning_seconds": round(learning, 1), "step_ms": round(1000 * report.step_seconds, 1),
              "spline_psnr": round(spline, 3), "psnr": round(ours, 3), "gain": round(ours - spline, 3),
              "gain_once": round(scores[False] - spline, 3), "gain_clipped": round(clipped - spline, 3),
              "held_out_gain": round(report.held_out_gain, 3), "machine": describe_machine()}
    print(json.dumps(record))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as file:
        file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    sys.exit(main())
