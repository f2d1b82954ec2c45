"""Vendors' private copies of the geometry, the slice numbering and the slice count, made to follow the
pixels (or removed where they cannot stay true). What dcm2niix reads from each vendor decided the list:

- Philips: (2005,140F), a per-frame copy of a classic MR header (positions, pixel spacing, thickness,
  instance and slice numbers: the writer places it as it places a classic dataset); (2001,100A) the
  slice number; (2001,1018) the number of slices; (2001,105F) the stack, with its (2001,102D) slice count.
- Siemens: the CSA image header (0029,1010) copies the slice position (SlicePosition_PCS, also in
  (0019,1015)): moved in-plane; across slices it numbers and times the acquired slices, which a thin
  slice is not, so it is removed there, as are the acquisition times of a mosaic's slices (0019,1029).
- GE: (0021,104F) the locations in the acquisition. Standard: ImagesInAcquisition (0020,1002).
"""

import numpy as np

from mrisr.scans.dicom import siemens_csa

PHILIPS = "Philips Imaging DD 001"
PHILIPS_MR = "Philips MR Imaging DD 005"
SIEMENS_CSA = "SIEMENS CSA HEADER"
SIEMENS_MR = "SIEMENS MR HEADER"
GE_RELATIONSHIP = "GEMS_RELA_01"


def private(dataset, group, creator, offset):
    """The private element (group, creator, offset) of a dataset, None where it has none."""
    for element in dataset.group_dataset(group) if group % 2 else []:
        if element.tag.element < 0x0100 and element.tag.element >= 0x0010 and \
                str(element.value).strip().upper() == creator.upper():
            tag = (group, (element.tag.element << 8) | offset)
            return dataset.get(tag)
    return None


def philips_mirror(frame_item):
    """The Philips per-frame copy of a classic header inside a per-frame functional group item, or None."""
    element = private(frame_item, 0x2005, PHILIPS_MR, 0x0F)
    return element.value[0] if element is not None and element.VR == "SQ" and len(element.value) else None


def renumber(dataset, number):
    """A slice's (or Philips frame copy's) number in its stack: InstanceNumber and Philips's slice number."""
    if "InstanceNumber" in dataset:
        dataset.InstanceNumber = number
    element = private(dataset, 0x2001, PHILIPS, 0x0A)
    if element is not None:
        element.value = str(number) if element.VR == "IS" else number


def multiply_counts(dataset, factor):
    """Slice counts that grow `factor` times when each slice becomes `factor` thin ones."""
    if "ImagesInAcquisition" in dataset and str(dataset.ImagesInAcquisition).strip():
        dataset.ImagesInAcquisition = int(dataset.ImagesInAcquisition) * factor
    for holder, group, creator, offset in [(dataset, 0x2001, PHILIPS, 0x18), (dataset, 0x0021, GE_RELATIONSHIP, 0x4F)] \
            + [(stack, 0x2001, PHILIPS, 0x2D) for stack in _sequence(private(dataset, 0x2001, PHILIPS, 0x5F))]:
        element = private(holder, group, creator, offset)
        if element is not None and element.value not in (None, ""):
            count = int(element.value) * factor
            element.value = str(count) if isinstance(element.value, str) else count


def _sequence(element):
    return list(element.value) if element is not None and element.VR == "SQ" else []


def move_slice_position(dataset, old_position, new_position):
    """Siemens's copies of a slice's position (SlicePosition_PCS in the CSA image header and in
    (0019,1015)), where they equal `old_position` (None: no position to match), moved to `new_position`."""
    if old_position is None:
        return
    old_position = np.asarray(old_position, dtype=float)
    copy = private(dataset, 0x0019, SIEMENS_MR, 0x15)
    if copy is not None and _equals(copy.value, old_position):
        copy.value = [float(v) for v in new_position]
    header = private(dataset, 0x0029, SIEMENS_CSA, 0x10)
    if header is not None and isinstance(header.value, bytes):
        current = siemens_csa.item_numbers(header.value, "SlicePosition_PCS")
        if len(current) == 3 and _equals(current, old_position):
            rewritten = siemens_csa.rewrite(header.value, {"SlicePosition_PCS": list(new_position)})
            if rewritten is None:
                del dataset[header.tag]
            else:
                header.value = rewritten


def forget_acquired_slices(dataset):
    """Remove what numbers and times the acquired slices (a thin slice is none of them): the Siemens
    CSA image header and a mosaic's slice times."""
    for group, creator, offset in ((0x0029, SIEMENS_CSA, 0x10), (0x0019, SIEMENS_MR, 0x29)):
        element = private(dataset, group, creator, offset)
        if element is not None:
            del dataset[element.tag]


def _equals(values, position):
    try:
        values = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        return False
    return values.shape == (3,) and np.allclose(values, position, atol=1e-3)
