"""Training pairs from a crop set: the paper's pairs as they are, or consistent pairs (the target and its
area-averaged downsample, one intensity scale)."""

import dataclasses

import numpy as np

from mrisr.errors import UserError

PAIRS = ("paper", "consistent")


def area_downsample(grey, scale):
    """Anti-aliased downsampling of (N, H, W) images by an integer factor: the mean of each block."""
    n, height, width = grey.shape
    return grey.reshape(n, height // scale, scale, width // scale, scale).mean(axis=(2, 4))


def consistent_pairs(crop_set, scale=2):
    """The standard super-resolution pairs made from a CropSet's targets: the target (its centre,
    cut to a multiple of `scale`) and, as input, its area-averaged downsample by `scale` in grey,
    coloured and quantised as a crop PNG would be. Input and target share one intensity scale."""
    from mrisr.nets.imaging import bone_rgba_to_grey, grey_to_bone_rgba

    size = crop_set.targets.shape[1] // scale * scale
    if size == 0:
        raise UserError(f"the {crop_set.targets.shape[1]}-pixel targets are too small for scale {scale}")
    start = (crop_set.targets.shape[1] - size) // 2
    targets = crop_set.targets[:, start:start + size, start:start + size]
    grey = bone_rgba_to_grey(targets)
    inputs = grey_to_bone_rgba(area_downsample(grey, scale))
    return dataclasses.replace(crop_set, inputs=inputs.astype(np.float32), targets=targets)


def make_pairs(crop_set, pairs="paper", scale=None):
    """The training pairs a run asks for: the crops as they are, or consistent pairs (see above).
    For paper pairs `scale`, when given, must match the crops' sizes."""
    if pairs == "consistent":
        return consistent_pairs(crop_set, 2 if scale is None else scale)
    if pairs != "paper":
        raise ValueError(f"unknown pairs {pairs!r}; choose from {', '.join(PAIRS)}")
    low, high = crop_set.inputs.shape[1], crop_set.targets.shape[1]
    if scale is not None and low * scale != high:
        raise UserError(f"`scale` {scale} does not fit the crops ({low}x{low} -> {high}x{high}); make x{scale} "
                        f"crops with extract_crops.py --sizes, or use `pairs` consistent")
    return crop_set
