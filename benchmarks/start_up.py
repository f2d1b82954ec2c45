"""A newcomer's first command: `upscale.py mri-x2 small.nii.gz out.nii.gz` on a 64x64x4 NIfTI, as a user
runs it (a new process each time), its wall time and every line it prints; and `--version`.

    python3 -m benchmarks.start_up [--repeats 5] [--out results/start_up]

Prints the median and range of the wall times and the lines of the last run, and writes start_up.json.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import describe_machine
from mrisr.commands.cli import script_main
from mrisr.core.files import save_json

ROOT = Path(__file__).resolve().parents[1]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--out", default="results/start_up", help="folder of start_up.json")
    return parser


def timed(command):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, result


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    print(f"machine: {describe_machine()}")
    report = {"machine": describe_machine(), "commands": {}}
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder) / "small.nii.gz"
        values = np.random.default_rng(0).integers(0, 1000, (64, 64, 4)).astype(np.int16)
        nibabel.save(nibabel.Nifti1Image(values, np.diag([2.0, 2.0, 4.0, 1.0])), small)
        commands = {"upscale.py mri-x2 small.nii.gz out.nii.gz":
                    [sys.executable, str(ROOT / "upscale.py"), "mri-x2", str(small), str(Path(folder) / "out.nii.gz")],
                    "upscale.py --version": [sys.executable, str(ROOT / "upscale.py"), "--version"]}
        for name, command in commands.items():
            seconds, lines = [], []
            for _ in range(args.repeats):
                (Path(folder) / "out.nii.gz").unlink(missing_ok=True)
                elapsed, result = timed(command)
                if result.returncode:
                    raise SystemExit(f"{name} failed ({result.returncode}): {result.stderr[-500:]}")
                seconds.append(elapsed)
                lines = (result.stdout + result.stderr).splitlines()
            report["commands"][name] = {"seconds": [round(s, 2) for s in seconds],
                                        "median_seconds": round(statistics.median(seconds), 2), "lines": lines}
            print(f"{name}: median {statistics.median(seconds):.2f} s ({min(seconds):.2f} to {max(seconds):.2f}, "
                  f"{args.repeats} runs); {len(lines)} line(s):")
            for line in lines:
                print(f"    {line}")
    path = Path(args.out) / "start_up.json"
    save_json(path, report)
    print(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
