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

from mrisr.cli import UserError
from mrisr.imaging import bone_rgba_to_grey, grey_to_bone_rgba, resize_cubic


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
        import tensorflow as tf

        self.network, self.scale, self.name = network, scale, name
        self.tile, self.margin, self.tile_safe = tile, margin, tile_safe
        self._run = tf.function(lambda x: network(x, training=False), reduce_retracing=True)

    def run(self, grey):
        return np.asarray(self._run(np.asarray(grey, np.float32)[None, :, :, None]))[0, :, :, 0]

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
        size, s = self.size, self.scale
        height, width = grey.shape
        padded = np.pad(grey, ((0, max(0, size - height)), (0, max(0, size - width))), mode="edge")
        tiles, corners = [], []
        for r in self._starts(padded.shape[0]):
            for c in self._starts(padded.shape[1]):
                tiles.append(padded[r:r + size, c:c + size])
                corners.append((r, c))
        tiles = np.stack(tiles)
        low, high = tiles.min(axis=(1, 2), keepdims=True), tiles.max(axis=(1, 2), keepdims=True)
        span = np.where(high > low, high - low, 1.0)
        coloured = grey_to_bone_rgba((tiles - low) / span)[..., : self.channels]
        predicted = np.asarray(self.model.predict(coloured, batch_size=self.batch_size, verbose=0))
        restored = bone_rgba_to_grey(np.clip(predicted, 0, 1)) * span + low
        window = np.outer(*(2 * [np.hanning(self.out_size + 2)[1:-1]])) + 1e-6
        total = np.zeros((padded.shape[0] * s, padded.shape[1] * s))
        weight = np.zeros_like(total)
        for (r, c), tile in zip(corners, restored):
            total[r * s:(r + size) * s, c * s:(c + size) * s] += tile * window
            weight[r * s:(r + size) * s, c * s:(c + size) * s] += window
        return (total / weight)[: height * s, : width * s]


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


def load_upscaler(model_spec, scale=None, tile=192):
    """`bicubic` (with `scale`, default 2) or a .keras model file trained here."""
    if model_spec == "bicubic":
        return BicubicUpscaler(scale or 2)
    from mrisr.models import GlobalAffine, MinMaxNormalise, grey_network
    from mrisr.storage import load_model

    model = load_model(model_spec)
    name = getattr(model, "name", "model")
    network = grey_network(model)
    if network is not None:
        probe = np.asarray(network(np.zeros((1, 8, 8, 1), np.float32)))
        model_scale = probe.shape[1] // 8
        tile_safe = not any(isinstance(layer, (GlobalAffine, MinMaxNormalise)) for layer in _all_layers(network))
        upscaler = ConvolutionalUpscaler(network, model_scale, name, tile, receptive_margin(network), tile_safe)
    else:
        shape_in, shape_out = model.input_shape, model.output_shape
        if not (isinstance(shape_in, tuple) and len(shape_in) == 4 and len(shape_out) == 4 and shape_in[1]):
            raise UserError(f"{model_spec} is not an image-to-image model this tool can upscale with")
        if shape_out[1] is None or shape_in[-1] not in (3, 4) or shape_out[1] <= shape_in[1]:
            raise UserError(f"{model_spec} does not make larger RGB(A) images from RGB(A) crops: it cannot upscale")
        upscaler = FixedSizeUpscaler(model, name)
    if scale is not None and scale != upscaler.scale:
        raise UserError(f"{model_spec} upscales by {upscaler.scale}, not by --scale {scale}")
    return upscaler


def upscale_pixels(upscaler, pixels, progress=False):
    """Upscale (slices, height, width[, channels]) pixels of any numeric type slice by slice: mapped
    to [0, 1] by the whole input's minimum and maximum, upscaled, mapped back to the same range and
    data type (channels, as in an RGB picture, one at a time)."""
    from tqdm import tqdm

    from mrisr.medical_io import cast_like

    values = np.asarray(pixels, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    span = high - low if high > low else 1.0
    grey = (values - low) / span
    s = upscaler.scale
    out_shape = (grey.shape[0], grey.shape[1] * s, grey.shape[2] * s) + grey.shape[3:]
    output = np.empty(out_shape, np.float64)
    for index in tqdm(range(grey.shape[0]), desc="slices", unit="slice", disable=not progress):
        if grey.ndim == 4:
            for channel in range(grey.shape[3]):
                output[index, ..., channel] = upscaler.upscale(grey[index, ..., channel])
        else:
            output[index] = upscaler.upscale(grey[index])
    output = np.clip(output, 0.0, 1.0) * span + low
    return cast_like(output, np.asarray(pixels).dtype)
