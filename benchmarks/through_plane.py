"""Benchmark of `upscale.py self`: a volume made thick along each axis in turn, restored as a user would
restore it, scored against the original beside nearest, linear and cubic-spline interpolation along the
slice axis.

    python3 -m benchmarks.through_plane [VOLUME] --factor 2,4 [--axes 0,1,2] [--steps N] [--minutes 10]
        [--mixed-precision auto] [--start pretrained] [--no-self-ensemble] [--gap] [--gaussian] [--figure]
        [--out results/through_plane]

VOLUME: a NIfTI (default: the 1 mm MNI152 T1 of the demo source), best isotropic; an anisotropic one
(a real thick-slice scan made thicker still along its slice axis, say) is restored to its own slices.
Thick slices: the box
profile of F slices (each thick slice the average of F thin ones, no gap); with --gap also F=4 with a
1-slice gap (3 of every 4 thin slices averaged); with --gaussian also a Gaussian profile of full width
at half maximum F. Each thick volume is written as NIfTI with its true geometry and `upscale.py self`
runs on it in its own process. Scores: intensities scaled by the original's 0.1 and 99.9 percentiles
and clipped to [0, 1]; PSNR (data range 1) and SSIM (scikit-image, 3-D, data range 1, its map
averaged) inside the head (the original above 5% of the range, dilated by 2 voxels). "ours, clipped": the
result clipped to the thick volume's range of values, as the command once did (a thin slice may be
brighter than the slab average it came from): what that clip would cost.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrisr.commands.cli import parse_int_list, script_main
from mrisr.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def thick_volume(image, data, axis, profile):
    """The thick volume and its affine: the original cut to a multiple of F along `axis`, degraded."""
    from mrisr.scans.through_plane import degrade

    factor = profile.factor
    count = data.shape[axis] // factor * factor
    truth = np.take(data, np.arange(count), axis=axis)
    thick = degrade(truth, axis, profile)
    voxel_map = np.eye(4)
    voxel_map[axis, axis] = factor
    voxel_map[axis, 3] = (factor - 1) / 2  # thick voxel i is centred on thin voxels iF ... iF + F - 1
    return truth, thick, image.affine @ voxel_map


def baselines(thick, axis, factor):
    from mrisr.scans.through_plane import spline_upsample

    thick = np.moveaxis(thick, axis, 0)
    count = thick.shape[0]
    coordinates = np.clip((np.arange(count * factor) + 0.5) / factor - 0.5, 0, count - 1)
    low = np.floor(coordinates).astype(int)
    high = np.minimum(low + 1, count - 1)
    weight = (coordinates - low)[:, None, None]
    linear = thick[low] * (1 - weight) + thick[high] * weight
    nearest = np.repeat(thick, factor, axis=0)
    results = {"nearest": nearest, "linear": linear}
    results = {name: np.moveaxis(value, 0, axis) for name, value in results.items()}
    results["cubic spline"] = spline_upsample(np.moveaxis(thick, 0, axis), axis, factor)
    return results


class Scorer:
    def __init__(self, truth):
        from scipy.ndimage import binary_dilation

        self.low, high = np.percentile(truth, [0.1, 99.9])
        self.span = float(high - self.low)
        self.truth = self.scaled(truth)
        self.mask = binary_dilation(self.truth > 0.05, iterations=2)

    def scaled(self, volume):
        return np.clip((np.asarray(volume, np.float64) - self.low) / self.span, 0, 1)

    def __call__(self, volume):
        from skimage.metrics import structural_similarity

        volume = self.scaled(volume)
        mse = float(np.mean((volume[self.mask] - self.truth[self.mask]) ** 2))
        _, ssim_map = structural_similarity(self.truth, volume, data_range=1.0, full=True)
        return 10 * np.log10(1.0 / mse), float(ssim_map[self.mask].mean())


def run_self(thick_path, out_path, minutes, axis, factor, thickness=None, profile="box", quiet=True, steps=None,
             precision="auto", self_ensemble=True, start="pretrained"):
    command = [sys.executable, str(ROOT / "upscale.py"), "self", str(thick_path), str(out_path),
               "--axis", str(axis), "--scale", str(factor), "--minutes", str(minutes), "--mixed-precision", precision]
    command += ["--quiet"] if quiet else []
    command += [] if self_ensemble else ["--no-self-ensemble"]
    command += ["--start", start]
    if steps is not None:
        command += ["--steps", str(steps)]
    if thickness is not None:
        command += ["--slice-thickness", f"{thickness:g}"]
    command += ["--profile", profile]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"upscale.py self failed: {result.stderr.strip().splitlines()[-1]}")
    return time.perf_counter() - started, result.stdout


def figure(path, truth, thick_nearest, spline, ours, axis, scorer, title):
    """One coronal and one sagittal plane: thick input, cubic spline, ours, truth, and the error maps."""
    from mrisr.paper.plots import _pyplot, save_figure

    plt = _pyplot()
    planes = [a for a in (1, 0, 2) if a != axis]  # the two planes that contain the slice axis (coronal
    # and sagittal when it is axis 2)
    figure_, axes = plt.subplots(len(planes), 6, figsize=(15, 2.9 * len(planes)), squeeze=False)
    for row, plane_axis in enumerate(planes):
        index = truth.shape[plane_axis] // 2
        take = [np.take(scorer.scaled(v), index, axis=plane_axis).T[::-1] for v in (thick_nearest, spline, ours,
                                                                                    truth)]
        panels = take + [np.abs(take[1] - take[3]), np.abs(take[2] - take[3])]
        names = ["thick input", "cubic spline", "ours (self)", "truth", "|spline - truth|", "|ours - truth|"]
        for column, (panel, name) in enumerate(zip(panels, names)):
            axes[row, column].imshow(panel, cmap="gray" if column < 4 else "magma", vmin=0,
                                     vmax=1 if column < 4 else 0.25, aspect="equal")
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(name, fontsize=9)
        axes[row, 0].set_ylabel(f"plane {index} of axis {plane_axis}", fontsize=8)
    figure_.suptitle(title, fontsize=10)
    figure_.tight_layout()
    return save_figure(figure_, path)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", nargs="?", default=None, help="a NIfTI volume (default: the MNI152 T1)")
    parser.add_argument("--factor", default="2,4", help="factors (default 2,4)")
    parser.add_argument("--axes", default="0,1,2", help="axes to make thick in turn (default 0,1,2)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="upscale.py self's --minutes per run: the cap on learning (default 10, as upscale.py)")
    parser.add_argument("--steps", type=int, default=None, help="upscale.py self's --steps (default: its default)")
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="upscale.py self's --mixed-precision (default auto)")
    parser.add_argument("--start", default="pretrained", choices=("pretrained", "scratch"),
                        help="upscale.py self's --start (default pretrained)")
    parser.add_argument("--no-self-ensemble", action="store_true",
                        help="upscale.py self's --no-self-ensemble (apply the network once)")
    parser.add_argument("--gap", action="store_true", help="also F=4 with a 1-slice gap (along the first axis)")
    parser.add_argument("--gaussian", action="store_true", help="also a Gaussian profile, F=4 (first axis)")
    parser.add_argument("--figure", action="store_true", help="write a figure of the first case")
    parser.add_argument("--out", default="results/through_plane", help="folder of the report (JSON, figure)")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import SliceProfile

    path = Path(args.volume) if args.volume else Path(demo_data_path())
    image = nibabel.load(path)
    data = np.asarray(image.dataobj, np.float32)
    zooms = image.header.get_zooms()[:3]
    if data.ndim != 3:
        raise UserError(f"{path} is not a 3-D volume")
    factors = parse_int_list(args.factor, "--factor", minimum=2)
    axes = parse_int_list(args.axes, "--axes", minimum=0)
    cases = [(axis, SliceProfile(factor), None) for factor in factors for axis in axes]
    if args.gap:
        cases.append((axes[0], SliceProfile(4, 3.0), 3.0))
    if args.gaussian:
        cases.append((axes[0], SliceProfile(4, 4.0, "gaussian"), 4.0))
    out_dir = Path(args.out)
    records = []
    from benchmarks.machine import describe_machine

    print(f"{path.name} {data.shape}, upscale.py self --minutes {args.minutes:g}"
          + (f" --steps {args.steps}" if args.steps else "") + f" --mixed-precision {args.mixed_precision}"
          + (" --no-self-ensemble" if args.no_self_ensemble else "") + f" --start {args.start}")
    print(f"machine: {describe_machine()}")
    print(f"{'case':<34} {'method':<14} {'PSNR dB':>8} {'SSIM':>7} {'gain dB':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as temporary:
        for number, (axis, profile, thickness) in enumerate(cases):
            truth, thick, affine = thick_volume(image, data, axis, profile)
            zooms_thick = list(zooms)
            zooms_thick[axis] = zooms[axis] * profile.factor
            thick_image = nibabel.Nifti1Image(thick, affine)
            thick_image.header.set_zooms(zooms_thick)
            thick_path, out_path = Path(temporary) / "thick.nii.gz", Path(temporary) / "thin.nii.gz"
            nibabel.save(thick_image, thick_path)
            seconds, output = run_self(thick_path, out_path, args.minutes, axis, profile.factor, thickness,
                                       profile.kind, steps=args.steps,
                                       precision=args.mixed_precision, self_ensemble=not args.no_self_ensemble,
                                       start=args.start)
            learned = re.search(r"\((\d+) steps of (\d+) ms, ([\w ]+)\)", output)
            steps, step_ms, precision = (int(learned[1]), int(learned[2]), learned[3]) if learned else (None,) * 3
            result = nibabel.load(out_path)
            ours = np.asarray(result.dataobj, np.float32)
            geometry = bool(np.allclose(result.affine, image.affine, atol=1e-4))
            scorer = Scorer(truth)
            name = (f"axis {axis}, x{profile.factor}, {profile.kind}"
                    + (f", thickness {thickness:g}" if thickness and thickness != profile.factor else ""))
            interpolated = baselines(thick, axis, profile.factor)
            scores = {method: scorer(volume) for method, volume in interpolated.items()}
            scores["ours (self)"] = scorer(ours)
            # what clipping the result to the thick volume's range (as the command once did) would cost
            scores["ours, clipped"] = scorer(np.clip(ours, thick.min(), thick.max()))
            spline = scores["cubic spline"][0]
            for method, (psnr_value, ssim_value) in scores.items():
                extra = f"{seconds:8.0f}  {steps} steps, {precision}" if method == "ours (self)" else ""
                print(f"{name:<34} {method:<14} {psnr_value:8.2f} {ssim_value:7.4f} {psnr_value - spline:+8.2f} "
                      f"{extra}", flush=True)
            if not geometry:
                print(f"{name}: WARNING the output's affine differs from the original's")
            records.append({"case": name, "axis": axis, "factor": profile.factor, "profile": profile.kind,
                            "thickness": thickness, "minutes": args.minutes, "seconds": round(seconds, 1),
                            "steps": steps, "step_ms": step_ms, "precision": precision, "start": args.start,
                            "warnings": [line for line in output.splitlines() if line.startswith("warning")],
                            "affine_matches_original": geometry,
                            "scores": {k: {"psnr": round(v[0], 3), "ssim": round(v[1], 4)}
                                       for k, v in scores.items()}})
            if args.figure and number == 0:
                picture = figure(out_dir / "through_plane.png", truth, interpolated["nearest"],
                                 interpolated["cubic spline"], ours, axis, scorer,
                                 f"{path.name}: {name}; PSNR spline {spline:.2f} dB, ours "
                                 f"{scores['ours (self)'][0]:.2f} dB")
                print(f"Wrote {picture}")
    from mrisr.core.files import save_json

    command = "python3 -m benchmarks.through_plane " + " ".join(argv or sys.argv[1:])
    save_json(out_dir / "through_plane.json", {"volume": str(path.name), "machine": describe_machine(),
                                               "command": command, "records": records})
    box = [r for r in records if r["profile"] == "box" and not r["thickness"]]
    for factor in factors:
        gains = [r["scores"]["ours (self)"]["psnr"] - r["scores"]["cubic spline"]["psnr"] for r in box
                 if r["factor"] == factor]
        if gains:
            print(f"x{factor}: mean gain over cubic spline across axes {np.mean(gains):+.2f} dB")
    print(f"Wrote {out_dir / 'through_plane.json'}")


if __name__ == "__main__":
    sys.exit(main())
