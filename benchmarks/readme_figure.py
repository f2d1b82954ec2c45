"""The figure at the top of README.md: a real T1 made thick and restored across its slices by `upscale.py
self` at its defaults, and an in-plane x2 example with the shipped `mri-x2` weights, each beside
interpolation, the truth and the error maps.

    python3 -m benchmarks.readme_figure T1.nii.gz [--axis 2] [--factor 4] [--out docs/figure.png]

T1.nii.gz: an isotropic 1 mm scan (default: the MNI152 T1 of the demo source). Top row: the scan made F
times thick along --axis of its RAS+ orientation (each thick slice the average of F slices), written as a
NIfTI and restored by `upscale.py self` as a user runs it (its defaults: the pretrained start, 20000 steps
or 10 minutes, the held-out check, the self-ensemble); a plane that contains that axis, as the thick
input, the cubic spline along the slices, `self`, the 1 mm truth, and the two errors. Bottom row: an
axial slice area-averaged 2x2, bicubic, `mri-x2`, the truth and the two errors. PSNR (data range 1,
inside the head, intensities scaled by the truth's 0.1 and 99.9 percentiles) under each picture.
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
    parser.add_argument("--out", default="docs/figure.png", help="the figure (default docs/figure.png)")
    return parser


def area_average(image, factor):
    height, width = (s // factor * factor for s in image.shape)
    image = image[:height, :width]
    return image.reshape(height // factor, factor, width // factor, factor).mean(axis=(1, 3)), image


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import tempfile

    import nibabel

    from benchmarks.through_plane import Scorer, thick_volume
    from mrisr.paper.plots import _pyplot, save_figure
    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import SliceProfile, spline_upsample
    from mrisr.scans.upscale_file import upscale_file
    from mrisr.scans.upscaling import load_upscaler, upscale_pixels

    path = Path(args.volume) if args.volume else Path(demo_data_path())
    image = nibabel.as_closest_canonical(nibabel.load(path))  # RAS+: the pictures the right way up
    data = np.asarray(image.dataobj, np.float32)
    truth, thick, thick_affine = thick_volume(image, data, args.axis, SliceProfile(args.factor))
    scorer = Scorer(truth)
    with tempfile.TemporaryDirectory() as folder:  # upscale.py self on the thick file, as a user runs it
        thick_path, thin_path = Path(folder) / "thick.nii.gz", Path(folder) / "thin.nii.gz"
        nibabel.save(nibabel.Nifti1Image(thick.astype(np.float32), thick_affine), thick_path)
        upscale_file("self", thick_path, thin_path, axis=args.axis, record=False, say=print)
        ours = np.asarray(nibabel.load(thin_path).dataobj, np.float32)
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
           ("upscale.py self", plane(ours), score(ours)),
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
    rows = []
    for panels, (low, high) in ((top, (1, 2)), (bottom, (1, 2))):
        truth_picture = panels[3][1]
        errors = [(f"|{panels[k][0].replace('upscale.py ', '')} - truth|",
                   np.abs(np.clip(panels[k][1], 0, 1) - truth_picture), None) for k in (low, high)]
        rows.append(panels + errors)
    plt = _pyplot()
    figure, axes = plt.subplots(2, 6, figsize=(16, 6.4), layout="constrained")
    for row, panels in enumerate(rows):
        box = bounding_box(panels[3][1] > 0.05)
        for column, (title, picture, psnr) in enumerate(panels):
            error = column >= 4
            shown = picture[box]
            axes[row, column].imshow(shown, cmap="magma" if error else "gray", vmin=0, vmax=0.25 if error else 1,
                                     interpolation="nearest")
            axes[row, column].set_title(title, fontsize=11)
            axes[row, column].set_xlabel(f"{psnr:.2f} dB" if psnr is not None else "", fontsize=11)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    axis_name = ("left-right", "posterior-anterior", "inferior-superior")[args.axis]
    figure.suptitle(f"{path.name}: across thick slices (top: x{args.factor} along the {axis_name} axis), "
                    "within a slice (bottom: x2); PSNR inside the head; errors on a scale of 0 to 0.25", fontsize=12)
    out = save_figure(figure, args.out, dpi=80)
    print(f"across slices: spline {score(spline):.2f} dB, self {score(ours):.2f} dB; in-plane: bicubic "
          f"{in_plane_psnr(results['bicubic']):.2f} dB, mri-x2 {in_plane_psnr(results['mri-x2']):.2f} dB")
    print(f"Wrote {out}")


def bounding_box(mask, margin=4):
    """The slices of the rows and columns around a picture's True pixels, with a margin."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(columns[0] - margin, 0), columns[-1] + margin + 1))


if __name__ == "__main__":
    sys.exit(main())
