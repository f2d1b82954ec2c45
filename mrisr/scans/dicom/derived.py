"""What makes a DICOM dataset a true derived image of new pixels: the pixels and their bits (values kept
inside BitsStored), the pixel-value statistics, ImageType (all its values kept, DERIVED in the first,
the counts an IOD asks for), new UIDs, the overlay planes and the icon image, which follow the pixels."""

import numpy as np
from pydicom.pixels import pack_bits
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrisr.errors import UserError

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
# The MR Pulse Sequence module and Bulk Motion Synchronization: present only when ImageType value 1 is
# ORIGINAL or MIXED in an enhanced MR image (dciodvfy's reading of PS3.3 C.8.13.4 and C.7.6.18.3).
ORIGINAL_ONLY = ("PulseSequenceName", "MRAcquisitionType", "EchoPulseSequence", "MultipleSpinEcho",
                 "MultiPlanarExcitation", "PhaseContrast", "VelocityEncodingAcquisitionSequence",
                 "TimeOfFlightContrast", "ArterialSpinLabelingContrast", "SteadyStatePulseSequence",
                 "EchoPlanarPulseSequence", "SaturationRecovery", "SpectrallySelectedSuppression",
                 "OversamplingPhase", "GeometryOfKSpaceTraversal", "RectilinearPhaseEncodeReordering",
                 "SegmentedKSpaceTraversal", "CoverageOfKSpace", "NumberOfKSpaceTrajectories",
                 "BulkMotionCompensationTechnique", "BulkMotionSignalSource")
STATISTICS = {"SmallestImagePixelValue": 0x00280106, "LargestImagePixelValue": 0x00280107,
              "SmallestPixelValueInSeries": 0x00280108, "LargestPixelValueInSeries": 0x00280109}


def is_enhanced(dataset):
    return "PerFrameFunctionalGroupsSequence" in dataset or "SharedFunctionalGroupsSequence" in dataset


def value_range(dataset):
    """(low, high): the stored values BitsStored and PixelRepresentation allow, None when they say nothing."""
    bits = dataset.get("BitsStored")
    if not bits:
        return None
    bits = int(bits)
    if int(dataset.get("PixelRepresentation", 0) or 0):
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def check_writable_type(dtype, where):
    """UserError before any work unless DICOM pixels of `dtype` can be written (8 or 16-bit integers)."""
    if np.dtype(dtype) not in (np.uint8, np.int8, np.uint16, np.int16):
        raise UserError(f"{where} holds {np.dtype(dtype)} pixels: this tool writes DICOM pixels of 8 or 16 bits; "
                        "write the output as .nii or .npy")


def set_pixels(dataset, frames):
    """New pixels, (rows, columns) or (frames, rows, columns), with pydicom's bookkeeping (Rows,
    Columns, Number of Frames, bits, an uncompressed transfer syntax); BitsStored kept (the values must
    already lie inside it: see value_range)."""
    frames = np.ascontiguousarray(frames)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2"))
    bits = min(int(getattr(dataset, "BitsStored", 8 * frames.dtype.itemsize)), 8 * frames.dtype.itemsize)
    dataset.set_pixel_data(frames, photometric, bits, generate_instance_uid=False)


def set_statistics(dataset, image, series):
    """The smallest and largest pixel values of this image and of its series, where the source gave them."""
    for name, tag in STATISTICS.items():
        if tag in dataset:
            values = image if "Image" in name else series
            value = int(values.min() if name.startswith("Smallest") else values.max())
            vr = "SS" if int(dataset.get("PixelRepresentation", 0) or 0) else "US"
            del dataset[tag]
            dataset.add_new(tag, vr, value)


def derived_image_type(values, enhanced):
    """ImageType of an image derived from one with `values`: DERIVED first, every other value kept;
    enhanced images 4 values (PRIMARY second, the IOD allows no other), classic images at least 3."""
    values = [str(v) for v in ([values] if isinstance(values, str) else list(values or []))]
    values = ["DERIVED"] + (values[1:] or ["PRIMARY" if enhanced else "SECONDARY"])
    if enhanced:
        values[1] = "PRIMARY"
        values = (values + ["NONE", "NONE"])[:4]
    elif len(values) < 3:
        values.append("OTHER")
    return values


