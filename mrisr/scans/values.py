"""A scan's values: which data types have a meaning here, the finite range, casting results back to the
input's type without ever wrapping, and NaN or infinite input values kept where they were."""

import numpy as np

from mrisr.errors import UserError


def check_values(data, name):
    """UserError unless `data` holds real numbers: complex values (their imaginary part would be lost),
    booleans (a mask, not an image), objects and empty arrays are refused in one line."""
    data = np.asarray(data)
    if data.size == 0 or 0 in data.shape:
        raise UserError(f"{name} holds no values (shape {data.shape}): nothing to upscale")
    if np.issubdtype(data.dtype, np.complexfloating):
        raise UserError(f"{name} holds complex values: upscale the magnitude (or each part) as a real image")
    if data.dtype == np.bool_:
        raise UserError(f"{name} holds booleans (a mask?): upscaling is for images; give numbers")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise UserError(f"{name} holds {data.dtype} values, not numbers")


def intensity_range(pixels):
    """(minimum, maximum, count) over the finite values of `pixels`; count = how many are NaN or infinite."""
    pixels = np.asarray(pixels)
    if not np.issubdtype(pixels.dtype, np.floating):
        return float(pixels.min()), float(pixels.max()), 0
    finite = np.isfinite(pixels)
    count = int(finite.size - np.count_nonzero(finite))
    if count == finite.size:
        raise UserError("every value of the input is NaN or infinite: nothing to upscale")
    return (float(pixels.min(where=finite, initial=np.inf)), float(pixels.max(where=finite, initial=-np.inf)),
            count)


def cast_like(values, dtype, overwrite=False, bounds=None):
    """Float pixels back to a data type: rounded and clipped to its range for integers (never wrapped:
    the bounds are the nearest values inside the range that the float type holds, since float32 rounds
    2**31 - 1 up to 2**31, which int32 cannot hold), and to `bounds` (low, high) where given (the values
    a DICOM file's BitsStored allows, 0 for a magnitude image). `overwrite`: round and clip in `values`
    itself (two volumes of memory fewer at the peak; a 512x512x256 float32 volume is 268 MB)."""
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    low, high = (-np.inf, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        floating = np.issubdtype(values.dtype, np.floating)
        float_type = values.dtype.type if floating else np.float64
        top = float_type(info.max)
        if int(top) > info.max:
            top = np.nextafter(top, float_type(0))
        out = values if overwrite and floating and values.flags.writeable else None
        rounded = np.rint(values, out=out)
        return np.clip(rounded, max(float_type(info.min), float_type(np.ceil(low))),
                       min(top, float_type(np.floor(high))), out=rounded).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        info = np.finfo(dtype)
        with np.errstate(over="ignore"):
            return np.clip(values, max(float(info.min), low), min(float(info.max), high)).astype(dtype)  # NaN stays
    return values.astype(dtype)


def keep_non_finite(result, source, factor, axes):
    """Put each NaN or infinite `source` value back into the `factor` output pixels it covers along
    each of `axes` (float data; `result` is `source` upscaled by `factor` along those axes)."""
    if not np.issubdtype(np.asarray(source).dtype, np.floating) or np.isfinite(source).all():
        return result
    expanded = source
    for axis in axes:
        expanded = np.repeat(expanded, factor, axis=axis)
    keep = ~np.isfinite(expanded)
    result[keep] = expanded[keep]
    return result
