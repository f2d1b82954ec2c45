"""Speed of the learning in `upscale.py self` on this machine.

    python3 -m benchmarks.through_plane_speed VOLUME [--axis 1] [--factor 4] [--seconds 20]
        [--out results/through_plane_speed]

VOLUME: an isotropic NIfTI (default: the MNI152 T1 of the demo source), made F times thick along --axis
(box profile). For float32 and mixed bfloat16, each timed for --seconds: a batch of patches from the
sampler; a step inside the learning loop (one `fit` over a stream of batches, timed from its first
batch's end to its last: `upscale.py self` makes one long `fit`, and a `fit` over a generator can take
seconds more to return under TensorFlow, recorded apart as `loop_fit_end_wait_s`), and alone
(`train_on_batch` on one batch: the kernels' time); a forward pass. Each step's FLOPs (Conv2D layers,
forward + gradients) over its seconds, beside this machine's float32 matmul limit measured in the same
run. Then the choice of `--mixed-precision auto` (the trial `upscale.py self` runs).

(The loop shipped before this one, and the learning per minute of each, were measured with a frozen copy of
the old code, since deleted: results/through_plane_speed/, commits 4786cae to 0613bfb.)

Run with TF_ENABLE_ONEDNN_OPTS=0 to see a CPU without native bfloat16: TensorFlow then runs bfloat16
through its emulation, as it does on an AVX2-only CPU (the report records the variable).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import FlopLimit, describe_machine
from mrisr.commands.cli import script_main
from mrisr.core.precision import failure_reason

POLICIES = ("float32", "mixed_bfloat16")


def timed(function, seconds, at_least=1):
    """Seconds per call: one untimed call, then calls for `seconds` (at least `at_least` of them)."""
    function()
    calls, started = 0, time.perf_counter()
    while calls < at_least or time.perf_counter() - started < seconds:
        function()
        calls += 1
    return (time.perf_counter() - started) / calls


def step_flops(recipe, factor):
    """Training FLOPs of one step of the recipe's network: its Conv2D layers (stride 1, 'same') on a patch
    of thick_length x width, forward + the weights' gradient + the input's gradient (not for the first)."""
    from mrisr.nets.models import through_plane_network

    network = through_plane_network(factor, None, recipe.channels, recipe.blocks, dtype="float32")
    total, first = 0, True
    for layer in network.layers:
        if type(layer).__name__ != "Conv2D":
            continue
        k1, k2, channels_in, channels_out = layer.kernel.shape
        forward = 2 * recipe.thick_length * recipe.width * k1 * k2 * channels_in * channels_out
        total += forward * (2 if first else 3)
        first = False
    return recipe.batch_size * total


def measure_policy(policy, volume01, axis, profile, recipe, seconds):
    import keras

    from mrisr.nets.models import through_plane_network
    from mrisr.scans.through_plane import PatchSampler

    planes = np.moveaxis(volume01, axis, 0)
    sampler = PatchSampler(planes, profile, recipe.thick_length, recipe.width)
    batch = recipe.batch_size
    row = {"policy": policy, "sampler_ms": 1000 * timed(lambda: sampler.batch(batch), 2)}

    def compiled():
        keras.utils.set_random_seed(0)
        model = through_plane_network(profile.factor, profile.projection(), recipe.channels, recipe.blocks,
                                      dtype=policy)
        model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss=recipe.loss)
        return model

    try:
        model = compiled()
        inputs, targets = sampler.batch(batch)
        row["kernel_ms"] = 1000 * timed(lambda: model.train_on_batch(inputs, targets), seconds)
        row["forward_ms"] = 1000 * timed(lambda: model.predict_on_batch(inputs), seconds / 2)
        model = compiled()

        def stream():
            while True:
                yield sampler.batch(batch)

        steps = max(4, int(seconds / (row["kernel_ms"] / 1000)))
        model.fit(stream(), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # compile
        clock = step_clock()
        model.fit(stream(), steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
        row["loop_ms"] = 1000 * (clock.ends[-1] - clock.ends[0]) / (steps - 1)
        row["loop_fit_end_wait_s"] = time.perf_counter() - clock.ended
    except Exception as error:  # a precision this machine's kernels cannot run
        row["failed"] = failure_reason(error, limit=200)
    return row


def step_clock():
    """A Keras callback that notes when each batch ends and when training ends (built on first use: Keras
    is imported late)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends, self.ended = [], None

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def on_train_end(self, logs=None):
            self.ended = time.perf_counter()

    return Clock()


