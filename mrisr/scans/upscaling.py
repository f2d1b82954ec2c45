"""Upscaling whole images of any size with a trained model, through overlapping tiles.

An `Upscaler` maps grey images in [0, 1] to grey images `scale` times larger:
- the fully convolutional networks (espcn, edsr...) run their grey network on
  tiles with a margin wider than their receptive field, so the tiles join
  exactly as a whole-image pass would;
- fixed-size models (the paper's CNN and generator, 25x25 RGBA crops in) see
  each tile min-max normalised and coloured with the 'bone' map, as their
  training crops were, and the overlapping outputs are blended with a smooth
  window so no seams show;
- "bicubic" is OpenCV's cubic interpolation, the baseline.
`upscale_pixels` maps a file's pixels (any data type and range) in and out.
"""

import numpy as np

from mrisr.core.messages import inform
from mrisr.errors import RunFailed, UserError
from mrisr.nets.imaging import bone_rgba_to_grey, grey_to_bone_rgba, min_max_range, resize_cubic
from mrisr.scans.values import cast_like, intensity_range, keep_non_finite


class Upscaler:
    """Base: `scale`, `name`, and `upscale(grey)` for one 2-D float image in [0, 1]."""

    scale = 2
    name = "upscaler"

    def upscale(self, grey):
        raise NotImplementedError


class BicubicUpscaler(Upscaler):
    name = "bicubic"

    def __init__(self, scale=2):
        self.scale = scale

    def upscale(self, grey):
        return resize_cubic(grey, (grey.shape[0] * self.scale, grey.shape[1] * self.scale))


def _spans(length, core, margin):
    """Tiles along one axis: (read_start, read_stop, keep_start, keep_stop) in input pixels."""
    spans = []
    for start in range(0, length, core):
        stop = min(start + core, length)
        spans.append((max(0, start - margin), min(length, stop + margin), start, stop))
    return spans


class ConvolutionalUpscaler(Upscaler):
    """A fully convolutional grey network run on tiles of `tile` input pixels plus `margin` on each side."""

    def __init__(self, network, scale, name, tile=192, margin=24, tile_safe=True):
        import keras

        self.network, self.scale, self.name = network, scale, name
        self.tile, self.margin, self.tile_safe = tile, margin, tile_safe
        if keras.backend.backend() == "tensorflow":  # one graph for every tile size, not one per call
            import tensorflow as tf

            self._run = tf.function(lambda x: network(x, training=False), reduce_retracing=True)
        elif keras.backend.backend() == "torch":  # inference without the autograd record
            import torch

            self._run = torch.no_grad()(lambda x: network(x, training=False))
        else:
            self._run = lambda x: network(x, training=False)

    def run(self, grey):
        import keras

        output = keras.ops.convert_to_numpy(self._run(np.asarray(grey, np.float32)[None, :, :, None]))[0, :, :, 0]
        require_finite(output, self.name)
        return output

    def upscale(self, grey):
        height, width = grey.shape
        if not self.tile_safe or (height <= self.tile + 2 * self.margin and width <= self.tile + 2 * self.margin):
            return self.run(grey)
        s = self.scale
        output = np.empty((height * s, width * s), np.float32)
        for r0, r1, k0, k1 in _spans(height, self.tile, self.margin):
            for c0, c1, j0, j1 in _spans(width, self.tile, self.margin):
                result = self.run(grey[r0:r1, c0:c1])
                output[k0 * s:k1 * s, j0 * s:j1 * s] = result[(k0 - r0) * s:(k1 - r0) * s,
                                                              (j0 - c0) * s:(j1 - c0) * s]
        return output


