"""`upscale.py self` beside ECLARE (Remedios et al.: a PyTorch peer that also learns from the thick volume
alone), on the same thick volume, with the same budget of learning on this machine.

    python3 -m benchmarks.peers T1.nii.gz --eclare-venv /tmp/eclare [--install] [--axis 1] [--factor 4]
        [--minutes 5 | --eclare-defaults] [--eclare-gpu 0] [--no-self] [--probe-only] [--out results/peers]

ECLARE is GPL-3.0 and needs PyTorch: it lives in its own virtual environment (`--install` makes it there:
`pip install torch==2.13.0 eclare`), is run as a program, and none of its code is in this project. The
isotropic volume is made F times thick along --axis (box profile, as benchmarks/through_plane.py does) and
written as NIfTI with its true geometry; `upscale.py self` runs with its defaults; ECLARE runs with the
known box profile (so its slice-profile estimator, ESPRESO, is skipped) and `--n-patches` set to fit the
same budget of learning: the probe below times one of its training steps here, and the budget (by default
the whole time `self` took, start-up and application included) buys that many steps of its default batch
(its default is 1,000,000 patches, hours on a CPU). Its application (every plane at two angles, about half
an hour on a 2-core CPU for a 256^3 volume) comes on top and is reported in its time. Both outputs are
scored against the original inside the head, in world coordinates (ECLARE's output is sampled at the
original's voxel centres through its own affine, linearly, where its grid differs), beside the cubic spline.

--eclare-defaults: ECLARE at its own default budget (1,000,000 patches) instead of the equal one; where a
GPU is lent, with --eclare-gpu 0 (ECLARE then trains in its mixed float16; `upscale.py self` takes the GPU
its Keras backend sees). --no-self: ECLARE alone (its budget from --minutes or --eclare-defaults), for a
machine where `upscale.py self` is measured apart (benchmarks/through_plane.py scores it the same way).

--probe-only: time ECLARE's network alone on this machine (one training step at its default batch of 128
patches, one plane through the trained-size network) and say what its defaults would cost here, without
running either method on the volume.
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

ECLARE_BATCH = 128  # ECLARE's default batch
ECLARE_DEFAULT_PATCHES = 1_000_000

# Run in ECLARE's environment: its network (WDSR, 16 blocks of 256 channels, as eclare.run_eclare builds it),
# one Adam step on a batch of patches of the size its data set makes, one thick plane of the volume.
PROBE = """
import json, sys, time, torch
from eclare.models.wdsr import WDSR
factor, thick, width, device = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), torch.device(sys.argv[4])
torch.manual_seed(0)
model = WDSR(n_resblocks=16, num_channels=256, scale=factor).to(device)
size = round(factor * max(model.calc_out_patch_size([8, 8])))
patches = torch.rand(128, 1, size // factor, 8, device=device)
target = torch.rand_like(model(patches)).detach()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
seconds = []
for _ in range(3):  # on a GPU in the mixed float16 ECLARE trains in
    started = time.perf_counter()
    optimizer.zero_grad()
    with torch.autocast(device.type, enabled=device.type == "cuda"):
        loss = torch.nn.functional.mse_loss(model(patches), target)
    loss.backward()
    optimizer.step()
    synchronize()
    seconds.append(time.perf_counter() - started)
with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
    plane = torch.rand(1, 1, thick, width, device=device)
    model(plane)
    synchronize()
    started = time.perf_counter()
    model(plane)
    synchronize()
    inference = time.perf_counter() - started
print(json.dumps({"step_seconds": min(seconds[1:]), "plane_seconds": inference,
                  "parameters": sum(p.numel() for p in model.parameters())}))
"""


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", help="an isotropic NIfTI with a truth to score against")
    parser.add_argument("--eclare-venv", required=True, help="the virtual environment that holds ECLARE")
    parser.add_argument("--install", action="store_true", help="create that environment and install ECLARE there")
    parser.add_argument("--axis", type=int, default=1, choices=(0, 1, 2), help="the axis made thick (default 1)")
    parser.add_argument("--factor", type=int, default=4, help="thin slices per thick slice (default 4)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="ECLARE's budget (default: the time upscale.py self took, start-up included)")
    parser.add_argument("--eclare-defaults", action="store_true",
                        help="ECLARE at its own defaults (1,000,000 patches) rather than the same budget")
    parser.add_argument("--eclare-gpu", type=int, default=None,
                        help="the GPU ECLARE runs on (its --gpu-id; default: the CPU)")
    parser.add_argument("--no-self", action="store_true",
                        help="run ECLARE alone (with --minutes or --eclare-defaults)")
    parser.add_argument("--probe-only", action="store_true",
                        help="only time ECLARE's network here and say what its defaults would cost")
    parser.add_argument("--out", default="results/peers", help="folder of the report (default results/peers)")
    return parser


def install(venv):
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + ["eclare"], check=True)


def run_eclare(venv, thick_path, out_dir, factor, patches, gpu=None):
    """(seconds, output path): run-eclare with a box profile of F thin slices and `patches` patches, on
    GPU `gpu` (None: the CPU)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = out_dir / "box.npy"
    # A box F thin slices wide centred on a sample: F - 1 full taps and two half taps.
    np.save(kernel, np.r_[0.5, np.ones(factor - 1), 0.5] / factor)
    command = [str(venv / "bin" / "run-eclare"), "--in-fpath", str(thick_path), "--out-dir", str(out_dir),
               "--n-patches", str(patches), "--relative-slice-thickness", str(float(factor)),
               "--relative-slice-profile-fpath", str(kernel)] + ([] if gpu is None else ["--gpu-id", str(gpu)])
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ECLARE failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - started, out_dir / thick_path.name.replace(".nii", "_eclare.nii")


def on_grid(image, reference):
    """`image`'s values at the voxel centres of `reference` (same shape and affine: as they are)."""
    from scipy.ndimage import map_coordinates

    data = np.asarray(image.dataobj, np.float32)
    if data.shape == reference.shape and np.allclose(image.affine, reference.affine, atol=1e-4):
        return data
    grid = np.indices(reference.shape, dtype=np.float64).reshape(3, -1)
    world = reference.affine[:3, :3] @ grid + reference.affine[:3, 3:]
    voxels = np.linalg.solve(image.affine[:3, :3], world - image.affine[:3, 3:])
    return map_coordinates(data, voxels, order=1, mode="nearest").reshape(reference.shape).astype(np.float32)


def time_eclare(venv, shape, axis, factor, gpu=None):
    """ECLARE's network timed in its environment: a training step, one thick plane, what its defaults cost."""
    import json

    planes = [size for position, size in enumerate(shape) if position != axis]
    thick = shape[axis] // factor
    device = "cpu" if gpu is None else f"cuda:{gpu}"
    result = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE, str(factor), str(thick), str(planes[0]),
                             device], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the ECLARE probe failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    steps = ECLARE_DEFAULT_PATCHES // ECLARE_BATCH
    # inference: every plane that contains the slice axis, at 0 and 90 degrees (eclare.run_eclare)
    inference = 2 * planes[1] * timing["plane_seconds"]
    return {**timing, "device": device, "default_steps": steps,
            "default_training_minutes": round(steps * timing["step_seconds"] / 60, 1),
            "inference_minutes": round(inference / 60, 1)}


