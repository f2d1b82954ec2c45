"""Benchmark: does the training loader (datasets.PairBatches, a keras.utils.PyDataset over NumPy
arrays, the same on every backend) make the training step wait?

For `edsr` on consistent x2 pairs with augmentation (the smallest step the project trains, so the
most exposed to a slow loader) and the paper CNN, at batch 32: the loader alone (ms per batch,
reading every batch of an epoch), and `model.fit`'s step with the loader against the same step fed
batches that cost nothing (made once, then handed out again). Medians of repeats, per backend, one
process each.

    python3 -m benchmarks.loader [--backends tensorflow,jax,torch] [--pairs 1024] [--out results/backends]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def measure(pairs, repeats):
    import keras

    from benchmarks.machine import step_timer
    from mrisr.nets.models import build_cnn
    from mrisr.paper.datasets import PairBatches

    rng = np.random.default_rng(0)
    high = rng.random((pairs, 50, 50, 4), dtype=np.float32)
    low = high.reshape(pairs, 25, 2, 25, 2, 4).mean(axis=(2, 4))

    class Free(PairBatches):
        """The same batches, made once: a loader that costs nothing."""

        def __init__(self, *arguments, **options):
            super().__init__(*arguments, **options)
            self.made = [PairBatches.__getitem__(self, index) for index in range(len(self))]

        def __getitem__(self, index):
            return self.made[index]

    result = {}
    for arch in ("edsr", "paper"):
        model = build_cnn(arch, 25, 50, 4)
        model.compile(optimizer="adam", loss="mse", jit_compile=keras.backend.backend() != "torch")
        real, free = PairBatches(low, high, 32, 0, augment=True), Free(low, high, 32, 0, augment=True)
        start = time.perf_counter()
        for index in range(len(real)):
            real[index]
        loader = (time.perf_counter() - start) / len(real)
        steps = {}
        for name, data in (("free", free), ("loader", real)) * repeats:
            timer = step_timer()
            model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[timer], steps_per_epoch=min(len(real), 12))
            steps.setdefault(name, []).append(float(np.median(timer.times[2:])))
        result[arch] = {"loader_ms": 1000 * loader, "step_free_ms": 1000 * float(np.median(steps["free"])),
                        "step_loader_ms": 1000 * float(np.median(steps["loader"]))}
        keras.backend.clear_session()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch", help="comma-separated backends to measure")
    parser.add_argument("--pairs", type=int, default=1024, help="training pairs (default 1024)")
    parser.add_argument("--repeats", type=int, default=3, help="fits of each kind, alternated (default 3)")
    parser.add_argument("--out", default=None, help="also write the report (Markdown) and the numbers (JSON) here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.pairs, args.repeats)))
        return 0
    rows = []
    for backend in [name for name in args.backends.split(",") if name]:
        if importlib.util.find_spec(MODULES.get(backend, backend)) is None:
            print(f"{backend}: not installed (pip install '.[backends]'), left out")
            continue
        finished = subprocess.run([sys.executable, "-m", "benchmarks.loader", "--child", "--pairs", str(args.pairs),
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, cwd=ROOT,
                                  env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3"))
        if finished.returncode != 0:
            print(f"{backend}: failed: {finished.stderr.strip().splitlines()[-1:]}")
            continue
        rows.append({"backend": backend, **json.loads(finished.stdout.strip().splitlines()[-1])})
    lines = ["| backend | network | loader alone, ms/batch | step with free batches, ms | step with the loader, ms "
             "| difference |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        for arch in ("edsr", "paper"):
            figures = row[arch]
            difference = figures["step_loader_ms"] / figures["step_free_ms"] - 1
            lines.append(f"| {row['backend']} | {arch} | {figures['loader_ms']:.1f} | {figures['step_free_ms']:.0f} | "
                         f"{figures['step_loader_ms']:.0f} | {difference:+.1%} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "loader.md").write_text(text + "\n")
        (out / "loader.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
