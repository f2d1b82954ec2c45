"""Reading and writing the files MRI comes in: PNG/JPEG, .npy, DICOM and NIfTI.

`read_image` returns an `ImageFile`: the pixel array as stored (its own data
type), shaped (slices, height, width[, channels]), and what is needed to write
an upscaled file of the same kind (`write_image`).
"""

import copy
import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mrisr.errors import UserError

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
KINDS = ("picture", "npy", "dicom", "nifti")


@dataclasses.dataclass
class ImageFile:
    """Pixels as (slices, height, width) or (slices, height, width, channels), plus their origin."""

    kind: str
    pixels: np.ndarray
    path: Path
    header: Any = None  # the DICOM dataset or the NIfTI image
    axis: Optional[int] = None  # NIfTI: the volume axis the slices run along
    mode: Optional[str] = None  # picture: the PIL mode

    @property
    def slice_count(self):
        return self.pixels.shape[0]


def kind_of(path):
    """The file kind from its name: picture, npy, dicom or nifti (None when unknown)."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if name.endswith(PICTURE_SUFFIXES):
        return "picture"
    return None


def looks_like_dicom(path):
    with open(path, "rb") as file:
        file.seek(128)
        return file.read(4) == b"DICM"


def read_image(path, axis=2):
    """Read an image or volume; raise UserError with one line for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {path} does not exist")
    kind = kind_of(path)
    if kind is None and looks_like_dicom(path):
        kind = "dicom"
    if kind is None:
        raise UserError(f"{path.name}: unsupported format; use PNG/JPEG/TIFF, .npy, DICOM (.dcm) or NIfTI (.nii, .nii.gz)")
    reader = {"picture": _read_picture, "npy": _read_npy, "dicom": _read_dicom, "nifti": _read_nifti}[kind]
    try:
        image = reader(path, axis)
    except UserError:
        raise
    except Exception as error:  # each library raises its own types for a broken file
        raise UserError(f"cannot read {path} as {kind}: {str(error).splitlines()[0][:200]}") from None
    if image.pixels.size == 0 or min(image.pixels.shape[:3]) == 0:
        raise UserError(f"{path} holds no pixels (shape {image.pixels.shape[1:]}): nothing to upscale")
    return image


