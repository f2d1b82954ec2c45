"""Benchmark: the paper GAN's seconds per epoch of 2450 training pairs, against this machine's limit.

For both discriminator stride settings (1,1,1,1 = the paper's text; 1,2,2,2 = the
authors' code) it measures, each in its own process:
- the plain loop as the authors wrote it: generator.predict, then
  discriminator.train_on_batch on real and generated images, then
  train_on_batch of the stacked generator + frozen discriminator;
- this project's step: one keras.Model.train_step run by fit as one graph (and,
  with --with-xla, compiled with XLA, which is slower on this CPU).
Timings are medians of per-step times after warm-up, scaled to an epoch of 2450
pairs at batch 128 (the paper's training set and batch). The ceiling row times
TensorFlow's convolution kernels alone (forward, input gradient, filter
gradient, each on its own, summed as a step calls them): a step built on those
kernels beats it only by running kernels side by side. FLOPs are counted layer
by layer (a multiply-add = 2 FLOPs); the limit is NumPy's float32 2048x2048
matmul, read after every measurement, the best reading (load only slows one).

    python3 -m benchmarks.gan_throughput [--steps 8] [--repeats 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import FlopLimit, conv_kernel_seconds, conv_layers, copy_gbps, layer_flops, step_timer

PAIRS, BATCH = 2450, 128
VARIANTS = ("plain loop (predict + 2 x train_on_batch)", "fit, one train_step (the default here)",
            "fit, one train_step, XLA")


def flops_per_pair(generator, discriminator):
    """FLOPs of one training pair in one GAN step.

    Discriminator step: G forward (inference) for the fakes; D forward, weight
    gradients and input gradients (not the first layer's) on the real and the
    generated image. Generator step: G forward, D forward, D input gradients
    through every layer (D's weights are frozen), G weight gradients and input
    gradients (not the first layer's).
    """
    g = [row[1] for row in layer_flops(generator)]
    d = [row[1] for row in layer_flops(discriminator)]
    g_forward, d_forward = sum(g), sum(d)
    discriminator_step = g_forward + 2 * (d_forward + d_forward + (d_forward - d[0]))
    generator_step = g_forward + d_forward + d_forward + g_forward + (g_forward - g[0])
    return discriminator_step + generator_step, g, d


def kernel_seconds_per_step(generator, discriminator):
    """Seconds of one GAN step spent in TensorFlow's convolution kernels alone, each timed on its own
    and summed as the step calls them (see flops_per_pair): the ceiling of a step built on them."""
    g, d = conv_layers(generator), conv_layers(discriminator)
    # Discriminator step: the fakes (generator forward), then the discriminator on the real and
    # generated batch, with weight gradients and input gradients below its first layer.
    seconds = sum(conv_kernel_seconds(layer, BATCH, input_gradient=False, filter_gradient=False) for layer in g)
    seconds += sum(conv_kernel_seconds(layer, 2 * BATCH, input_gradient=i > 0) for i, layer in enumerate(d))
    # Generator step: the frozen discriminator's forward and input gradients, then the generator's
    # forward, weight gradients and input gradients below its first layer.
    seconds += sum(conv_kernel_seconds(layer, BATCH, filter_gradient=False) for layer in d)
    seconds += sum(conv_kernel_seconds(layer, BATCH, input_gradient=i > 0) for i, layer in enumerate(g))
    return seconds


def plain_loop_steps(generator, discriminator, inputs, targets, steps):
    """The authors' loop: predict, then two train_on_batch calls per step."""
    import keras

    from mrisr.paper.gan_model import rmsprop

    discriminator.compile(optimizer=rmsprop(2e-4, 6e-8), loss="binary_crossentropy")
    discriminator.trainable = False
    adversarial = keras.Sequential([generator, discriminator])
    adversarial.compile(optimizer=rmsprop(1e-4, 3e-8), loss="binary_crossentropy")
    labels = np.concatenate([np.ones((BATCH, 1)), np.zeros((BATCH, 1))]).astype(np.float32)
    ones = np.ones((BATCH, 1), dtype=np.float32)
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        fake = generator.predict(inputs, verbose=0)
        discriminator.trainable = True
        discriminator.train_on_batch(np.concatenate([targets, fake]), labels)
        discriminator.trainable = False
        adversarial.train_on_batch(inputs, ones)
        if step >= 2:
            times.append(time.perf_counter() - start)
    return times


def fit_steps(settings, inputs, targets, steps):
    import tensorflow as tf

    from mrisr.paper.gan_model import build_gan

    gan = build_gan(settings)
    dataset = tf.data.Dataset.from_tensors((inputs, targets)).repeat()
    gan.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)
    timer = step_timer()
    gan.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return timer.times


def child(variant, strides, steps):
    from mrisr.nets.models import paper_discriminator, paper_generator
    from mrisr.paper.gan import GANSettings

    rng = np.random.default_rng(0)
    inputs = rng.random((BATCH, 25, 25, 4), dtype=np.float32)
    targets = rng.random((BATCH, 50, 50, 4), dtype=np.float32)
    if variant == VARIANTS[0]:
        times = plain_loop_steps(paper_generator(), paper_discriminator(strides=strides), inputs, targets, steps)
    else:
        xla = variant == VARIANTS[2]
        times = fit_steps(GANSettings(disc_strides=strides, xla=xla), inputs, targets, steps)
    print(json.dumps({"seconds": float(np.median(times))}))


def run_child(variant, strides, steps):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.gan_throughput", "--child", variant, "--strides", ",".join(map(str, strides)),
         "--steps", str(steps)],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per variant")
    parser.add_argument("--with-xla", action="store_true",
                        help="also measure the step compiled with XLA (slow on this CPU: minutes)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--strides", default="1,1,1,1", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, tuple(int(s) for s in args.strides.split(",")), args.steps)
        return

    from mrisr.nets.models import paper_discriminator, paper_generator

    print("Machine (measured now):")
    limit = FlopLimit()
    print(f"  float32 matmul 2048x2048 (NumPy): {limit.best:.0f} GFLOP/s (read again after every measurement)")
    print(f"  memory copy: {copy_gbps():.1f} GB/s (bytes read + written)")
    steps_per_epoch = PAIRS / BATCH
    tables = []
    for strides in ((1, 1, 1, 1), (1, 2, 2, 2)):
        generator, discriminator = paper_generator(), paper_discriminator(strides=strides)
        per_pair, g, d = flops_per_pair(generator, discriminator)
        epoch_flops = per_pair * PAIRS
        print(f"\nDiscriminator strides {strides}: forward GFLOP per image, layer by layer:")
        print("  generator     " + " ".join(f"{f / 1e9:.4f}" for f in g) + f"  = {sum(g) / 1e9:.3f}")
        print("  discriminator " + " ".join(f"{f / 1e9:.4f}" for f in d) + f"  = {sum(d) / 1e9:.3f}")
        print(f"  one training pair, both steps: {per_pair / 1e9:.2f} GFLOP; "
              f"an epoch of {PAIRS} pairs: {epoch_flops / 1e12:.2f} TFLOP", flush=True)
        variants = VARIANTS if args.with_xla else VARIANTS[:2]
        results = {variant: [] for variant in variants}
        for _ in range(args.repeats):
            for variant in variants:
                results[variant].append(run_child(variant, strides, args.steps))
                limit.measure()
        rows = {"TF convolution kernels alone (the ceiling)": kernel_seconds_per_step(generator, discriminator)}
        limit.measure()
        rows.update({variant: float(np.median(times)) for variant, times in results.items()})
        tables.append((strides, epoch_flops, rows))

    print(f"\nFLOP limit: {limit.describe()}")
    for strides, epoch_flops, rows in tables:
        print(f"Discriminator strides {strides}, per epoch of {PAIRS} pairs (median of {args.repeats} runs x "
              f"{args.steps} steps):")
        plain = rows[VARIANTS[0]] * steps_per_epoch
        for name, step_seconds in rows.items():
            epoch_seconds = step_seconds * steps_per_epoch
            achieved = epoch_flops / epoch_seconds / 1e9
            print(f"  {name:<44} {epoch_seconds:6.1f} s/epoch  {achieved:6.1f} GFLOP/s  "
                  f"{100 * achieved / limit.best:5.1f}% of the FLOP limit  {plain / epoch_seconds:.2f}x plain")


if __name__ == "__main__":
    main()
