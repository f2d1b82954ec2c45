"""Mixed precision: Keras's `mixed_float16` or `mixed_bfloat16` policy, chosen by measuring.

The convolutions and matrix products run in 16 bits; the outputs (sigmoids, the colour map, the
cubic upscaling), the losses and the metrics stay in float32, and Keras scales the loss under
`mixed_float16` (its trainer wraps the optimizer in a LossScaleOptimizer).

`--mixed-precision auto` never trusts a name: a CPU without AVX-512 BF16 or AMX emulates bfloat16
at a tenth of float32's speed, and even one that has it may run a small network no faster. So each
command gives `measured_policy` a trial of its own step (a training step, or an upscaled tile) built
under each candidate policy; the fastest is chosen and said in one line.
"""

import contextlib
import time

import keras

from mrisr.core.messages import inform
from mrisr.errors import RunFailed, UserError

CHOICES = ("auto", "float32", "float16", "bfloat16")
POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def gpu_count():
    """The GPUs the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return len([device for device in jax.devices() if device.platform == "gpu"])
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def cpu_has_bfloat16():
    """Whether this CPU's flags promise native bfloat16 (AVX-512 BF16 or AMX): used only to word a
    warning; the choice itself is measured."""
    try:
        with open("/proc/cpuinfo") as file:
            flags = file.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def policy_name(policy):
    return {"float32": "float32", "mixed_float16": "mixed float16", "mixed_bfloat16": "mixed bfloat16"}[policy]


def trial_candidates():
    """The policies worth a trial here: float32 and the 16-bit type the device may compute natively."""
    return ("float32", "mixed_float16") if gpu_count() else ("float32", "mixed_bfloat16")


def seconds_per_step(step, budget=1.5, slower_than=None, clock=time.perf_counter):
    """Seconds one call of `step` takes: the first call (building, compiling) is not timed, then calls
    are timed for `budget` seconds, or until they are clearly (1.5 times) slower than `slower_than`."""
    step()
    count, started = 0, clock()
    while True:
        step()
        count += 1
        elapsed = clock() - started
        if elapsed >= budget or (slower_than is not None and elapsed / count > 1.5 * slower_than):
            return elapsed / count


def failure_reason(error, limit=100):
    """The line that says why a trial failed. TensorFlow's graph errors open with a heading ("Graph
    execution error:") and a traceback of where the node was defined; the kernel's own words come
    last ("... message: could not create a primitive descriptor ...")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    headings = ("File ", "Detected at node", "[[")
    telling = [line for line in lines if not (line.endswith(":") or line.startswith(headings))]
    reason = telling[-1] if telling else type(error).__name__
    if "message: " in reason:
        reason = reason.split("message: ", 1)[1].split(". ", 1)[0]
    return reason[:limit]


def measured_policy(trial, what="a step", say=inform, budget=1.5, candidates=None, clock=time.perf_counter):
    """(policy, seconds per step): the fastest of the candidate policies for `trial(policy)`, a
    callable that runs one step built under that policy. A candidate that fails is left out (a CPU
    whose math library cannot run bfloat16 at all). Said in one line."""
    timings, failures = {}, {}
    for policy in candidates or trial_candidates():
        try:
            with policy_scope(policy):
                step = trial(policy)
            timings[policy] = seconds_per_step(step, budget, min(timings.values(), default=None), clock)
        except (MemoryError, KeyboardInterrupt, UserError, RunFailed):
            raise
        except Exception as error:  # each backend raises its own types for an unsupported kernel
            failures[policy] = failure_reason(error)
    if not timings:
        raise RunFailed(f"no precision runs {what} on this machine: "
                        + "; ".join(f"{policy_name(p)}: {reason}" for p, reason in failures.items()))
    chosen = min(timings, key=timings.get)
    measured = ", ".join(f"{policy_name(p)} {1000 * t:.0f} ms" for p, t in timings.items())
    failed = "".join(f"; {policy_name(p)} failed ({reason})" for p, reason in failures.items())
    say(f"precision: {policy_name(chosen)}, the faster here (measured {what}: {measured}{failed})")
    return chosen, timings[chosen]


def choose_policy(requested, say=inform):
    """The Keras dtype policy for `--mixed-precision [auto|float32|float16|bfloat16]` (None: float32,
    the paper's), or "auto", which the work measures with a trial of its own step (measured_policy).
    An explicit 16-bit choice is kept, with a line when this machine is likely to emulate it."""
    if requested is None or requested == "float32":
        return "float32"
    if requested not in CHOICES:
        raise UserError(f"`precision` must be one of {', '.join(CHOICES)}, not {requested}")
    if requested == "auto":
        return "auto"
    if not gpu_count():
        if requested == "float16":
            say("warning: `precision` float16 without a GPU: CPUs emulate float16, expect it far slower "
                "than float32 (auto measures and picks the faster)")
        elif not cpu_has_bfloat16():
            say("warning: `precision` bfloat16 on a CPU without AVX-512 BF16 or AMX: it is emulated, expect it "
                "far slower than float32 (auto measures and picks the faster)")
    return POLICIES[requested]


@contextlib.contextmanager
def policy_scope(policy):
    """Build models under `policy` (the global dtype policy), then restore the previous one. Training
    follows the policy the layers were built with."""
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def is_mixed():
    return keras.mixed_precision.dtype_policy().name.startswith("mixed")


def output_dtype():
    """Keyword arguments for a layer that must compute in float32 under a mixed policy (none otherwise,
    so that float32 models stay exactly as they were)."""
    return {"dtype": "float32"} if is_mixed() else {}


def mixed_copy(model, policy):
    """A copy of a loaded float32 model with its convolutions and dense layers in `policy` (other
    layers, and any layer ending in a sigmoid, stay float32), the same weights (for inference)."""
    if not policy.startswith("mixed"):
        return model

    def clone(layer):
        config = layer.get_config()
        heavy = isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        if heavy and config.get("activation") != "sigmoid":
            config["dtype"] = keras.DTypePolicy(policy)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
