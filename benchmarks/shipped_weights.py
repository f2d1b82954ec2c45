"""The shipped weights against bicubic, three ways (and, with --ship, choose and ship new weights first).

(a) the paper's CNN test split of the real crops as consistent pairs (needs --crops);
(b) the demo source's crops (MNI152 template) as consistent pairs: the test part of their paper split;
(c) whole axial slices of the MNI152 template, area-averaged by the scale and upscaled through
    `upscale.py` as a user would (a float32 NIfTI in, the same out), against `upscale.py bicubic`;
(d) with --volume, the same on a real head scan of a subject outside the data set (e.g. the 1 mm T1 of
    shared/data/volumes): whole slices of someone the networks never saw any slice of.
Grey or RGB in [0, 1], PSNR with data range 1, scikit-image SSIM, per image, then the mean.

    python3 -m benchmarks.shipped_weights --crops brain-tumor-crops [--volume T1.nii.gz]
    python3 -m benchmarks.shipped_weights --crops brain-tumor-crops \\
        --ship 2=models/x2/CNN_edsr_PSNR_consistent_x2_model.keras --ship 4=...   # make pretrained-mri
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mrisr.commands.cli import script_main
from mrisr.errors import UserError
from mrisr.paper.shipping import consistent_scores, ship_weights

ROOT = Path(__file__).resolve().parents[1]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", default=None,
                        help="the real crop folder (extract_crops.py on the figshare or Kaggle data) for (a) and "
                        "--ship; without it (a) is left out")
    parser.add_argument("--test-split", default=None, metavar="FILE",
                        help="the paper's test split (default: CROPS/paper_test_split.csv)")
    parser.add_argument("--ship", action="append", default=[], metavar="SCALE=MODEL[,MODEL...]",
                        help="choose among these models (trained on CROPS with the test split held out) on "
                        "validation and ship the best as pretrained/mri_xSCALE.keras with its provenance")
    parser.add_argument("--models", default="mri-x2,mri-x4,demo-x2",
                        help="comma-separated weights to measure (short names or .keras files)")
    parser.add_argument("--volume", default=None, metavar="NIFTI",
                        help="a real head scan of a subject outside the data set, for (d); without it (d) is "
                        "left out")
    parser.add_argument("--out", default=str(ROOT / "results" / "shipped_weights"),
                        help="folder for shipped_weights.md and .json (default results/shipped_weights)")
    return parser


def axial_slices(image, scale, minimum_head=0.10):
    """The axial slices (along the third axis) of a NIfTI image with at least `minimum_head` of their pixels
    in the head, cut to a multiple of `scale`, in [0, 1] by the volume's range; and the affine."""
    volume = np.asarray(image.dataobj, dtype=np.float64)
    volume = (volume - volume.min()) / (volume.max() - volume.min())
    rows, columns = (volume.shape[0] // scale) * scale, (volume.shape[1] // scale) * scale
    volume = volume[:rows, :columns]
    head = (volume > 0.05).mean(axis=(0, 1))
    return volume[:, :, head >= minimum_head], image.affine


def head_image(path=None):
    """The NIfTI image of (c), the MNI152 template, or of (d), `path` turned so that its third axis runs
    inferior to superior (nibabel's closest canonical orientation)."""
    import nibabel

    from mrisr.paper.sources import demo_data_path

    if path is None:
        return nibabel.load(str(demo_data_path()))
    return nibabel.as_closest_canonical(nibabel.load(str(path)))


def whole_slice_scores(models, scale, work, path=None):
    """(c), or (d) with `path`: every model in `models` and bicubic through upscale.py on the area-averaged
    axial slices."""
    import nibabel
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    volume, affine = axial_slices(head_image(path), scale)
    low = volume.reshape(volume.shape[0] // scale, scale, volume.shape[1] // scale, scale, -1).mean(axis=(1, 3))
    low_path = work / f"{'mni152' if path is None else 'volume'}_area_x{scale}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(low.astype(np.float32), affine), str(low_path))
    results = {}
    for model in ["bicubic", *models]:
        out = work / f"up_{model.replace('/', '_')}_x{scale}_{low_path.name}"
        command = [sys.executable, str(ROOT / "upscale.py"), model, str(low_path), str(out), "--axis", "2",
                   "--quiet"] + (["--scale", str(scale)] if model == "bicubic" else [])
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            raise UserError(f"upscale.py {model} failed: {finished.stderr.strip().splitlines()[-1]}")
        upscaled = np.clip(np.asarray(nibabel.load(str(out)).dataobj, dtype=np.float64), 0, 1)
        psnr = [peak_signal_noise_ratio(volume[..., k], upscaled[..., k], data_range=1.0)
                for k in range(volume.shape[2])]
        ssim = [structural_similarity(volume[..., k], upscaled[..., k], data_range=1.0)
                for k in range(volume.shape[2])]
        results[model] = {"psnr": round(float(np.mean(psnr)), 3), "ssim": round(float(np.mean(ssim)), 4),
                          "images": volume.shape[2]}
    return results


def crop_scores(models, crop_set, test_indices, scale):
    from mrisr.nets.loading import load_model

    results = {}
    for model in models:
        results[model], results["bicubic"] = consistent_scores(load_model(resolve(model)), crop_set, test_indices,
                                                               scale)
    return results


def resolve(model):
    from mrisr.nets.shipped import resolve_model

    return resolve_model(model)


def model_scale(model):
    from mrisr.scans.upscaling import load_upscaler

    return load_upscaler(model).scale


def demo_test_set(work):
    from mrisr.paper.crops import read_crops
    from mrisr.paper.extraction import extract_crops
    from mrisr.paper.sources import read_demo
    from mrisr.paper.splits import make_split

    folder = work / "demo_crops"
    extract_crops(read_demo(), folder, progress=False)
    crop_set = read_crops(folder)
    return crop_set, make_split(crop_set.indices, crop_set.labels).test


def ship(specs, crops, test_split):
    from mrisr.nets.shipped import pretrained_folder

    for spec in specs:
        scale, _, paths = spec.partition("=")
        if not scale.isdigit() or not paths:
            raise UserError(f"--ship {spec}: give SCALE=MODEL[,MODEL...]")
        destination = pretrained_folder() / f"mri_x{scale}.keras"
        ship_weights(paths.split(","), crops, int(scale), test_split, destination)
        print(f"Shipped {destination} and its history with the provenance")


def table(results, models):
    lines = ["| weights | scale | (a) paper test split, consistent pairs | (b) demo crops, consistent pairs | "
             "(c) MNI152 whole slices via upscale.py | (d) a real head outside the data set, whole slices |",
             "|---|---|---|---|---|---|"]
    for model in models:
        cells = []
        for part in ("a", "b", "c", "d"):
            found = results.get(part, {}).get(model)
            if found is None:
                cells.append("not measured")
                continue
            bicubic = results[part]["bicubic_x" + str(found["scale"])]
            cells.append(f"{found['psnr']:.2f} / {found['ssim']:.3f} (bicubic {bicubic['psnr']:.2f} / "
                         f"{bicubic['ssim']:.3f}; **{found['psnr'] - bicubic['psnr']:+.2f} dB**)")
        scale = next((results[p][model]["scale"] for p in "abcd" if model in results.get(p, {})), "?")
        lines.append(f"| {model} | x{scale} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    test_split = args.test_split or (str(Path(args.crops) / "paper_test_split.csv") if args.crops else None)
    if args.ship:
        if not args.crops:
            raise UserError("--ship needs --crops")
        ship(args.ship, args.crops, test_split)
    models = [m for m in args.models.split(",") if m]
    scales = {model: model_scale(model) for model in models}
    started = time.perf_counter()
    results = {"a": {}, "b": {}, "c": {}, "d": {}}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        parts = {}
        if args.crops:
            from mrisr.paper.crops import read_crops
            from mrisr.paper.splits import read_test_split_file

            parts["a"] = (read_crops(args.crops), read_test_split_file(test_split, "CNN"))
        parts["b"] = demo_test_set(work)
        for scale in sorted(set(scales.values())):
            chosen = [m for m in models if scales[m] == scale]
            for part, (crop_set, test) in parts.items():
                found = crop_scores(chosen, crop_set, test, scale)
                results[part].update({("bicubic_x" + str(scale) if k == "bicubic" else k): {**v, "scale": scale}
                                      for k, v in found.items()})
            for part, path in [("c", None)] + ([("d", args.volume)] if args.volume else []):
                found = whole_slice_scores(chosen, scale, work, path)
                results[part].update({("bicubic_x" + str(scale) if k == "bicubic" else k): {**v, "scale": scale}
                                      for k, v in found.items()})
            print(f"x{scale} measured ({time.perf_counter() - started:.0f} s)", flush=True)
    report = table(results, models)
    print(report)
    from mrisr.core.files import atomic_write, save_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "shipped_weights.json", results)
    atomic_write(out / "shipped_weights.md", lambda temporary: Path(temporary).write_text(
        "Mean PSNR (dB) / SSIM against bicubic on the same inputs (`benchmarks/shipped_weights.py`).\n\n"
        + report + "\n"))
    print(f"Wrote {out}/shipped_weights.md and shipped_weights.json")


if __name__ == "__main__":
    sys.exit(main())
