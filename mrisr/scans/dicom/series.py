"""A folder holding one DICOM series of slices, read as one volume.

Every file is read (DICOM without the 128-byte preamble included) and every slice checked against the
first: series, orientation, pixel spacing, slice thickness, size, pixel type, image type, rescaling;
positions evenly spaced along the slice normal. A file that cannot be read is refused, never left
out (a slab would go missing without a word); only files that are plainly not images (a DICOMDIR, a
report, a text or picture file, hidden files) are left out, and said in a line."""

from pathlib import Path

import numpy as np
from pydicom.errors import InvalidDicomError

from mrisr.core.messages import inform
from mrisr.errors import UserError
from mrisr.scans.dicom.datasets import dcmread, first_line, is_image, number, numbers, pixels_of, sop_class
from mrisr.scans.dicom.derived import is_enhanced, value_range
from mrisr.scans.dicom.mosaic import mosaic_slices
from mrisr.scans.geometry import dicom_affine, dicom_normal, stack_order
from mrisr.scans.kinds import Scan

# What every slice of one series must share with the first (besides orientation, spacing, thickness).
SHARED = ("SeriesInstanceUID", "Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation",
          "SamplesPerPixel", "PhotometricInterpretation", "ImageType", "RescaleSlope", "RescaleIntercept")
# Files that are plainly not slices of a series: left out of a folder with a note.
NOT_IMAGES = (".txt", ".json", ".xml", ".md", ".csv", ".tsv", ".html", ".pdf", ".log", ".ini", ".png", ".jpg",
              ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".nii", ".gz", ".zip", ".npy", ".bvec", ".bval", ".sh")


def _read_folder(folder):
    """(path, dataset) of each DICOM image in `folder`, and the names of the files left out."""
    images, left_out = [], []
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            dataset = dcmread(path)
        except InvalidDicomError:
            if path.name.lower().endswith(NOT_IMAGES) or path.name.upper() == "DICOMDIR":
                left_out.append(path.name)
                continue
            raise UserError(f"cannot read {path} as DICOM: a corrupt or truncated file, or not DICOM (move it out "
                            "of the folder if it is not a slice of the series)") from None
        except Exception as error:  # pydicom raises many types for a broken file; also permissions
            raise UserError(f"cannot read {path} as DICOM: {first_line(error)}") from None
        if "PixelData" not in dataset:
            if is_image(dataset):
                raise UserError(f"{path}: a DICOM image without its pixel data (a truncated or corrupt file)")
            if sop_class(dataset) is None:
                raise UserError(f"cannot read {path} as DICOM: no SOP class, no pixels (a corrupt file)")
            left_out.append(path.name)  # a DICOMDIR, a report: not an image
            continue
        images.append((path, dataset))
    return images, left_out


def read_dicom_series(folder, say=inform):
    """The Scan of a folder holding one series (data (rows, columns, slices) in order along the normal)."""
    images, left_out = _read_folder(folder)
    if left_out:
        say(f"note: {len(left_out)} file(s) in {folder} are not DICOM images and were left out "
            f"({', '.join(left_out[:3])}{', ...' if len(left_out) > 3 else ''})")
    if len(images) < 2:
        raise UserError(f"{folder} holds {len(images)} DICOM image(s): a series of at least 2 slices is needed")
    first_path, first = images[0]
    planes = []
    for path, dataset in images:
        if int(dataset.get("NumberOfFrames", 1) or 1) > 1 or is_enhanced(dataset) or mosaic_slices(dataset):
            raise UserError(f"{path} is a multi-frame or mosaic file: give it alone, not in a folder of slices")
        plane = [numbers(dataset, keyword, count, str(path), positive=keyword == "PixelSpacing")
                 for keyword, count in (("ImageOrientationPatient", 6), ("ImagePositionPatient", 3),
                                        ("PixelSpacing", 2))]
        for keyword, value in zip(("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"), plane):
            if value is None:
                raise UserError(f"{path} has no {keyword}: the slices cannot be placed in space")
        planes.append(plane)
    orientation, _, spacing = planes[0]
    thickness = number(first, "SliceThickness", str(first_path))
    for (path, dataset), plane in zip(images[1:], planes[1:]):
        if not np.allclose(plane[0], orientation, atol=1e-4):
            raise UserError(f"{path} is oriented otherwise than {first_path.name} (ImageOrientationPatient "
                            f"{list(dataset.ImageOrientationPatient)}): one series of parallel slices is needed")
        if not np.allclose(plane[2], spacing, atol=1e-5):
            raise UserError(f"{path} has PixelSpacing {list(dataset.PixelSpacing)}, {first_path.name} "
                            f"{list(first.PixelSpacing)}: one series of equal slices is needed")
        other = number(dataset, "SliceThickness", str(path))
        if (other is None) != (thickness is None) or other is not None and abs(other - thickness) > 1e-3:
            raise UserError(f"{path} has SliceThickness {other}, {first_path.name} {thickness}: one series of "
                            "equal slices is needed (the slice profile comes from it)")
        for key in SHARED:
            if str(getattr(dataset, key, "")) != str(getattr(first, key, "")):
                raise UserError(f"{path} differs from {first_path.name} in {key} ({getattr(dataset, key, None)!r} "
                                f"against {getattr(first, key, None)!r}): one series of equal slices is needed")
    if int(getattr(first, "SamplesPerPixel", 1) or 1) != 1:
        raise UserError(f"{folder}: colour DICOM is not supported; only greyscale MRI")
    order, step = stack_order([plane[1] for plane in planes], dicom_normal(orientation), str(folder), "slices")
    images = [images[i] for i in order]
    data = np.stack([pixels_of(dataset, path) for path, dataset in images], axis=-1)
    affine = dicom_affine(orientation, planes[order[0]][1], spacing, step)
    slope = number(first, "RescaleSlope", str(first_path))
    scaling = None if slope is None else (slope, number(first, "RescaleIntercept", str(first_path)) or 0.0)
    return Scan("dicom-series", data, Path(folder), affine, thickness if thickness and thickness > 0 else None,
                [dataset for _, dataset in images], value_range=value_range(first), scaling=scaling)
