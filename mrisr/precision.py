"""Mixed precision: Keras's `mixed_float16` or `mixed_bfloat16` policy, chosen for the machine.

The convolutions and matrix products run in 16 bits; the outputs (sigmoids, the colour map, the
cubic upscaling), the losses and the metrics stay in float32, and Keras scales the loss under
`mixed_float16` (its trainer wraps the optimizer in a LossScaleOptimizer).
"""

import contextlib

import keras

from mrisr.cli import UserError

CHOICES = ("auto", "float16", "bfloat16")


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
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as file:
            flags = file.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def choose_policy(requested, say=print):
    """The Keras dtype policy for `--mixed-precision [auto|float16|bfloat16]` (None: float32, the
    paper's). On a GPU: float16 (or bfloat16 when asked). Without one, float16 would be emulated and
    slow, so: bfloat16 on a CPU that has it, else float32; said in one line."""
    if requested is None:
        return "float32"
    if requested not in CHOICES:
        raise UserError(f"--mixed-precision must be one of {', '.join(CHOICES)}, not {requested}")
    if gpu_count():
        return "mixed_bfloat16" if requested == "bfloat16" else "mixed_float16"
    if cpu_has_bfloat16():
        if requested == "float16":
            say("--mixed-precision float16: no GPU, and float16 is slow on a CPU; running mixed bfloat16, which "
                "this CPU computes natively")
        return "mixed_bfloat16"
    say("--mixed-precision: no GPU and no bfloat16 in this CPU; running in float32")
    return "float32"


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
