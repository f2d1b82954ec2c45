"""Pictures (PNG, JPEG, TIFF, BMP) read and written with Pillow: one page of grey, RGB or RGBA pixels."""

import numpy as np
from PIL import Image

from mrisr.errors import UserError
from mrisr.scans.kinds import Scan
from mrisr.scans.upscaling import check_memory


def read_picture(path):
    """A picture as a Scan (height, width[, channels]); a multi-page file is refused (its other pages
    would be lost), and a picture too large for this machine's memory is refused before it is decoded
    (Pillow's decompression-bomb limit is replaced by that check)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the size is checked against the memory below, before decoding
    try:
        with Image.open(path) as image:
            pages = getattr(image, "n_frames", 1)
            if pages > 1:
                raise UserError(f"{path} holds {pages} pages (frames): upscale one page at a time, or save them as "
                                "a .npy volume (slices along one axis)")
            bands = len(image.getbands())
            check_memory(image.width * image.height * max(bands, 3) * 4, f"reading {path} ({image.width}x"
                         f"{image.height} pixels)")
            if image.mode in ("P", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode == "LA":
                image = image.convert("RGBA")
            mode = image.mode
            pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for a broken or unknown file
        raise UserError(f"cannot read {path} as a picture: {str(error).splitlines()[0][:200]}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if mode == "I;16" and pixels.dtype != np.uint16:
        pixels = pixels.astype(np.uint16)
    return Scan("picture", pixels, path, mode=mode)


def write_picture(pixels, path, atomic_write):
    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.dtype != np.uint8:
        raise UserError("JPEG holds 8-bit pixels only; write a 16-bit input as .png or .npy")
    if path.suffix.lower() in (".jpg", ".jpeg") and pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]  # JPEG has no alpha
    picture_format = Image.registered_extensions().get(path.suffix.lower())
    try:
        picture = Image.fromarray(pixels)  # uint8 -> L/RGB/RGBA, uint16 -> I;16, int32 -> I, float32 -> F
        atomic_write(path, lambda temporary: picture.save(temporary, format=picture_format))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot write {pixels.dtype} pixels to {path.name}: {error}; use .npy or .tif") from None
