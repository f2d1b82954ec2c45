"""Benchmark: where each Keras backend's training step goes, for the paper CNN (batch 32) and the
paper GAN (batch 128, discriminator strides 1,1,1,1), one process per backend, one report.

The paper CNN's step is cut into its forward pass (`predict_on_batch`, compiled as the step is), the
backward pass with the least update (the step with plain SGD less the forward pass), and Adam's share
(the paper's step less the SGD step: Adam's update over 200M weights is memory-bound); with GFLOP/s
against the float32 matmul limit read in the same run. (Timing Adam's `apply` on its own runs it
eagerly, unfused, slower than inside the compiled step: not a fair part.) The GAN's step is cut into the generator's
inference pass (the fakes), the discriminator's forward pass over real and fake images, and the rest
(the backward passes, the generator's training pass, both updates). Medians of repeats.

    python3 -m benchmarks.step_breakdown [--backends tensorflow,jax,torch] [--out results/backends]
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

from benchmarks.backends import CNN_BATCH, GAN_BATCH, MODULES, fit_step_seconds
from benchmarks.machine import FlopLimit, copy_gbps, layer_flops, median_seconds

ROOT = Path(__file__).resolve().parents[1]


def wait(result):
    """Block until a backend's result is computed (every backend computes asynchronously or not)."""
    import keras

    return [keras.ops.convert_to_numpy(value) for value in (result if isinstance(result, (list, tuple)) else [result])]


def cnn_parts(jit, steps):
    import keras

    from mrisr.nets.losses import mse_loss
    from mrisr.nets.models import paper_cnn
    from mrisr.paper.training import CNNSettings, make_optimizer

    rng = np.random.default_rng(0)
    model = paper_cnn()
    inputs = rng.random((64, 25, 25, 4), dtype=np.float32)
    targets = rng.random((64, 50, 50, 4), dtype=np.float32)

    def step_seconds(optimizer):
        model.compile(optimizer=optimizer, loss=mse_loss, jit_compile=jit)
        return fit_step_seconds(model, inputs, targets, CNN_BATCH, steps)

    adam = step_seconds(make_optimizer(CNNSettings()))  # the paper's step
    sgd = step_seconds(keras.optimizers.SGD(1e-5))  # the least update: weight -= rate * gradient
    forward = median_seconds(lambda: wait(model.predict_on_batch(inputs[:CNN_BATCH])), repeats=steps)
    flops = layer_flops(model)
    forward_flops = sum(forward for _, forward, _ in flops) * CNN_BATCH
    training_flops = sum(training for _, _, training in flops) * CNN_BATCH
    weights = sum(int(np.prod(variable.shape)) for variable in model.trainable_variables)
    return {"step": adam, "step_sgd": sgd, "forward": forward, "adam_extra": adam - sgd, "backward": sgd - forward,
            "forward_flops": forward_flops, "backward_flops": training_flops - forward_flops,
            "sgd_update_bytes": 3 * 4 * weights}  # SGD reads weight and gradient, writes weight


def gan_parts(jit, steps):
    from mrisr.paper.gan import GANSettings
    from mrisr.paper.gan_model import build_gan

    rng = np.random.default_rng(0)
    gan = build_gan(GANSettings(xla=jit))
    inputs = rng.random((GAN_BATCH, 25, 25, 4), dtype=np.float32)
    targets = rng.random((GAN_BATCH, 50, 50, 4), dtype=np.float32)
    step = fit_step_seconds(gan, inputs, targets, GAN_BATCH, steps)
    generator = median_seconds(lambda: wait(gan.generator.predict_on_batch(inputs)), repeats=steps)
    both = np.concatenate([targets, targets])
    discriminator = median_seconds(lambda: wait(gan.discriminator.predict_on_batch(both)), repeats=steps)
    return {"step": step, "generator_forward": generator, "discriminator_forward": discriminator,
            "rest": step - generator - discriminator,
            "discriminator_flops": sum(forward for _, forward, _ in layer_flops(gan.discriminator)) * 2 * GAN_BATCH}


# (variant, jit, with the GAN): the GAN under TensorFlow's XLA is left out, 15x slower (benchmarks/backends.py).
VARIANTS = {"tensorflow": [("XLA", True, False), ("no XLA", False, True)], "jax": [("jit", True, True)],
            "torch": [("eager", False, True)]}


