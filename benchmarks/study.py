"""Benchmark of `upscale.py study`: a study of simulated thick scans whose truth is known, run as a user
runs it (the command, in its own process), per scan and per protocol, on 1 and 2 local workers and on a
Dask cluster of 2 workers started on this machine; wall time, and the gain over the cubic spline along the
slices against the truth, scan by scan.

    python3 -m benchmarks.study T1.nii.gz EPI.nii.gz [--runs protocol:1,scan:1,reuse:0,protocol:dask,reuse:2000]
        [--fine-tune 1000] [--minutes 10] [--out results/study]

Runs, in the order given: LEARN:WORKERS (LEARN scan or protocol; WORKERS a count of local workers, or dask
for 2 workers of a local Dask cluster), or reuse:N (the first protocol run's networks reused, each scan of
the two protocols fine-tuned for N steps on 1 worker: the fine-tuning budget alone).

The scans (int16 NIfTI, each with its true geometry): 5 from the 1 mm T1 made 4x thick along axis 1, one
protocol (the same matrix) that differs as real scans of one protocol do (the slab grid offset by 0 to 3
mm, noise of 0 to 2% of the range, the intensities scaled by 0.8 to 1.25 and shifted); 3 from the MNI152
template made 4x thick along axis 2, another protocol, varied alike; and the EPI volume made 2x thick
(8.26 mm), a protocol of its own (which the study, choosing each scan's factor from its voxel sizes, makes 4x finer: its output
is scored at the truth's 4.13 mm, each pair of thin slices averaged). They are all of one subject or one
template: a network learned on some of them has seen the same anatomy as the others, which real studies of
many subjects do not give (see docs/measurements.md).
Scores as benchmarks/through_plane.py: PSNR inside the head, intensities scaled by the truth's 0.1 and 99.9
percentiles, the gain over the cubic spline along the slices of the same thick scan.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.through_plane import Scorer
from mrisr.commands.cli import script_main

ROOT = Path(__file__).resolve().parents[1]


def make_scans(t1_path, epi_path, folder):
    """Write the study's thick scans into `folder`; returns {file name: (truth, axis, factor)}."""
    import nibabel

    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import SliceProfile, degrade

    rng = np.random.default_rng(0)
    truths = {}

    def write(name, fine, zooms, axis, factor, offset, noise, scale, shift, largest_offset=0):
        count = (fine.shape[axis] - largest_offset) // factor * factor  # one matrix for a protocol's scans
        truth = np.take(fine, np.arange(offset, offset + count), axis=axis).astype(np.float32)
        truth = truth * scale + shift
        thick = degrade(truth, axis, SliceProfile(factor))
        thick = thick + rng.normal(0, noise * float(np.percentile(truth, 99.9)), thick.shape)
        thick_zooms = list(zooms)
        thick_zooms[axis] *= factor
        affine = np.diag(thick_zooms + [1.0])
        affine[axis, 3] = zooms[axis] * (offset + (factor - 1) / 2)  # each thick slice at its thin slices' centre
        image = nibabel.Nifti1Image(np.clip(np.rint(thick), -32768, 32767).astype(np.int16), affine)
        image.header.set_zooms(thick_zooms)
        nibabel.save(image, folder / name)
        truths[name] = (truth, axis, factor)

    t1 = np.asarray(nibabel.load(t1_path).dataobj, np.float32)[32:224, :, 32:224]  # the head, 192 x 256 x 192
    for k, (offset, noise, scale, shift) in enumerate([(0, 0.0, 1.0, 0), (1, 0.01, 0.8, 20), (2, 0.02, 1.25, 0),
                                                       (3, 0.01, 1.1, -10), (0, 0.02, 0.9, 30)]):
        write(f"t1_{k}.nii.gz", t1, [1.0, 1.0, 1.0], 1, 4, offset, noise, scale, shift, largest_offset=3)
    mni = np.asarray(nibabel.load(demo_data_path()).dataobj, np.float32)
    for k, (offset, noise, scale, shift) in enumerate([(0, 0.0, 1.0, 0), (2, 0.01, 1.2, 0), (1, 0.02, 0.85, 15)]):
        write(f"mni_{k}.nii.gz", mni, [1.0, 1.0, 1.0], 2, 4, offset, noise, scale, shift, largest_offset=2)
    epi = nibabel.load(epi_path)
    write("epi.nii.gz", np.asarray(epi.dataobj, np.float32), [float(z) for z in epi.header.get_zooms()[:3]], 2, 2,
          0, 0.0, 1.0, 0)
    return truths


def score(truths, scans, out):
    """Each scan's PSNR gain over the cubic spline against its truth; None where it has no output."""
    import nibabel

    from mrisr.scans.through_plane import spline_upsample

    gains = {}
    for name, (truth, axis, factor) in truths.items():
        path = out / name
        if not path.exists():
            gains[name] = None
            continue
        scorer = Scorer(truth)
        thick = np.asarray(nibabel.load(scans / name).dataobj, np.float32)
        spline = scorer(spline_upsample(thick, axis, factor))[0]
        output = np.asarray(nibabel.load(path).dataobj, np.float32)
        finer = output.shape[axis] // truth.shape[axis]  # the study chose a finer grid than the truth's (EPI)
        if finer > 1:
            output = np.moveaxis(output, axis, 0)
            output = np.moveaxis(output.reshape((-1, finer) + output.shape[1:]).mean(axis=1), 0, axis)
        gains[name] = round(scorer(output)[0] - spline, 3)
    return gains