def _read_picture(path, axis):
    from PIL import Image

    with Image.open(path) as image:
        if image.mode in ("P", "1", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "LA":
            image = image.convert("RGBA")
        mode = image.mode
        pixels = np.asarray(image)
    if mode == "I;16" and pixels.dtype != np.uint16:
        pixels = pixels.astype(np.uint16)
    return ImageFile("picture", pixels[None], path, mode=mode)


def _read_npy(path, axis):
    from mrisr.core.safe_npy import read_npy_header

    with open(path, "rb") as file:
        try:
            _, _, dtype = read_npy_header(file)
        except (ValueError, EOFError, SyntaxError) as error:
            raise UserError(f"{path} is not a .npy file ({str(error).splitlines()[0][:120]})") from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects; upscale.py reads only plain numeric .npy arrays")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise UserError(f"{path}: truncated or corrupt .npy file ({str(error).splitlines()[0][:120]})") from None
    if array.size == 0:
        raise UserError(f"{path} holds an empty array (shape {array.shape}): nothing to upscale")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise UserError(f"{path} holds {array.dtype} values, not numbers")
    if array.ndim == 2:
        return ImageFile("npy", array[None], path)
    if array.ndim == 3:
        return ImageFile("npy", np.moveaxis(array, axis, 0), path, axis=axis)
    raise UserError(f"{path} is a {array.ndim}-D array; expected a 2-D image or a 3-D volume")


def _read_dicom(path, axis):
    import pydicom

    dataset = pydicom.dcmread(path)
    if "PixelData" not in dataset:
        raise UserError(f"{path} is a DICOM file without pixel data")
    pixels = dataset.pixel_array
    if getattr(dataset, "SamplesPerPixel", 1) != 1:
        raise UserError(f"{path} is a colour DICOM image; only greyscale MRI is supported")
    if pixels.ndim == 2:
        pixels = pixels[None]
    return ImageFile("dicom", pixels, path, header=dataset)


def _read_nifti(path, axis):
    import nibabel

    image = nibabel.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise UserError(f"{path} is a {data.ndim}-D NIfTI image; expected a 2-D image or a 3-D volume")
    if axis not in (0, 1, 2):
        raise UserError(f"--axis must be 0, 1 or 2, not {axis}")
    return ImageFile("nifti", np.moveaxis(data, axis, 0), path, header=image, axis=axis)


# --- writing -----------------------------------------------------------------


def check_output(source, output_path):
    """Raise UserError unless the output name fits the input: the same kind, or .npy from anything."""
    kind = kind_of(output_path)
    if kind is None and source.kind == "dicom":
        kind = "dicom"
    if kind not in (source.kind, "npy"):
        allowed = ", ".join(_suffixes(source.kind) + (() if source.kind == "npy" else (".npy",)))
        raise UserError(f"cannot write a {source.kind} input as {Path(output_path).name}: give an output "
                        f"of the same kind ({allowed})")
    return kind


def _suffixes(kind):
    return {"picture": PICTURE_SUFFIXES, "npy": (".npy",), "dicom": DICOM_SUFFIXES, "nifti": NIFTI_SUFFIXES}[kind]


def cast_like(values, dtype):
    """Float pixels back to a data type: rounded and clipped to its range for integers (never wrapped:
    the bounds are the nearest values inside the range that the float type holds, since float32 rounds
    2**31 - 1 up to 2**31, which int32 cannot hold)."""
    dtype = np.dtype(dtype)
    values = np.asarray(values)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        float_type = values.dtype.type if np.issubdtype(values.dtype, np.floating) else np.float64
        high = float_type(info.max)
        if int(high) > info.max:
            high = np.nextafter(high, float_type(0))
        return np.clip(np.rint(values), float_type(info.min), high).astype(dtype)
    return values.astype(dtype)


def write_image(source, pixels, output_path, scale):
    """Write upscaled `pixels` (shaped as source.pixels, in its data type) to a file of the kind the
    output name asks for, carrying over the source's header with the voxel size divided by `scale`."""
    from mrisr.core.files import atomic_write

    output_path = Path(output_path)
    kind = check_output(source, output_path)
    if kind == "npy":
        array = pixels[0] if source.slice_count == 1 and source.kind != "nifti" else pixels
        if source.axis is not None and array.ndim == 3 and source.kind == "npy":
            array = np.moveaxis(array, 0, source.axis)
        atomic_write(output_path, lambda temporary: np.save(temporary, array))
    elif kind == "picture":
        _write_picture(source, pixels[0], output_path)
    elif kind == "dicom":
        _write_dicom(source, pixels, output_path, scale)
    else:
        _write_nifti(source, pixels, output_path, scale)
    return output_path


def _write_picture(source, pixels, path):
    from PIL import Image

    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.dtype != np.uint8:
        raise UserError("JPEG holds 8-bit pixels only; write a 16-bit input as .png or .npy")
    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]  # JPEG has no alpha
    from mrisr.core.files import atomic_write

    picture_format = Image.registered_extensions().get(path.suffix.lower())
    try:
        picture = Image.fromarray(pixels)  # uint8 -> L/RGB/RGBA, uint16 -> I;16, int32 -> I, float32 -> F
        atomic_write(path, lambda temporary: picture.save(temporary, format=picture_format))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot write {pixels.dtype} pixels to {path.name}: {error}; use .npy or .tif") from None