def run_child(backend, jit, gan, steps):
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    finished = subprocess.run([sys.executable, "-m", "benchmarks.step_breakdown", "--child", f"{int(jit)}{int(gan)}",
                               "--steps", str(steps)], env=environment, capture_output=True, text=True, cwd=ROOT)
    if finished.returncode != 0:
        return {"error": finished.stderr.strip().splitlines()[-1] if finished.stderr.strip() else "failed"}
    return json.loads(finished.stdout.strip().splitlines()[-1])


def report(rows, limit, bandwidth):
    lines = [f"Machine: {limit.describe()}; memory copy {bandwidth:.0f} GB/s (read + write)", "",
             "Paper CNN step at batch 32, ms per sample (GFLOP/s, share of the matmul limit). The forward pass is "
             "`predict_on_batch`; the backward pass is the step with plain SGD less the forward pass (it holds "
             "SGD's update, which at the copy speed would take the ms given); Adam's share is the paper's step "
             "less the SGD step:", "",
             "| backend | variant | step (Adam) | forward | backward + SGD update | SGD update at copy speed "
             "| Adam's extra |", "|---|---|---:|---:|---:|---:|---:|"]

    def rate(flops, seconds):
        if seconds <= 0:
            return "n/a"
        return f"{flops / seconds / 1e9:.0f} GFLOP/s, {flops / seconds / 1e9 / limit.best:.0%}"

    for row in rows:
        if "error" in row:
            lines.append(f"| {row['backend']} | {row['variant']} | failed: {row['error']} | | | | |")
            continue
        cnn = row["cnn"]
        ms = {key: 1000 * cnn[key] / CNN_BATCH for key in ("step", "forward", "backward", "adam_extra")}
        copy_ms = 1000 * cnn["sgd_update_bytes"] / (bandwidth * 1e9) / CNN_BATCH
        lines.append(f"| {row['backend']} | {row['variant']} | {ms['step']:.1f} | {ms['forward']:.1f} "
                     f"({rate(cnn['forward_flops'], cnn['forward'])}) | {ms['backward']:.1f} "
                     f"({rate(cnn['backward_flops'], cnn['backward'])}) | {copy_ms:.1f} | {ms['adam_extra']:.1f} |")
    lines += ["", "Paper GAN step at batch 128 (discriminator strides 1,1,1,1), seconds:", "",
              "| backend | variant | step | generator forward (fakes) | discriminator forward, 256 images "
              "(GFLOP/s) | the rest: backward passes, generator pass, updates |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row or row["gan"] is None:
            continue
        gan = row["gan"]
        lines.append(f"| {row['backend']} | {row['variant']} | {gan['step']:.2f} | {gan['generator_forward']:.2f} | "
                     f"{gan['discriminator_forward']:.2f} ({rate(gan['discriminator_flops'], gan['discriminator_forward'])}) "
                     f"| {gan['rest']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed repeats per part (default 6)")
    parser.add_argument("--backends", default="tensorflow,jax,torch", help="comma-separated backends to measure")
    parser.add_argument("--out", default=None, help="also write the report (Markdown) and the numbers (JSON) here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        jit, gan = (bool(int(flag)) for flag in args.child)
        print(json.dumps({"cnn": cnn_parts(jit, args.steps), "gan": gan_parts(jit, args.steps) if gan else None}))
        return 0
    limit, bandwidth = FlopLimit(), copy_gbps()
    rows = []
    for backend in [name for name in args.backends.split(",") if name]:
        if importlib.util.find_spec(MODULES.get(backend, backend)) is None:
            print(f"{backend}: not installed (pip install '.[backends]'), left out")
            continue
        for variant, jit, gan in VARIANTS[backend]:
            started = time.perf_counter()
            rows.append({"backend": backend, "variant": variant, **run_child(backend, jit, gan, args.steps)})
            limit.measure()
            print(f"{backend} ({variant}): {time.perf_counter() - started:.0f} s", flush=True)
    text = report(rows, limit, bandwidth)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "step_breakdown.md").write_text(text + "\n")
        (out / "step_breakdown.json").write_text(json.dumps({"limit_gflops": limit.best, "copy_gbps": bandwidth,
                                                             "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