def mark_derived(dataset, description, series_uid=None):
    """Make a dataset a new derived image: uncompressed explicit little endian, new SOP instance UID, a
    new (or the given) series, `description` (its part before any parenthesis) added to the series
    description and said whole in DerivationDescription, ImageType and every FrameType DERIVED. (Its
    PixelData must already be the new, uncompressed pixels.)"""
    enhanced = is_enhanced(dataset)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    previous = str(getattr(dataset, "SeriesDescription", "")).strip()
    dataset.SeriesDescription = (previous + " " + description.split(" (")[0]).strip()[:64]
    dataset.ImageType = derived_image_type(dataset.get("ImageType"), enhanced)
    if enhanced:
        for group in _functional_groups(dataset):
            for frame_type in group.get("MRImageFrameTypeSequence", []):
                if "FrameType" in frame_type:
                    frame_type.FrameType = derived_image_type(frame_type.FrameType, True)
        if str(dataset.get("SOPClassUID", "")) == ENHANCED_MR:
            for keyword in ORIGINAL_ONLY:
                for holder in [dataset] + [item for group in _functional_groups(dataset) for item in
                                           group.get("MRTimingAndRelatedParametersSequence", [])]:
                    if keyword in holder:
                        delattr(holder, keyword)
    else:
        previous = str(dataset.get("DerivationDescription", "")).strip()
        dataset.DerivationDescription = (f"{previous}; " if previous else "") + description


def _functional_groups(dataset):
    for name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        yield from dataset.get(name, [])


def follow_overlays(dataset, factors, say):
    """Overlay planes (60xx) drawn on the pixels: made as much finer as the pixels in-plane (each overlay
    bit becomes a block of them, the origin moved to match); an overlay in the pixels' unused bits, or
    one of several frames when the frames change, cannot follow and is removed (said in a line)."""
    groups = sorted({element.tag.group for element in dataset if 0x6000 <= element.tag.group <= 0x601E
                     and element.tag.group % 2 == 0})
    in_plane, across = factors[0] > 1 or factors[1] > 1, len(factors) > 2 and factors[2] > 1
    for group in groups:
        frames = int(dataset[group, 0x0015].value or 1) if (group, 0x0015) in dataset else 1
        embedded = (group, 0x3000) not in dataset
        if embedded or (frames > 1 and across):
            for tag in [element.tag for element in dataset if element.tag.group == group]:
                del dataset[tag]
            say(f"note: overlay plane {group:04X} removed from the output ("
                + ("it lives in the pixels' unused bits" if embedded else "its frames no longer match the output's")
                + ")")
            continue
        if not in_plane:
            continue
        bits = dataset.overlay_array(group)
        bits = bits if bits.ndim == 3 else bits[None]
        finer = np.repeat(np.repeat(bits, factors[0], axis=1), factors[1], axis=2).astype(np.uint8)
        origin = [int(v) for v in dataset[group, 0x0050].value]
        dataset[group, 0x0010].value, dataset[group, 0x0011].value = finer.shape[1], finer.shape[2]
        dataset[group, 0x0050].value = [(origin[0] - 1) * factors[0] + 1, (origin[1] - 1) * factors[1] + 1]
        dataset[group, 0x3000].value = pack_bits(finer.reshape(-1))


def regenerate_icon(dataset, pixels):
    """Replace an icon image with one of the new pixels (its size, 8-bit grey, uncompressed): an icon
    kept from the source may be compressed, which an uncompressed file cannot hold."""
    if "IconImageSequence" not in dataset or not len(dataset.IconImageSequence):
        return
    from skimage.transform import resize

    icon = dataset.IconImageSequence[0]
    rows, columns = int(icon.get("Rows", 64) or 64), int(icon.get("Columns", 64) or 64)
    picture = np.asarray(pixels, np.float64)
    picture = picture[..., picture.shape[-1] // 2] if picture.ndim == 3 else picture
    small = resize(picture, (rows, columns), order=1, anti_aliasing=True, preserve_range=True)
    low, high = float(small.min()), float(small.max())
    grey = np.round(255 * (small - low) / (high - low if high > low else 1.0)).astype(np.uint8)
    for keyword in list(icon.dir()):
        if "Palette" in keyword or "LUT" in keyword or keyword in ("PixelData", "LargestImagePixelValue",
                                                                  "SmallestImagePixelValue"):
            delattr(icon, keyword)
    icon.Rows, icon.Columns, icon.SamplesPerPixel = rows, columns, 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.add_new(0x7FE00010, "OB", grey.tobytes())