def auto_choice(volume01, axis, profile, recipe):
    import keras

    from mrisr.core.precision import measured_policy
    from mrisr.nets.models import through_plane_network
    from mrisr.scans.through_plane import PatchSampler

    sampler = PatchSampler(np.moveaxis(volume01, axis, 0), profile, recipe.thick_length, recipe.width)
    said = []

    def trial(policy):
        model = through_plane_network(profile.factor, profile.projection(), recipe.channels, recipe.blocks,
                                      dtype=policy)
        model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss=recipe.loss)
        inputs, targets = sampler.batch(recipe.batch_size)
        return lambda: model.train_on_batch(inputs, targets)

    policy, seconds = measured_policy(trial, "a training step", said.append)
    return {"policy": policy, "step_ms": 1000 * seconds, "said": said[0]}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("volume", nargs="?", default=None, help="isotropic NIfTI (default: the MNI152 T1)")
    parser.add_argument("--axis", type=int, default=1, choices=(0, 1, 2), help="the axis made thick (default 1)")
    parser.add_argument("--factor", type=int, default=4, help="thin slices per thick slice (default 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timing per measurement (default 20)")
    parser.add_argument("--out", default="results/through_plane_speed", help="folder of the report")
    return parser


@script_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    import nibabel

    from benchmarks.through_plane import thick_volume
    from mrisr.paper.sources import demo_data_path
    from mrisr.scans.through_plane import Recipe, SliceProfile, normalise

    path = Path(args.volume) if args.volume else Path(demo_data_path())
    image = nibabel.load(path)
    data = np.asarray(image.dataobj, np.float32)
    profile, recipe = SliceProfile(args.factor), Recipe()
    _, thick, _ = thick_volume(image, data, args.axis, profile)
    volume01, _, _ = normalise(thick)
    machine = describe_machine()
    limit = FlopLimit()
    flops = step_flops(recipe, args.factor)
    print(f"{machine}\n{path.name} made x{args.factor} thick along axis {args.axis}; recipe {recipe}")
    print(f"one step: {flops / 1e9:.1f} GFLOP (Conv2D layers, forward and gradients)")
    rows = []
    for policy in POLICIES:
        row = measure_policy(policy, volume01, args.axis, profile, recipe, args.seconds)
        limit.measure()
        rows.append(row)
    print(limit.describe())
    print(f"{'policy':<16} {'where':<28} {'ms/step':>8} {'steps/min':>10} {'samples/s':>10} {'GFLOP/s':>8} "
          f"{'of limit':>9}")
    for row in rows:
        if "failed" in row:
            print(f"{row['policy']:<16} failed: {row['failed']}")
            continue
        for key, where in (("loop_ms", "the loop (one fit)"), ("kernel_ms", "train_on_batch alone")):
            seconds = row[key] / 1000
            row[key.replace("_ms", "_gflops")] = flops / seconds / 1e9
            print(f"{row['policy']:<16} {where:<28} {row[key]:8.1f} {60 / seconds:10.0f} "
                  f"{recipe.batch_size / seconds:10.0f} {flops / seconds / 1e9:8.0f} "
                  f"{flops / seconds / 1e9 / limit.best:9.0%}")
        print(f"{'':<16} forward {row['forward_ms']:.1f} ms; a batch of patches {row['sampler_ms']:.1f} ms; the "
              f"loop's fit returned {row['loop_fit_end_wait_s']:.1f} s after its last step")
    choice = auto_choice(volume01, args.axis, profile, recipe)
    print(f"--mixed-precision auto on this machine: {choice['said']}")
    report = {"machine": machine, "volume": path.name, "axis": args.axis, "factor": args.factor,
              "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "recipe": recipe.__dict__,
              "step_gflop": flops / 1e9, "matmul_limit_gflops": limit.best, "policies": rows, "auto": choice}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "through_plane_speed" + ("_no_onednn" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "")
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(f"Wrote {out / f'{name}.json'}")


if __name__ == "__main__":
    sys.exit(main())
