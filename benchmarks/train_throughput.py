"""Benchmark: training speed of the paper CNN against this machine's limits, in one run.

Prints the machine's float32 matmul GFLOP/s (NumPy, 2048x2048; read again after
every measurement, the best reading is the limit: load only slows one) and memory copy
GB/s, the paper CNN's FLOPs per training sample counted layer by layer and the
bytes of weights and optimizer state moved per step, then milliseconds per
sample of `model.fit` at batch 32 for each training-step variant, with the ratio
of achieved GFLOP/s to the matmul limit. Before that, the parts a step must run
(the convolutions' forward pass and gradients, the dense layer's three
products, Adam's update of the dense kernel) are timed alone, each the faster of
XLA and TensorFlow's kernels: their sum is what a step costs that runs them one
after another, unfused. Each variant runs in its own process (the allocator is
chosen when TensorFlow starts); variants alternate, each is measured
`--repeats` times, and the median of the per-step medians is reported.

    python3 -m benchmarks.train_throughput [--batch-size 32] [--steps 10] [--repeats 2]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.machine import FlopLimit, copy_gbps, layer_flops, median_seconds, step_timer

VARIANTS = {
    "plain fit (no XLA, system allocator)": {"xla": False, "bfc": False},
    "fit + XLA, system allocator": {"xla": True, "bfc": False},
    "fit + XLA, BFC allocator (the default here)": {"xla": True, "bfc": True},
}


def time_fit(model, inputs, targets, batch_size, steps):
    """Median seconds per step of model.fit over `steps` steps, after a warm-up."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).repeat().batch(batch_size).prefetch(2)
    model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)  # compile, warm up
    timer = step_timer()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[timer])
    return float(np.median(timer.times))


def step_part_seconds(model, batch_size):
    """Seconds per step of the parts a training step of the paper CNN must run, each timed alone:
    the convolutions' forward pass and gradients, the dense layer's three products (for each part
    the faster of XLA and TensorFlow's own kernels) and Keras's Adam update of the dense kernel
    compiled with XLA. Their sum is what a step costs that runs them one after another, unfused."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    features = keras.Model(model.inputs, dense.input)
    images = tf.constant(rng.random((batch_size, *model.input_shape[1:]), dtype=np.float32))
    inputs = tf.constant(rng.random((batch_size, dense.input.shape[-1]), dtype=np.float32))
    output_gradient = tf.constant(rng.random((batch_size, dense.units), dtype=np.float32))
    kernel = tf.Variable(rng.random(dense.kernel.shape, dtype=np.float32))

    def convolutions():
        with tf.GradientTape() as tape:
            flat = features(images, training=True)
        return tape.gradient(flat, features.trainable_variables, output_gradients=inputs)

    parts = {
        "convolutions, forward and gradients": convolutions,
        "dense forward x @ W": lambda: tf.matmul(inputs, kernel),
        "dense input gradient dz @ W^T": lambda: tf.matmul(output_gradient, kernel, transpose_b=True),
        "dense weight gradient x^T @ dz": lambda: tf.matmul(inputs, output_gradient, transpose_a=True),
    }
    seconds = {name: min(median_seconds(tf.function(part, jit_compile=xla), 3, warmups=2) for xla in (True, False))
               for name, part in parts.items()}
    gradient = parts["dense weight gradient x^T @ dz"]()
    optimizer = keras.optimizers.Adam()
    optimizer.build([kernel])

    def update():
        optimizer.apply([gradient], [kernel])
        return kernel[0, 0]

    seconds["Adam update of the dense kernel (XLA)"] = median_seconds(tf.function(update, jit_compile=True), 3, warmups=2)
    return seconds


def child(variant, batch_size, steps):
    """Measure one variant in this process and print its seconds per step as JSON."""
    from mrisr.nets.losses import mse_loss
    from mrisr.nets.models import paper_cnn
    from mrisr.paper.training import CNNSettings, make_optimizer

    rng = np.random.default_rng(0)
    inputs = rng.random((batch_size * 4, 25, 25, 4), dtype=np.float32)
    targets = rng.random((batch_size * 4, 50, 50, 4), dtype=np.float32)
    model = paper_cnn()
    model.compile(optimizer=make_optimizer(CNNSettings()), loss=mse_loss, jit_compile=VARIANTS[variant]["xla"])
    print(json.dumps({"seconds": time_fit(model, inputs, targets, batch_size, steps)}))


def run_child(variant, batch_size, steps):
    environment = dict(os.environ, TF_CPU_ALLOCATOR_USE_BFC="true" if VARIANTS[variant]["bfc"] else "false",
                       TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_throughput", "--child", variant, "--batch-size", str(batch_size), "--steps", str(steps)],
        env=environment, capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32, help="default 32 = the paper")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per variant")
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batch_size, args.steps)
        return

    from mrisr.nets.models import paper_cnn

    print("Machine (measured now):")
    limit = FlopLimit()
    print(f"  float32 matmul 2048x2048 (NumPy): {limit.best:.0f} GFLOP/s (read again after every measurement)")
    print(f"  memory copy: {copy_gbps():.1f} GB/s (bytes read + written)")

    model = paper_cnn()
    parameters = model.count_params()
    rows = layer_flops(model)
    training = sum(row[2] for row in rows)
    print(f"\nPaper CNN: {parameters:,} parameters; FLOPs per sample:")
    for name, forward, train in rows + [("total", sum(r[1] for r in rows), training)]:
        print(f"  {name:<18} forward {forward / 1e9:6.3f} GFLOP   training {train / 1e9:6.3f} GFLOP")
    # Per step: weights read by the forward and backward passes, gradients written, then Adam reads
    # weights, gradients and two moments and writes weights and moments: 10 float32 passes.
    step_bytes = 10 * 4 * parameters
    print(f"  weights and optimizer state moved per step: about {step_bytes / 1e9:.1f} GB "
          f"(10 passes over {4 * parameters / 1e9:.2f} GB)")
    parts = step_part_seconds(model, args.batch_size)
    parts_total = sum(parts.values())
    print(f"\nParts of one step at batch {args.batch_size}, each timed alone, the faster of XLA and "
          "TensorFlow (ms per step):")
    for name, seconds in parts.items():
        print(f"  {name:<40} {1000 * seconds:7.1f}")
    print(f"  {'sum (one after another, no fusion)':<40} {1000 * parts_total:7.1f}")
    del model
    limit.measure()

    results = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats):
        for name in VARIANTS:
            results[name].append(run_child(name, args.batch_size, args.steps))
            limit.measure()
            print(f"  [{repeat + 1}/{args.repeats}] {name}: {1000 * results[name][-1] / args.batch_size:.1f} ms/sample",
                  flush=True)

    print(f"\nFLOP limit: {limit.describe()}")
    print(f"Training at batch {args.batch_size} (median of {args.repeats} runs x {args.steps} steps):")
    baseline = float(np.median(results[next(iter(VARIANTS))]))
    rows = {name: float(np.median(times)) for name, times in results.items()}
    rows["sum of the parts above, one after another"] = parts_total
    for name, seconds in rows.items():
        achieved = training * args.batch_size / seconds / 1e9
        print(f"  {name:<44} {1000 * seconds / args.batch_size:6.1f} ms/sample {achieved:6.1f} GFLOP/s "
              f"{100 * achieved / limit.best:5.1f}% of the FLOP limit, {baseline / seconds:.2f}x plain, "
              f"weights+state {step_bytes / seconds / 1e9:.1f} GB/s")


if __name__ == "__main__":
    main()
