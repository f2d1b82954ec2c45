"""Image operations shared by every stage: cubic resizing and the 'bone' colour map."""

import functools

import numpy as np


def cubic_weights(in_size, out_size, a=-0.75):
    """The (out_size, in_size) matrix of OpenCV's INTER_CUBIC resize along one axis.

    Half-pixel centres, the Keys kernel with a = -0.75, no anti-aliasing and
    replicated borders, exactly as `cv2.resize(..., interpolation=cv2.INTER_CUBIC)`
    computes in floating point. (a = -0.5 gives the kernel of Pillow and TensorFlow.)
    """
    scale = in_size / out_size
    source = (np.arange(out_size) + 0.5) * scale - 0.5
    base = np.floor(source).astype(int)
    fraction = source - base
    weights = np.zeros((out_size, in_size))
    for tap in range(-1, 3):
        distance = np.abs(fraction - tap)
        kernel = np.where(
            distance <= 1,
            ((a + 2) * distance - (a + 3)) * distance**2 + 1,
            np.where(distance < 2, a * (((distance - 5) * distance + 8) * distance - 4), 0.0),
        )
        columns = np.clip(base + tap, 0, in_size - 1)
        np.add.at(weights, (np.arange(out_size), columns), kernel)
    return weights


@functools.lru_cache(maxsize=64)
def _cached_weights(in_size, out_size, a):
    weights = cubic_weights(in_size, out_size, a)
    weights.setflags(write=False)
    return weights


def resize_cubic(image, size, a=-0.75):
    """Resize a 2-D image, or an (H, W, C) stack, to `size` = (height, width) with cubic interpolation.

    Computes in float64 and returns float64; no clipping, so overshoot is kept
    (as OpenCV does for floating-point input).
    """
    image = np.asarray(image, dtype=np.float64)
    rows = _cached_weights(image.shape[0], size[0], a)
    columns = _cached_weights(image.shape[1], size[1], a)
    return np.einsum("ij,jk...,lk->il...", rows, image, columns, optimize=True)


def min_max_range(images, axis=None):
    """(low, span) over `axis` (kept as size-1 axes): the minimum, and the maximum minus it (1 where
    the values are constant, so that a constant image normalises to zeros)."""
    low = np.min(images, axis=axis, keepdims=True)
    span = np.max(images, axis=axis, keepdims=True) - low
    return low, np.where(span > 0, span, 1.0)


def min_max_normalise(images, axis=None):
    """Scale to [0, 1] by the minimum and maximum over `axis` (all axes: the image's own, as the paper
    made its crops; a constant image gives zeros). The one home of min-max normalisation in NumPy."""
    images = np.asarray(images, dtype=np.float64)
    low, span = min_max_range(images, axis)
    return (images - low) / span


@functools.lru_cache(maxsize=1)
def bone_table():
    """The 256-entry RGBA lookup table (uint8) of matplotlib's 'bone' colour map."""
    import matplotlib

    colour_map = matplotlib.colormaps["bone"].resampled(256)
    return colour_map(np.arange(256), bytes=True)


def grey_to_bone_index(grey):
    """Map grey values in [0, 1] to the colour map's table index, as matplotlib does."""
    return np.clip((np.asarray(grey) * 256).astype(np.int64), 0, 255)


def bone_rgba_to_grey(rgba):
    """Invert the 'bone' colour map: RGB(A) values in [0, 1] or uint8 -> grey in [0, 1].

    Each pixel maps to the table entry nearest in RGB, and its grey value is the
    entry's centre. Works on any leading shape.
    """
    rgba = np.asarray(rgba)
    rgb = rgba[..., :3].astype(np.float64)
    if rgba.dtype != np.uint8:
        rgb = rgb * 255.0
    table = bone_table()[:, :3].astype(np.float64)
    # The bone map is monotonic in every channel; the sum of channels is strictly increasing.
    keys = table.sum(axis=1)
    index = np.searchsorted(keys, rgb.sum(axis=-1))
    index = np.clip(index, 1, 255)
    below = np.abs(keys[index - 1] - rgb.sum(axis=-1))
    above = np.abs(keys[index] - rgb.sum(axis=-1))
    index = np.where(below < above, index - 1, index)
    return (index + 0.5) / 256.0


def grey_to_bone_rgba(grey):
    """Colour grey values in [0, 1] with the 'bone' map: float RGBA in [0, 1]."""
    return bone_table()[grey_to_bone_index(grey)].astype(np.float32) / 255.0
