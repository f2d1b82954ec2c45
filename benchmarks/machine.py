"""What the benchmarks share: this machine's measured limits and FLOP counts of Keras layers."""

import time

import numpy as np

from mrisr.core.machine import describe_machine  # noqa: F401 (the benchmarks' machine line: the library's)


def matmul_gflops(size=2048, repeats=10):
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    return 2 * size**3 / median_seconds(lambda: a @ a, repeats) / 1e9


class FlopLimit:
    """The FLOP limit of a benchmark run: the float32 matmul GFLOP/s, read again with `measure()`
    through the run. Load only ever slows a reading down, so the limit is the best reading."""

    def __init__(self):
        self.readings = []
        self.measure()

    def measure(self):
        self.readings.append(matmul_gflops())

    @property
    def best(self):
        return max(self.readings)

    def describe(self):
        return (f"float32 matmul 2048x2048 (NumPy), best of {len(self.readings)} readings through the run: "
                f"{self.best:.0f} GFLOP/s (lowest {min(self.readings):.0f})")


def copy_gbps(megabytes=1024, repeats=5):
    source = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    target = np.empty_like(source)
    seconds = median_seconds(lambda: np.copyto(target, source), repeats)
    return 2 * source.nbytes / seconds / 1e9  # bytes read + bytes written


def layer_flops(model):
    """(name, forward FLOPs, training FLOPs) per sample for Conv2D and Dense layers.

    A multiply-add is 2 FLOPs. Training = forward + gradient of the weights (same
    cost) + gradient of the input (same cost, not needed for the first layer).
    """
    rows = []
    for position, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if kind == "Conv2D":
            height, width, out_channels = layer.output.shape[1:]
            k1, k2 = layer.kernel_size
            forward = 2 * height * width * out_channels * k1 * k2 * layer.input.shape[-1]
        elif kind == "Dense":
            forward = 2 * layer.input.shape[-1] * layer.units
        else:
            continue
        backward = forward if position == 0 else 2 * forward
        rows.append((f"{layer.name} ({kind})", forward, forward + backward))
    return rows


def step_timer():
    """A Keras callback that records the seconds of every training batch (in `.times`)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    return StepTimer()


def median_seconds(function, repeats=5, warmups=1):
    """Median seconds of `function()` after `warmups` untimed calls. A TensorFlow result (a tensor or
    a list of them) is waited for by reading it back."""
    def run():
        result = function()
        for tensor in result if isinstance(result, (list, tuple)) else [result]:
            if hasattr(tensor, "numpy"):
                tensor.numpy()

    for _ in range(warmups):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def conv_kernels(layer, batch, forward=True, input_gradient=True, filter_gradient=True):
    """TensorFlow's own kernels for one Keras Conv2D layer at `batch`, as compiled functions by name:
    the forward convolution, the gradient of its input and the gradient of its filter (those asked
    for), on random data of the layer's shapes."""
    import tensorflow as tf

    if not (forward or input_gradient or filter_gradient):
        raise ValueError("no kernel asked for")
    rng = np.random.default_rng(0)
    height, width, channels = layer.input.shape[1:]
    out_height, out_width, filters = layer.output.shape[1:]
    images = tf.constant(rng.random((batch, height, width, channels), dtype=np.float32))
    kernel = tf.constant(rng.random((*layer.kernel_size, channels, filters), dtype=np.float32))
    output_gradient = tf.constant(rng.random((batch, out_height, out_width, filters), dtype=np.float32))
    strides, padding = [1, *layer.strides, 1], layer.padding.upper()
    kernels = {}
    if forward:
        kernels["forward"] = tf.function(lambda: tf.nn.conv2d(images, kernel, strides, padding))
    if input_gradient:
        kernels["input_gradient"] = tf.function(lambda: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(images), filter=kernel, out_backprop=output_gradient, strides=strides,
            padding=padding))
    if filter_gradient:
        kernels["filter_gradient"] = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=images, filter_sizes=tf.shape(kernel), out_backprop=output_gradient, strides=strides,
            padding=padding))
    return kernels, (images, kernel, output_gradient)


def conv_kernel_seconds(layer, batch, forward=True, input_gradient=True, filter_gradient=True, repeats=3):
    """Seconds of TensorFlow's own kernels for one Keras Conv2D layer at `batch`, each timed alone
    (the sum of the wanted ones). No bias, activation or memory traffic between layers: a lower bound."""
    kernels, _ = conv_kernels(layer, batch, forward, input_gradient, filter_gradient)
    return sum(median_seconds(kernel_call, repeats, warmups=2) for kernel_call in kernels.values())


def conv_layers(model):
    """The Conv2D layers of a model, in order."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