def say_timing(timing):
    print(f"ECLARE's network ({timing['parameters']:,} parameters): a training step of {ECLARE_BATCH} patches "
          f"{timing['step_seconds']:.3f} s, one thick plane {timing['plane_seconds']:.3f} s ({timing['device']})")
    print(f"at its defaults ({ECLARE_DEFAULT_PATCHES:,} patches = {timing['default_steps']} steps) training would "
          f"take {timing['default_training_minutes']} min here, and "
          f"applying it to this volume {timing['inference_minutes']} min", flush=True)


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    from benchmarks.machine import describe_machine
    from benchmarks.through_plane import Scorer, run_self, thick_volume
    from mrisr.core.files import save_json
    from mrisr.scans.through_plane import SliceProfile, spline_upsample

    venv = Path(args.eclare_venv)
    if args.no_self and not (args.minutes or args.eclare_defaults):
        raise UserError("--no-self needs ECLARE's budget: --minutes or --eclare-defaults")
    if args.install and not (venv / "bin" / "run-eclare").exists():
        install(venv)
    if not (venv / "bin" / "run-eclare").exists():
        raise UserError(f"no ECLARE in {venv}: give --install to install it there")
    image = nibabel.load(args.volume)
    data = np.asarray(image.dataobj, np.float32)
    machine = describe_machine()
    print(machine)
    timing = time_eclare(venv, data.shape, args.axis, args.factor, args.eclare_gpu)
    say_timing(timing)
    out = Path(args.out)
    if args.probe_only:
        save_json(out / "peers_probe.json", {"machine": machine, "shape": list(data.shape),
                                             "axis": args.axis, "factor": args.factor, **timing})
        print(f"Wrote {out / 'peers_probe.json'}")
        return
    profile = SliceProfile(args.factor)
    truth, thick, affine = thick_volume(image, data, args.axis, profile)
    truth_image = nibabel.Nifti1Image(truth, image.affine)
    scorer = Scorer(truth)
    rows = {"cubic spline": (*scorer(spline_upsample(thick, args.axis, args.factor)), 0.0, "")}

    def save_report():  # after each method, so that a run cut short keeps what it measured
        save_json(out / "peers.json", {"machine": machine, "volume": Path(args.volume).name,
                                       "axis": args.axis, "factor": args.factor, "eclare_probe": timing,
                                       "rows": {name: {"psnr": round(p, 3), "ssim": round(s, 4),
                                                       "seconds": round(t, 1), "note": note}
                                                for name, (p, s, t, note) in rows.items()}})

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        zooms = list(image.header.get_zooms()[:3])
        zooms[args.axis] *= args.factor
        thick_image = nibabel.Nifti1Image(thick, affine)
        thick_image.header.set_zooms(zooms)
        thick_path = work / "thick.nii.gz"
        nibabel.save(thick_image, thick_path)
        if not args.no_self:
            seconds, output = run_self(thick_path, work / "self.nii.gz", 10.0, args.axis, args.factor)
            ours = on_grid(nibabel.load(work / "self.nii.gz"), truth_image)
            rows["upscale.py self (defaults)"] = (*scorer(ours), seconds, output.strip().splitlines()[-1][:160])
            print(f"upscale.py self: {rows['upscale.py self (defaults)'][0]:.2f} dB in {seconds:.0f} s "
                  f"(cubic spline {rows['cubic spline'][0]:.2f} dB)", flush=True)
            save_report()
        if args.eclare_defaults:
            steps, patches = timing["default_steps"], ECLARE_DEFAULT_PATCHES
            print(f"ECLARE at its defaults: {patches:,} patches ({steps} steps of {ECLARE_BATCH}), "
                  f"then its application", flush=True)
        else:
            budget = 60 * args.minutes if args.minutes else seconds
            steps = max(1, int(budget / timing["step_seconds"]))
            patches = steps * ECLARE_BATCH
            print(f"ECLARE: {steps} steps of {ECLARE_BATCH} patches in a budget of {budget:.0f} s of learning, "
                  f"then its application (about {timing['inference_minutes']} min)", flush=True)
        eclare_seconds, eclare_path = run_eclare(venv, thick_path, work / "eclare", args.factor, patches,
                                                 args.eclare_gpu)
        theirs = on_grid(nibabel.load(eclare_path), truth_image)
        rows[f"ECLARE ({patches} patches)"] = (*scorer(theirs), eclare_seconds, f"{steps} steps")
    spline = rows["cubic spline"][0]
    print(f"{Path(args.volume).name} x{args.factor} thick along axis {args.axis}")
    print(f"{'method':<30} {'PSNR dB':>8} {'SSIM':>7} {'gain dB':>8} {'seconds':>8}")
    for name, (psnr, ssim, seconds, _) in rows.items():
        print(f"{name:<30} {psnr:8.2f} {ssim:7.4f} {psnr - spline:+8.2f} {seconds:8.0f}")
    save_report()
    print(f"Wrote {out / 'peers.json'}")


if __name__ == "__main__":
    sys.exit(main())
