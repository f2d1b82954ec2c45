"""The registry of formats: every kind answers for itself, file names ask for the kind their suffix
owns, and each kind a name can ask for writes what it reads back."""

import numpy as np
import pytest

from mrisr.scans.formats import FORMATS, kind_of
from mrisr.scans.kinds import KIND_NAMES
from mrisr.scans.scan import read_scan, write_scan
from tests.conftest import write_nifti


def test_every_kind_has_a_format_and_writes_only_registered_kinds():
    assert set(FORMATS) == set(KIND_NAMES)
    for fmt in FORMATS.values():
        assert fmt.kind in fmt.writable_as and set(fmt.writable_as) <= set(FORMATS)
    readable = {kind for kind, fmt in FORMATS.items() if fmt.read is not None}
    assert readable == {"nifti", "npy", "picture", "dicom", "dicom-series"}  # the other DICOM kinds: read as dicom


@pytest.mark.parametrize("name, kind", [("a.nii", "nifti"), ("A.NII.GZ", "nifti"), ("a.npy", "npy"), ("a.dcm", "dicom"),
                                        ("a.DICOM", "dicom"), ("a.tiff", "picture"), ("a.jpeg", "picture"),
                                        ("a.nii.bak", None), ("series", None)])
def test_a_file_name_asks_for_the_kind_its_suffix_owns(name, kind):
    assert kind_of(name) == kind


@pytest.mark.parametrize("name", ["in.nii.gz", "in.npy", "in.png"])
def test_each_kind_reads_back_what_it_wrote(tmp_path, name):
    data = np.random.default_rng(0).integers(0, 255, (6, 5)).astype(np.uint8)
    source = tmp_path / name
    if name.endswith(".nii.gz"):
        write_nifti(source, data[..., None].astype(np.int16), zooms=(0.5, 0.5, 3.0))
    elif name.endswith(".npy"):
        np.save(source, data)
    else:
        from PIL import Image

        Image.fromarray(data).save(source)
    scan = read_scan(source)
    finer = np.repeat(np.repeat(scan.data, 2, axis=0), 2, axis=1)
    out = write_scan(scan, finer, tmp_path / name.replace("in.", "out."), (2, 2), "upscaled x2", say=lambda line: None)
    again = read_scan(out)
    assert again.kind == scan.kind and again.data.dtype == scan.data.dtype
    np.testing.assert_array_equal(again.data, finer)
    if scan.affine is not None:  # the new voxels tile the old: half the size in-plane
        np.testing.assert_allclose(np.abs(np.diag(again.affine))[:3], [0.25, 0.25, 3.0])
