"""One DICOM file read safely: pydicom without its warnings, files without the 128-byte preamble (valid
DICOM), numbers from attributes that may be absent, empty or malformed, and pixels whose missing decoder
is named instead of called a corrupt file."""

import math
import warnings

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mrisr.errors import UserError


def looks_like_dicom(path):
    """Whether a file carries the DICOM preamble (the bytes DICM at offset 128)."""
    try:
        with open(path, "rb") as file:
            file.seek(128)
            return file.read(4) == b"DICM"
    except OSError:
        return False


def first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def sop_class(dataset):
    """A dataset's SOP class UID (from its file meta, else its own element), None when it has none."""
    return getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", None) or \
        getattr(dataset, "SOPClassUID", None)


def is_image(dataset):
    """Whether a dataset claims to be an image (its SOP class, or rows of pixels)."""
    return "Rows" in dataset or "Image Storage" in str(getattr(sop_class(dataset), "name", ""))


def dcmread(path):
    """A DICOM file as a pydicom dataset, without pydicom's warnings; a file without the 128-byte
    preamble is read too when what it holds is DICOM (a SOP class or pixel data). Raises pydicom's
    InvalidDicomError for a file that is not DICOM."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path)
        except InvalidDicomError:
            try:
                dataset = pydicom.dcmread(path, force=True)
                if sop_class(dataset) is not None or "PixelData" in dataset:
                    return dataset
            except Exception:  # pydicom raises many types for bytes that are not DICOM
                pass
            raise


def read_dataset(path):
    """One DICOM file, or UserError naming it."""
    try:
        return dcmread(path)
    except Exception as error:  # pydicom raises many types for a broken file
        raise UserError(f"cannot read {path} as DICOM: {first_line(error)}") from None


def pixels_of(dataset, path):
    """A dataset's pixel array, or UserError naming the file: a missing decoder (with the package that
    decodes it), or truncated or undecodable pixel data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dataset.pixel_array
    except Exception as error:  # pydicom and its decoders raise many types
        if "missing dependencies" in str(error) or "no pixel data handler" in str(error).lower():
            syntax = dataset.file_meta.TransferSyntaxUID
            raise UserError(f"{path}: its pixels are compressed as {getattr(syntax, 'name', syntax)} and no decoder "
                            "for that is installed here: pip install \"mrisr[dicom]\" (python-gdcm), or convert the "
                            "file to uncompressed DICOM first (gdcmconv --raw, or dcmdjpeg / dcmdjpls)") from None
        raise UserError(f"{path}: its pixel data cannot be read ({first_line(error)}): a truncated or corrupt "
                        "file") from None


def text_of(dataset, keyword):
    """An attribute as stripped text, "" where absent or empty."""
    value = dataset.get(keyword)
    return "" if value is None else str(value).strip()


def number(dataset, keyword, where, positive=False):
    """A numeric attribute (DS, IS...) as a float; None where it is absent or empty (legal for optional
    attributes). UserError naming `where` when it is not a finite number (or not above 0 with `positive`)."""
    values = numbers(dataset, keyword, 1, where, positive)
    return None if values is None else float(values[0])


def numbers(dataset, keyword, count, where, positive=False):
    """A numeric attribute of `count` values as a float array, None where absent or empty; UserError
    naming `where` for another count, text, NaN or infinity (or values not above 0 with `positive`)."""
    if keyword not in dataset:
        return None
    value = dataset[keyword].value
    if value is None or value == "" or (isinstance(value, (list, tuple)) and not len(value)):
        return None
    items = [value] if isinstance(value, (str, bytes, int, float)) else list(value)
    try:
        result = np.array([float(item) for item in items], dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {keyword} is {value!r}, not {count} number(s)") from None
    if len(result) != count or not all(math.isfinite(v) for v in result):
        raise UserError(f"{where}: {keyword} is {value!r}, not {count} finite number(s)")
    if positive and (result <= 0).any():
        raise UserError(f"{where}: {keyword} is {value!r}: it must be above 0")
    return result
