"""Data-parallel training on several devices: the global batch split evenly over them, the gradients
summed, every device holding the same weights (synchronous), so that a run gives what one device gives.

- TensorFlow: `tf.distribute.MirroredStrategy` over this machine's GPUs.
- JAX: `keras.distribution.DataParallel` over this machine's devices, or over several machines (one
  process each) joined by Keras's variables KERAS_DISTRIBUTION_JOB_ADDRESSES,
  KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID (`keras.distribution.initialize`).
- PyTorch: one device (Keras has no data-parallel distribution for it).

Several machines on TensorFlow (`MultiWorkerMirroredStrategy` from TF_CONFIG) are refused: Keras 3's
`fit` fails under that strategy (keras-team/keras#20585, open; measured here with Keras 3.15).

Without a GPU, `--devices N` splits the CPU into N logical devices: the same code path, checked on
any machine, and no faster than one device. `setup_devices` must run before the backend runs any
operation (TensorFlow and JAX fix their devices then).
"""

import contextlib
import dataclasses
import json
import os

from mrisr.core.messages import inform
from mrisr.errors import UserError

MULTI_WORKER_BUG = "https://github.com/keras-team/keras/issues/20585"


@dataclasses.dataclass
class Devices:
    """Where a run trains: `replicas` devices in all (every process's), this process's rank among the
    `processes` (rank 0 writes the run's files), TensorFlow's strategy if any, and `multiple`: every
    batch is cut to a multiple of the device count (JAX shards a batch only in equal parts, and Keras's
    first-batch build under a TensorFlow strategy fails on unequal parts)."""

    replicas: int = 1
    process: int = 0
    processes: int = 1
    strategy: object = None
    multiple: int = 1
    description: str = "one device"

    @property
    def chief(self):
        return self.process == 0

    def scope(self):
        """Build, compile and train inside this (TensorFlow's strategy scope; nothing elsewhere)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def batch_options(self):
        """The keyword arguments of datasets.make_dataset and prepare_training for these devices."""
        return {"multiple": self.multiple, "shard": (self.process, self.processes)}


def check_batch(batch_size, replicas):
    """UserError unless the global batch splits evenly over the devices."""
    if batch_size % replicas:
        raise UserError(f"`batch_size` {batch_size} does not split evenly over {replicas} devices: the global "
                        f"batch is shared equally, so give a multiple of {replicas}")


def process_count_from_environment():
    """The processes Keras's distribution variables name (1 without them; UserError if malformed)."""
    text = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "").strip()
    if not text:
        return 1
    try:
        count = int(text)
        process = int(os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", ""))
    except ValueError:
        raise UserError("KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID must be whole numbers "
                        "(see docs/gpu.md)") from None
    if count < 1 or not 0 <= process < count or not os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"):
        raise UserError("several machines need KERAS_DISTRIBUTION_JOB_ADDRESSES (the first process's host:port), "
                        "KERAS_DISTRIBUTION_NUM_PROCESSES and a KERAS_DISTRIBUTION_PROCESS_ID from 0 to that "
                        "number - 1 (see docs/gpu.md)")
    return count


def tf_config_workers():
    """How many workers TF_CONFIG names (1 without it)."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "") or "{}").get("cluster", {})
        return max(1, sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")))
    except (ValueError, AttributeError, TypeError):
        raise UserError("TF_CONFIG is not JSON with a 'cluster'") from None


def setup_devices(count=None, say=inform):
    """The devices a training run uses: `count` of this machine's (None or 1: one), on each machine of
    a multi-process JAX run. Call before the Keras backend runs anything."""
    import keras

    backend = keras.backend.backend()
    count = 1 if count is None else count
    if count < 1:
        raise UserError(f"`devices` must be at least 1, got {count}")
    if tf_config_workers() > 1:
        raise UserError("TF_CONFIG names several workers, but Keras 3's fit fails under TensorFlow's "
                        f"MultiWorkerMirroredStrategy ({MULTI_WORKER_BUG}); train on several machines with "
                        "KERAS_BACKEND=jax and Keras's KERAS_DISTRIBUTION_* variables (docs/gpu.md)")
    processes = process_count_from_environment()
    if processes > 1 and backend != "jax":
        raise UserError(f"several machines (KERAS_DISTRIBUTION_NUM_PROCESSES) need KERAS_BACKEND=jax, not {backend}")
    if count == 1 and processes == 1:
        return Devices()
    if backend == "torch":
        raise UserError("`devices`: Keras trains data-parallel on TensorFlow and JAX only; with PyTorch use one "
                        "device (`devices` 1) or KERAS_BACKEND=tensorflow or jax")
    if backend == "jax":
        return jax_devices(count, processes, say)
    return mirrored(count, say)


def devices_for_batch(count, batch_size, say=inform):
    """setup_devices(count, say) for a run of global batch `batch_size`, which must split evenly over
    this machine's `count` devices (checked before the backend starts) and over every process's."""
    check_batch(batch_size, count or 1)
    devices = setup_devices(count, say)
    check_batch(batch_size, devices.replicas)
    return devices


def cpu_devices_line(count):
    return (f"`devices` {count}: no GPU, so the CPU is split into {count} logical devices (the same data-parallel "
            "path, no faster than one device)")


def mirrored(count, say):
    """TensorFlow's MirroredStrategy over `count` GPUs, or over `count` logical CPU devices."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if len(gpus) < count:
            raise UserError(f"`devices` {count}: only {len(gpus)} GPU(s) visible")
        names = [f"/gpu:{k}" for k in range(count)]
        description = f"{count} GPUs"
    else:
        split_cpu(count)
        names = [f"/cpu:{k}" for k in range(count)]
        description = f"{count} logical CPU devices"
        say(cpu_devices_line(count))
    # multiple: Keras's first-batch build under a strategy fails on a batch its devices cannot share equally.
    return Devices(replicas=count, strategy=tf.distribute.MirroredStrategy(names), multiple=count,
                   description=description)


def split_cpu(count):
    import tensorflow as tf

    try:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:  # TensorFlow already started: a programming error, not the user's
        raise RuntimeError(f"setup_devices must run before TensorFlow runs anything ({error})") from None


def jax_devices(count, processes, say):
    """Keras's DataParallel over `count` JAX devices of each process (GPUs, or logical CPU devices
    without one); several processes join through keras.distribution.initialize first."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={count}")
    import jax
    import keras

    if processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives between processes
        keras.distribution.initialize()
    local = jax.local_devices()
    if local[0].platform == "cpu":
        if len(local) < count:
            raise RuntimeError("setup_devices must run before JAX starts")
        if count > 1:
            say(cpu_devices_line(count))
    elif len(local) < count:
        raise UserError(f"`devices` {count}: only {len(local)} {local[0].platform.upper()}(s) visible")
    chosen = [device for process in range(jax.process_count())
              for device in jax.local_devices(process_index=process)[:count]]
    # Each process's batches are already its share (datasets.PairBatches' shard), so no auto-sharding.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=chosen, auto_shard_dataset=False))
    process = jax.process_index()
    if processes > 1:
        say(f"Process {process} of {processes}: {len(chosen)} devices in all"
            + ("" if process == 0 else "; process 0 writes the run's files"))
    return Devices(replicas=len(chosen), process=process, processes=processes, multiple=len(chosen),
                   description=f"{len(chosen)} {local[0].platform.upper()} devices"
                   + (f" on {processes} machines" if processes > 1 else ""))


def replicas_in_sync():
    """How many devices share the current step (TensorFlow's strategy; 1 elsewhere)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def synchronize_batch_norm(model):
    """Under a TensorFlow strategy, make the batch normalisations use the whole global batch's mean and
    variance (as one device would), not each device's share. storage.save_model saves them unsynchronised."""
    import keras

    if replicas_in_sync() > 1:
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True


def without_xla(settings, devices, say=inform):
    """The settings with XLA off when training on several TensorFlow devices: TensorFlow could not compile
    a step whose variables live on several devices (measured on CPU devices; XLA changes speed, not results)."""
    if devices.strategy is None or devices.replicas == 1 or not settings.xla:
        return settings
    say("XLA off: TensorFlow does not compile a step mirrored over several devices")
    return dataclasses.replace(settings, xla=False)