def tiling_affine(affine, factors):
    """The affine of a volume whose voxels along each axis are `factors[axis]` times finer, placed so
    that they tile the old voxels exactly (new voxel k lies at old coordinate (k + 0.5) / F - 0.5).
    Hand-written: nibabel.affines.rescale_affine centres on the integer voxel (shape - 1) // 2, which
    shifts the new grid by a quarter of an old voxel at x2 for an odd size (measured)."""
    factors = np.asarray(factors, dtype=float)
    voxel_map = np.eye(4)
    voxel_map[:3, :3] = np.diag(1.0 / factors)
    voxel_map[:3, 3] = 0.5 / factors - 0.5
    return np.asarray(affine, dtype=float) @ voxel_map


def upscaled_affine(affine, axis, scale):
    """The affine of a volume upscaled by `scale` in the two axes other than `axis` (slice by slice)."""
    factors = [scale] * 3
    factors[axis] = 1
    return tiling_affine(affine, factors)


def upscaled_nifti(image, data, axis, scale):
    """A NIfTI image of `data` (the upscaled volume, axes as in `image`) with `image`'s header, data
    type and codes, the voxel size divided by `scale` in the two axes other than `axis`."""
    import nibabel

    affine = upscaled_affine(image.affine, axis, scale)
    header = image.header.copy()
    zooms = list(header.get_zooms())[:3] + [1.0] * (3 - len(header.get_zooms()[:3]))
    for dimension in range(3):
        if dimension != axis and dimension < len(zooms):
            zooms[dimension] = zooms[dimension] / scale
    output = nibabel.Nifti1Image(data, affine, header)
    output.header.set_zooms(tuple(zooms[: data.ndim]))
    output.set_qform(affine, code=int(image.header["qform_code"]) or 1)
    output.set_sform(affine, code=int(image.header["sform_code"]) or 1)
    output.set_data_dtype(image.get_data_dtype())
    return output


def _write_nifti(source, pixels, path, scale):
    import nibabel

    from mrisr.core.files import atomic_write

    output = upscaled_nifti(source.header, np.moveaxis(pixels, 0, source.axis), source.axis, scale)
    atomic_write(path, lambda temporary: nibabel.save(output, temporary))


def mark_derived(dataset, description, series_uid=None):
    """Make a DICOM dataset a new, derived image: uncompressed explicit little endian, a new SOP
    instance UID, a new (or the given) series UID, `description` added to the series description,
    ImageType DERIVED/SECONDARY. (Its PixelData must already be the new, uncompressed pixels.)"""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    previous = str(getattr(dataset, "SeriesDescription", "")).strip()
    dataset.SeriesDescription = (previous + " " + description).strip()[:64]
    dataset.ImageType = ["DERIVED", "SECONDARY"]


def set_pixels(dataset, frames):
    """New pixels for a DICOM dataset, (rows, columns[, samples]) or (frames, rows, columns[, samples]),
    with pydicom's bookkeeping (Rows, Columns, Number of Frames, bits, an uncompressed transfer syntax)."""
    frames = np.ascontiguousarray(frames)
    samples = frames.shape[-1] if frames.ndim == 4 or (frames.ndim == 3 and frames.shape[-1] in (3, 4)
                                                         and int(getattr(dataset, "SamplesPerPixel", 1)) > 1) else 1
    photometric = "RGB" if samples > 1 else str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2"))
    bits = min(int(getattr(dataset, "BitsStored", 8 * frames.dtype.itemsize)), 8 * frames.dtype.itemsize)
    dataset.set_pixel_data(frames, photometric, bits, generate_instance_uid=False)


def _write_dicom(source, pixels, path, scale):
    dataset = copy.deepcopy(source.header)  # a shallow copy would share (and change) the source's elements
    if "PixelSpacing" in dataset:
        dataset.PixelSpacing = [float(value) / scale for value in dataset.PixelSpacing]
    set_pixels(dataset, pixels if len(pixels) > 1 else pixels[0])
    mark_derived(dataset, f"upscaled x{scale}")
    from mrisr.core.files import atomic_write

    atomic_write(path, lambda temporary: dataset.save_as(temporary, enforce_file_format=True))
