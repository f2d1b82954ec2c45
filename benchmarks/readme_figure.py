"""The figure at the top of README.md: a real T1 made thick and restored across its slices by `upscale.py
self`, and an in-plane x2 example with the shipped `mri-x2` weights, each beside interpolation and the truth.

    python3 -m benchmarks.readme_figure T1.nii.gz [--axis 2] [--factor 4] [--steps N] [--out docs/figure.png]

T1.nii.gz: an isotropic 1 mm scan (default: the MNI152 T1 of the demo source). Top row: the scan
made F times thick along --axis of its RAS+ orientation (each thick slice the average of F slices), a
plane that contains that axis, as the thick input, the cubic spline along the slices, `upscale.py
self` (its default recipe, learned from the thick volume alone) and the 1 mm truth. Bottom row: an
axial slice area-averaged 2x2, bicubic, `mri-x2` and the truth. PSNR (data range 1, inside the head,
intensities scaled by the truth's 0.1 and 99.9 percentiles) in each title. The figure is written small
(about 100 KB).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from mrisr.commands.cli import script_main


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", nargs="?", default=None, help="isotropic 1 mm NIfTI (default: the MNI152 T1)")
    parser.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                        help="the axis made thick, in RAS+ order (0 left-right, 1 posterior-anterior, 2 inferior-"
                        "superior: the default)")
    parser.add_argument("--factor", type=int, default=4, help="thin slices per thick slice (default 4)")
    parser.add_argument("--steps", type=int, default=None, help="upscale.py self's --steps (default: its default)")
    parser.add_argument("--out", default="docs/figure.png", help="the figure (default docs/figure.png)")
    return parser


def area_average(image, factor):
    height, width = (s // factor * factor for s in image.shape)
    image = image[:height, :width]
    return image.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3)), image


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import dataclasses

    import nibabel

    from benchmarks.through_plane import Scorer, thick_volume
    from mrisr.paper.plots import _pyplot, save_figure
    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import Recipe, SliceProfile, apply_network, normalise, spline_upsample, train_network
    from mrisr.scans.upscaling import load_upscaler, upscale_pixels

    path = Path(args.volume) if args.volume else Path(demo_data_path())
    image = nibabel.as_closest_canonical(nibabel.load(path))  # RAS+: the pictures the right way up
    data = np.asarray(image.dataobj, np.float32)
    profile = SliceProfile(args.factor)
    truth, thick, _ = thick_volume(image, data, args.axis, profile)
    scorer = Scorer(truth)
    volume01, low, span = normalise(thick)
    recipe = Recipe() if args.steps is None else dataclasses.replace(Recipe(), steps=args.steps)
    model, report = train_network(volume01, args.axis, profile, recipe, minutes=60)
    ours = apply_network(model, volume01, args.axis, args.factor) * span + low
    spline = spline_upsample(thick, args.axis, args.factor)
    nearest = np.repeat(thick, args.factor, axis=args.axis)
    plane_axis = next(a for a in (1, 0, 2) if a != args.axis)  # a plane that contains the slice axis
    index = truth.shape[plane_axis] // 2

    def plane(volume):
        return np.take(scorer.scaled(volume), index, axis=plane_axis).T[::-1]  # superior (or anterior) up

    def score(volume):
        return scorer(volume)[0]

    top = [("thick input (x%d slices)" % args.factor, plane(nearest), None),
           ("cubic spline", plane(spline), score(spline)),
           (f"upscale.py self ({report.steps} steps)", plane(ours), score(ours)),
           ("truth, 1 mm", plane(truth), None)]

    # in-plane: an axial slice of the truth (the plane across the thick axis), area-averaged 2x2
    axial = np.take(scorer.scaled(truth), truth.shape[args.axis] // 2, axis=args.axis).T[::-1]
    small, target = area_average(axial, 2)
    results = {}
    for name in ("bicubic", "mri-x2"):
        upscaler = load_upscaler(name, scale=2)
        results[name] = np.clip(upscale_pixels(upscaler, small[None].astype(np.float32))[0], 0, 1)
    head = target > 0.05

    def in_plane_psnr(picture):
        return 10 * np.log10(1.0 / np.mean((picture[head] - target[head]) ** 2))

    bottom = [("input (2x2 averaged)", np.kron(small, np.ones((2, 2))), None),
              ("bicubic", results["bicubic"], in_plane_psnr(results["bicubic"])),
              ("upscale.py mri-x2", results["mri-x2"], in_plane_psnr(results["mri-x2"])),
              ("truth", target, None)]
    plt = _pyplot()
    figure, axes = plt.subplots(2, 4, figsize=(10, 5.4))
    for row, panels in enumerate((top, bottom)):
        for column, (title, picture, psnr) in enumerate(panels):
            axes[row, column].imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[row, column].set_title(title + (f"\n{psnr:.2f} dB" if psnr is not None else "\n"), fontsize=9)
            axes[row, column].axis("off")
    figure.suptitle(f"{path.name}: across thick slices (top), within a slice (bottom)", fontsize=10)
    figure.tight_layout()
    out = save_figure(figure, args.out, dpi=72)
    print(f"across slices: spline {score(spline):.2f} dB, self {score(ours):.2f} dB ({report.steps} steps, "
          f"{report.precision}); in-plane: bicubic {in_plane_psnr(results['bicubic']):.2f} dB, mri-x2 "
          f"{in_plane_psnr(results['mri-x2']):.2f} dB")
    print(f"Wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