def dask_cluster(workers=2):
    """A Dask scheduler and `workers` workers of this machine's cores shared (MRISR_THREADS), no nanny."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dask = str(Path(sys.executable).parent / "dask")
    threads = max(1, (os.cpu_count() or 1) // workers)
    environment = {**os.environ, "MRISR_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "3"}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                  **quiet)]
    processes += [subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-nanny",
                                    "--no-dashboard"], **quiet) for _ in range(workers)]
    from distributed import Client

    with Client(f"tcp://127.0.0.1:{port}", timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return f"tcp://127.0.0.1:{port}", processes


def run_study(scans, out, learn, where, fine_tune, minutes):
    command = [sys.executable, str(ROOT / "upscale.py"), "study", str(scans), str(out), "--learn", learn, "--quiet"]
    command += ["--fine-tune-steps", str(fine_tune)] if learn == "protocol" else []
    command += ["--minutes", f"{minutes:g}"] if minutes else []
    cluster = None
    if where == "dask":
        address, cluster = dask_cluster()
        command += ["--scheduler", address]
    else:
        command += ["--workers", where]
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    finally:
        for process in cluster or []:
            process.send_signal(signal.SIGTERM)
            process.wait()
    return time.perf_counter() - started, result


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("t1", help="the 1 mm T1 volume (NIfTI)")
    parser.add_argument("epi", help="the real thick-slice EPI volume (NIfTI)")
    parser.add_argument("--runs", default="protocol:1,scan:1,reuse:0,protocol:dask,reuse:2000",
                        help="the runs in order: LEARN:WORKERS (scan or protocol; a count, or dask for 2 workers of "
                        "a local Dask cluster) or reuse:N (the first protocol run's networks, N fine-tuning steps)")
    parser.add_argument("--fine-tune", type=int, default=1000, help="--fine-tune-steps of the protocol runs")
    parser.add_argument("--minutes", type=float, default=None, help="--minutes of each learning (default: 10)")
    parser.add_argument("--out", default="results/study", help="folder of the report (default results/study)")
    return parser


def geometry(outputs, names):
    """{name: the output's affine as a list} of the scans a run wrote."""
    import nibabel

    return {name: np.round(nibabel.load(outputs / name).affine, 6).tolist() for name in names
            if (outputs / name).exists()}


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from mrisr.core.files import save_json

    out_dir = Path(args.out)
    print(f"machine: {describe_machine()}")
    records, first_geometry = [], None
    with tempfile.TemporaryDirectory() as folder:
        scans = Path(folder) / "scans"
        scans.mkdir()
        truths = make_scans(args.t1, args.epi, scans)
        protocol_scans = [name for name in truths if not name.startswith("epi")]
        listed = Path(folder) / "protocol_scans.txt"  # the input of the reuse runs: the two protocols' scans
        listed.write_text("".join(f"{scans / name}\n" for name in protocol_scans))
        print(f"{len(truths)} scans: {', '.join(truths)}")
        print(f"{'run':<34} {'minutes':>8} {'mean gain':>10} {'protocol scans':>15}  gains")
        first_protocol = None
        for run in args.runs.split(","):
            learn, where = run.split(":")
            outputs = Path(folder) / f"out_{learn}_{where}"
            if learn == "reuse":
                if first_protocol is None:
                    raise SystemExit("reuse:N needs a protocol run before it")
                shutil.copytree(first_protocol / ".mrisr" / "protocols", outputs / ".mrisr" / "protocols")
                seconds, result = run_study(listed, outputs, "protocol", "1", int(where), args.minutes)
                name, steps = f"protocol, networks reused, fine-tune {where}", int(where)
            else:
                seconds, result = run_study(scans, outputs, learn, where, args.fine_tune, args.minutes)
                name = f"{learn}, " + ("Dask, 2 workers" if where == "dask" else f"{where} local worker(s)")
                steps = args.fine_tune if learn == "protocol" else None
            if learn == "protocol" and first_protocol is None:
                first_protocol = outputs
            gains = score(truths, scans, outputs)
            done = [g for g in gains.values() if g is not None]
            in_protocols = [gains[n] for n in protocol_scans if gains[n] is not None]
            affines = geometry(outputs, truths)
            first_geometry = first_geometry or affines
            record = {"run": name, "learn": "protocol" if learn == "reuse" else learn,
                      "workers": "1" if learn == "reuse" else where, "fine_tune_steps": steps,
                      "protocol_networks_reused": learn == "reuse", "minutes": round(seconds / 60, 2),
                      "exit_status": result.returncode, "gains": gains,
                      "mean_gain": round(float(np.mean(done)), 3) if len(done) == len(truths) else None,
                      "mean_gain_protocol_scans": round(float(np.mean(in_protocols)), 3) if in_protocols else None,
                      "geometry_as_first_run": all(first_geometry.get(k) == v for k, v in affines.items())}
            records.append(record)
            mean = record["mean_gain"]
            print(f"{name:<34} {seconds / 60:8.1f} {'-' if mean is None else f'{mean:+.2f}':>10} "
                  f"{record['mean_gain_protocol_scans'] or float('nan'):+15.2f}  "
                  + " ".join(f"{g:+.2f}" if g is not None else "-" for g in gains.values()), flush=True)
            if result.returncode:
                print(result.stdout[-2000:] + result.stderr[-2000:])
            notes = [json.loads(path.read_text())["result"]
                     for path in sorted((first_protocol or outputs).glob(".mrisr/protocols/*.json"))]
            save_json(out_dir / "study.json", {
                "machine": describe_machine(), "scans": list(truths), "protocol_scans": protocol_scans,
                "command": "python3 -m benchmarks.study " + " ".join(argv or sys.argv[1:]), "records": records,
                "protocol_networks": notes})
    print(f"Wrote {out_dir / 'study.json'}")


if __name__ == "__main__":
    sys.exit(main())
