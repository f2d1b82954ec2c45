"""Benchmark: the same models on each installed Keras backend (TensorFlow, JAX, PyTorch), one process
per backend and variant, one report.

Measures, with `model.fit` as the project trains: the paper CNN's training step at batch 32 (ms per
sample, and its share of the float32 matmul limit read in the same run), the paper GAN's epoch of
2450 pairs at batch 128 (discriminator strides 1,1,1,1 as the paper's text and 1,2,2,2 as the
authors' code; from the median step), and `edsr` inference on a 512x512 slice. Variants: TensorFlow
with and without XLA, JAX (always compiled), PyTorch eager (and `torch.compile` with
--torch-compile: it did not finish compiling the paper CNN in 15 minutes here). Medians of repeats.

    python3 -m benchmarks.backends [--steps 6] [--backends tensorflow,jax,torch] [--torch-compile]
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

from benchmarks.machine import FlopLimit, layer_flops

PAIRS, CNN_BATCH, GAN_BATCH = 2450, 32, 128
VARIANTS = {
    "tensorflow": [("XLA", True), ("no XLA", False)],
    "jax": [("jit", True)],
    "torch": [("eager", False)],
}
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def fit_step_seconds(model, inputs, targets, batch, steps):
    """Median seconds of a training step of `model.fit` (the first two steps, compilation, left out)."""
    import keras

    class Timer(keras.callbacks.Callback):
        times = []

        def on_train_batch_begin(self, index, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, index, logs=None):
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    timer.times = []
    count = batch * (steps + 2)
    repeat = -(-count // len(inputs))
    x, y = np.concatenate([inputs] * repeat)[:count], np.concatenate([targets] * repeat)[:count]
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    return float(np.median(timer.times[2:]))


def measure(jit, steps):
    """The three figures on the backend this process runs (KERAS_BACKEND)."""
    import keras

    from mrisr.nets.losses import mse_loss
    from mrisr.nets.models import edsr_network, paper_cnn
    from mrisr.paper.gan import GANSettings
    from mrisr.paper.gan_model import build_gan
    from mrisr.paper.training import CNNSettings, make_optimizer
    from mrisr.scans.upscaling import ConvolutionalUpscaler, receptive_margin

    rng = np.random.default_rng(0)
    result = {}
    cnn = paper_cnn()
    cnn.compile(optimizer=make_optimizer(CNNSettings()), loss=mse_loss, jit_compile=jit)
    inputs = rng.random((64, 25, 25, 4), dtype=np.float32)
    targets = rng.random((64, 50, 50, 4), dtype=np.float32)
    result["cnn_ms_per_sample"] = 1000 * fit_step_seconds(cnn, inputs, targets, CNN_BATCH, steps) / CNN_BATCH
    result["cnn_training_flops"] = sum(training for _, _, training in layer_flops(cnn))
    del cnn
    keras.backend.clear_session()
    for strides in ((1, 1, 1, 1), (1, 2, 2, 2)):
        gan = build_gan(GANSettings(disc_strides=strides, xla=jit))
        step = fit_step_seconds(gan, rng.random((GAN_BATCH, 25, 25, 4), dtype=np.float32),
                                rng.random((GAN_BATCH, 50, 50, 4), dtype=np.float32), GAN_BATCH, steps)
        result["gan_epoch_s_strides_" + "".join(map(str, strides))] = step * -(-PAIRS // GAN_BATCH)
        keras.backend.clear_session()
    network = edsr_network(2)
    upscaler = ConvolutionalUpscaler(network, 2, "edsr", tile=512, margin=receptive_margin(network))
    image = rng.random((512, 512))
    upscaler.upscale(image)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        upscaler.upscale(image)
        times.append(time.perf_counter() - start)
    result["edsr_512_s"] = float(np.median(times))
    return result


def run_child(backend, variant, jit, steps):
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    finished = subprocess.run([sys.executable, "-m", "benchmarks.backends", "--child", str(int(jit)), "--steps",
                               str(steps)], env=environment, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    if finished.returncode != 0:
        return {"error": finished.stderr.strip().splitlines()[-1] if finished.stderr.strip() else "failed"}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def report(rows, limit):
    reference = next((r for r in rows if r["backend"] == "tensorflow" and "error" not in r), None)
    lines = [f"Machine limit: {limit.describe()}", "",
             "| backend | variant | paper CNN step, ms/sample | share of matmul limit | GAN epoch s, strides 1,1,1,1 "
             "| GAN epoch s, strides 1,2,2,2 | edsr 512x512 inference s |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['backend']} | {row['variant']} | failed: {row['error']} | | | | |")
            continue
        share = row["cnn_training_flops"] / (row["cnn_ms_per_sample"] / 1000) / 1e9 / limit.best

        def ratio(key, faster_is_lower=True):
            if reference is None or reference is row:
                return ""
            return f" ({reference[key] / row[key]:.2f}x)"

        lines.append(f"| {row['backend']} | {row['variant']} | {row['cnn_ms_per_sample']:.1f}"
                     f"{ratio('cnn_ms_per_sample')} | {share:.0%} | {row['gan_epoch_s_strides_1111']:.1f}"
                     f"{ratio('gan_epoch_s_strides_1111')} | {row['gan_epoch_s_strides_1222']:.1f}"
                     f"{ratio('gan_epoch_s_strides_1222')} | {row['edsr_512_s']:.2f}{ratio('edsr_512_s')} |")
    lines.append("")
    lines.append("Ratios in brackets: the speed relative to the first TensorFlow row (above 1 is faster).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per measurement (default 6)")
    parser.add_argument("--backends", default="tensorflow,jax,torch", help="comma-separated backends to measure")
    parser.add_argument("--torch-compile", action="store_true", help="also try torch.compile (slow to compile)")
    parser.add_argument("--out", default=None, help="also write the report (Markdown) and the numbers (JSON) here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(bool(int(args.child)), args.steps)))
        return 0
    limit = FlopLimit()
    rows = []
    for backend in [b for b in args.backends.split(",") if b]:
        if importlib.util.find_spec(MODULES.get(backend, backend)) is None:
            print(f"{backend}: not installed (pip install '.[backends]'), left out")
            continue
        variants = VARIANTS[backend] + ([("torch.compile", True)] if backend == "torch" and args.torch_compile else [])
        for variant, jit in variants:
            started = time.perf_counter()
            row = {"backend": backend, "variant": variant, **run_child(backend, variant, jit, args.steps)}
            rows.append(row)
            limit.measure()
            print(f"{backend} ({variant}): {time.perf_counter() - started:.0f} s", flush=True)
    text = report(rows, limit)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "backends.md").write_text(text + "\n")
        (out / "backends.json").write_text(json.dumps({"limit_gflops": limit.best, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