class FixedSizeUpscaler(Upscaler):
    """A model with a fixed RGBA crop input (the paper's CNN or generator) run on overlapping tiles,
    each min-max normalised and 'bone' coloured as the training crops, blended with a smooth window."""

    def __init__(self, model, name, batch_size=256):
        self.model, self.name, self.batch_size = model, name, batch_size
        self.size = int(model.input_shape[1])
        self.out_size = int(model.output_shape[1])
        self.channels = int(model.input_shape[-1])
        if self.out_size % self.size:
            raise UserError(f"{name} maps {self.size} to {self.out_size} pixels: not an integer scale")
        self.scale = self.out_size // self.size
        self.stride = max(1, self.size * 3 // 5)

    def _starts(self, length):
        if length <= self.size:
            return [0]
        starts = list(range(0, length - self.size, self.stride)) + [length - self.size]
        return sorted(set(starts))

    def upscale(self, grey):
        """Tiles are made, predicted and blended a batch at a time, so memory stays bounded by the
        batch (and the output), whatever the image size."""
        size, s = self.size, self.scale
        height, width = grey.shape
        padded = np.pad(grey, ((0, max(0, size - height)), (0, max(0, size - width))), mode="edge")
        corners = [(r, c) for r in self._starts(padded.shape[0]) for c in self._starts(padded.shape[1])]
        window = (np.outer(*(2 * [np.hanning(self.out_size + 2)[1:-1]])) + 1e-6).astype(np.float32)
        total = np.zeros((padded.shape[0] * s, padded.shape[1] * s), np.float32)
        weight = np.zeros_like(total)
        for first in range(0, len(corners), self.batch_size):
            batch = corners[first:first + self.batch_size]
            tiles = np.stack([padded[r:r + size, c:c + size] for r, c in batch])
            low, span = min_max_range(tiles, axis=(1, 2))
            coloured = grey_to_bone_rgba((tiles - low) / span)[..., : self.channels]
            predicted = np.asarray(self.model.predict(coloured, batch_size=self.batch_size, verbose=0))
            require_finite(predicted, self.name)
            restored = bone_rgba_to_grey(np.clip(predicted, 0, 1)) * span + low
            for (r, c), tile in zip(batch, restored):
                total[r * s:(r + size) * s, c * s:(c + size) * s] += tile * window
                weight[r * s:(r + size) * s, c * s:(c + size) * s] += window
        return (total / weight)[: height * s, : width * s]


def require_finite(values, name):
    """RunFailed when a model's output holds NaN or infinite values: they are never written."""
    if not np.isfinite(values).all():
        raise RunFailed(f"{name} gives NaN or infinite values (a diverged or corrupt model): refusing to use it")


def receptive_margin(network):
    """Input pixels of context each output pixel needs: the sum of the convolutions' radii, +2 for
    the cubic skip, rounded up to a multiple of 8."""
    radius = 2  # the cubic skip's taps
    for layer in _all_layers(network):
        kernel = getattr(layer, "kernel_size", None)
        if kernel is not None:
            radius += max(kernel) // 2
    return int(np.ceil(radius / 8) * 8)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def check_options(scale=None, tile=192):
    """UserError unless the scale (None: the model's) is a whole number from 2 to 64 and the tile from 16
    to 8192 pixels."""
    for name, value, low, high in (("scale", scale, 2, 64), ("tile", tile, 16, 8192)):
        if value is None and name == "scale":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise UserError(f"the {name} must be a whole number from {low} to {high}, got {value!r}")


def load_upscaler(model_spec, scale=None, tile=192, precision="float32", say=inform):
    """`bicubic` (with `scale`, default 2), a short name of shipped weights (`mri-x2`, ...) or a .keras
    model file trained here; with a mixed `precision` policy its convolutions run in 16 bits, with
    "auto" in whichever of float32 and 16 bits upscales a tile faster on this machine (said)."""
    check_options(scale, tile)
    if model_spec == "bicubic":
        return BicubicUpscaler(2 if scale is None else scale)
    import keras

    from mrisr.core.precision import measured_policy, mixed_copy
    from mrisr.nets.layers import GlobalAffine, MinMaxNormalise
    from mrisr.nets.loading import load_model
    from mrisr.nets.models import grey_network
    from mrisr.nets.shipped import resolve_model

    model_spec = resolve_model(model_spec)

    model = load_model(model_spec)
    name = getattr(model, "name", "model")
    network = grey_network(model)
    if network is not None:
        probe = keras.ops.convert_to_numpy(network(np.zeros((1, 8, 8, 1), np.float32)))
        model_scale = probe.shape[1] // 8
        tile_safe = not any(isinstance(layer, (GlobalAffine, MinMaxNormalise)) for layer in _all_layers(network))

        def make(policy):
            return ConvolutionalUpscaler(mixed_copy(network, policy), model_scale, name, tile,
                                         receptive_margin(network), tile_safe)
    else:
        shape_in, shape_out = model.input_shape, model.output_shape
        if not (isinstance(shape_in, tuple) and len(shape_in) == 4 and len(shape_out) == 4 and shape_in[1]):
            raise UserError(f"{model_spec} is not an image-to-image model this tool can upscale with")
        if shape_out[1] is None or shape_in[-1] not in (3, 4) or shape_out[1] <= shape_in[1]:
            raise UserError(f"{model_spec} does not make larger RGB(A) images from RGB(A) crops: it cannot upscale")
        if shape_in[1] != shape_in[2] or shape_out[1] != shape_out[2]:
            raise UserError(f"{model_spec} maps {shape_in[1]}x{shape_in[2]} crops to {shape_out[1]}x{shape_out[2]}: "
                            "this tool tiles images with square crops only")

        def make(policy):
            return FixedSizeUpscaler(mixed_copy(model, policy), name)

    if precision == "auto":
        tile_probe = np.random.default_rng(0).random((min(tile, 96), min(tile, 96)))

        def trial(policy):
            upscaler = make(policy)
            return lambda: upscaler.upscale(tile_probe)

        precision = measured_policy(trial, "one tile", say)[0]
    upscaler = make(precision)
    if scale is not None and scale != upscaler.scale:
        raise UserError(f"{model_spec} upscales by {upscaler.scale}, not by `scale` {scale}")
    probe = np.random.default_rng(0).random((32, 32))
    try:
        upscaler.upscale(probe)
    except RunFailed:
        raise RunFailed(f"{model_spec} gives NaN or infinite values on a test image (a diverged or corrupt "
                        "model): refusing to use it") from None
    return upscaler


def output_bytes(pixels, scale):
    """Memory an upscale of `pixels` needs: the output in the input's type, plus float64 work on one slice."""
    pixels = np.asarray(pixels)
    slice_elements = int(np.prod(pixels.shape[1:])) * scale * scale
    return pixels.shape[0] * slice_elements * pixels.dtype.itemsize + 4 * slice_elements * 8


def check_memory(needed, what):
    """UserError when `needed` bytes exceed 80% of this machine's memory."""
    import os

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if needed > 0.8 * total:
        raise UserError(f"{what} needs about {needed / 2**30:.1f} GiB of memory, more than this machine has "
                        f"({total / 2**30:.1f} GiB): use a smaller `scale` or a smaller input")


def upscale_pixels(upscaler, pixels, progress=False):
    """Upscale (slices, height, width[, channels]) pixels of any numeric type slice by slice: mapped
    to [0, 1] by the whole input's finite minimum and maximum, upscaled, mapped back to the same range
    and data type (channels, as in an RGB picture, one at a time). One slice is in float64 at a time.

    NaN and infinite input values are left out of the range, enter the network as the minimum, and
    are kept as they were in each of the scale x scale output pixels they cover (see intensity_range
    for their count). A NaN or infinite network output stops the work (RunFailed)."""
    from tqdm import tqdm


    pixels = np.asarray(pixels)
    low, high, _ = intensity_range(pixels)
    span = high - low if high > low else 1.0
    s = upscaler.scale
    out_shape = (pixels.shape[0], pixels.shape[1] * s, pixels.shape[2] * s) + pixels.shape[3:]
    output = np.empty(out_shape, pixels.dtype)
    for index in tqdm(range(pixels.shape[0]), desc="slices", unit="slice", disable=not progress):
        plane = pixels[index].astype(np.float64)
        bad = ~np.isfinite(plane)
        grey = np.where(bad, 0.0, (plane - low) / span)
        if grey.ndim == 3:
            upscaled = np.stack([upscaler.upscale(grey[..., channel]) for channel in range(grey.shape[2])], axis=-1)
        else:
            upscaled = upscaler.upscale(grey)
        require_finite(upscaled, upscaler.name)
        result = cast_like(np.clip(upscaled, 0.0, 1.0) * span + low, pixels.dtype, overwrite=True)
        if bad.any():
            result = keep_non_finite(result, plane, s, axes=(0, 1))
        output[index] = result
    return output
