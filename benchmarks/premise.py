"""Where `upscale.py self`'s premise fails, and whether the command says so: volumes whose truth is
smoother across the slices than in-plane, restored by `upscale.py self` as a user would, scored against
the truth beside the cubic spline, with the held-out line the command printed, the slice-to-slice detail
ratio it measures (mrisr/scans/through_plane/premise.py) and whether it warned.

    python3 -m benchmarks.premise T1.nii.gz [--steps 1500] [--minutes 4] [--self-ensemble]
        [--out results/premise]

Cases, all from VOLUME (a 1 mm isotropic scan) made 4x thick along axis 1 (box profile): the volume as
it is; its truth blurred along axis 1 first (a Gaussian of 2, 4, 8 and 16 mm: the anatomy smoother across
the slices than in-plane); its middle slice along axis 1 repeated along that axis with a slow 20% intensity
wave ("extruded": sharp in-plane, nearly constant across), and that mixed with the volume (5%, 10%, 25%,
50% of the volume). First, the ratio alone (no learning) of the volume as it is, x2 and x4 along each axis.
Scores as benchmarks/through_plane.py: PSNR inside the head, intensities scaled by the truth's 0.1 and
99.9 percentiles.
"""

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.through_plane import Scorer, run_self, thick_volume
from mrisr.commands.cli import script_main


def cases(data):
    from scipy.ndimage import gaussian_filter1d

    yield "as it is", data
    for blur in (2, 4, 8, 16):
        yield f"truth blurred {blur} mm across", gaussian_filter1d(data, blur, axis=1)
    middle = data[:, data.shape[1] // 2, :]
    extruded = np.stack([middle * (0.8 + 0.2 * np.sin(k / 20)) for k in range(data.shape[1])], axis=1)
    yield "extruded slice", extruded.astype(np.float32)
    for share in (0.05, 0.1, 0.25, 0.5):
        yield f"extruded, {share:.0%} of the volume", ((1 - share) * extruded + share * data).astype(np.float32)


def ratio_of(thick, axis, profile):
    from mrisr.scans.through_plane import normalise
    from mrisr.scans.through_plane.premise import detail_ratio

    return detail_ratio(normalise(thick)[0], axis, profile)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", help="a 1 mm isotropic NIfTI volume (the real T1 of the data folder)")
    parser.add_argument("--steps", type=int, default=1500, help="upscale.py self's --steps (default 1500)")
    parser.add_argument("--minutes", type=float, default=4.0, help="upscale.py self's --minutes (default 4)")
    parser.add_argument("--self-ensemble", action="store_true", help="apply with the self-ensemble (4x slower)")
    parser.add_argument("--out", default="results/premise", help="folder of the report (default results/premise)")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    from mrisr.core.files import save_json
    from mrisr.scans.through_plane import SliceProfile

    image = nibabel.load(args.volume)
    data = np.asarray(image.dataobj, np.float32)
    print(f"{Path(args.volume).name} {data.shape}; machine: {describe_machine()}")
    ratios = {}
    for factor in (2, 4):
        for axis in range(3):
            _, thick, _ = thick_volume(image, data, axis, SliceProfile(factor))
            ratios[f"x{factor} axis {axis}"] = round(ratio_of(thick, axis, SliceProfile(factor)), 3)
    print("detail ratio of the volume as it is:", ", ".join(f"{k} {v}" for k, v in ratios.items()))
    records = []
    print(f"{'case':<36} {'ratio':>6} {'spline dB':>9} {'self dB':>8} {'gain':>6} {'held-out':>8}  warned")
    with tempfile.TemporaryDirectory() as folder:
        for name, truth in cases(data):
            truth, thick, affine = thick_volume(image, truth, 1, SliceProfile(4))
            thick_image = nibabel.Nifti1Image(thick, affine)
            thick_image.header.set_zooms([1.0, 4.0, 1.0])
            thick_path, out_path = Path(folder) / "thick.nii.gz", Path(folder) / "thin.nii.gz"
            nibabel.save(thick_image, thick_path)
            seconds, output = run_self(thick_path, out_path, args.minutes, 1, 4, steps=args.steps,
                                       self_ensemble=args.self_ensemble)
            scorer = Scorer(truth)
            from mrisr.scans.through_plane import spline_upsample

            spline = scorer(spline_upsample(thick, 1, 4))[0]
            ours = scorer(np.asarray(nibabel.load(out_path).dataobj, np.float32))[0]
            held_out = re.search(r"held-out slices of this volume: .*\(([+-][0-9.]+) dB\)", output)
            warned = "changes from slice to slice far less" in output
            ratio = ratio_of(thick, 1, SliceProfile(4))
            records.append({"case": name, "ratio": round(ratio, 3), "spline_psnr": round(spline, 2),
                            "self_psnr": round(ours, 2), "gain": round(ours - spline, 2),
                            "held_out_gain": float(held_out[1]) if held_out else None, "warned": warned,
                            "seconds": round(seconds, 1)})
            print(f"{name:<36} {ratio:6.3f} {spline:9.2f} {ours:8.2f} {ours - spline:+6.2f} "
                  f"{records[-1]['held_out_gain']:+8.2f}  {'yes' if warned else 'no'}", flush=True)
    command = "python3 -m benchmarks.premise " + " ".join(argv or sys.argv[1:])
    save_json(Path(args.out) / "premise.json", {"volume": Path(args.volume).name, "machine": describe_machine(),
                                               "command": command, "steps": args.steps, "ratios": ratios,
                                               "records": records})
    print(f"Wrote {Path(args.out) / 'premise.json'}")


if __name__ == "__main__":
    sys.exit(main())
