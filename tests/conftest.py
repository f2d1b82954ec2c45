"""Shared test helpers: small data sets in the real formats, made on the fly."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from mrisr.core.messages import show_messages

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
show_messages()  # the library's lines on standard output, as under the commands (tests read them with capsys)

SHARED_CROPS = ROOT.parent / "shared" / "data" / "brain-tumor-crops"


def make_slices(count, size=64, seed=0):
    """Random int16 slices with one rectangular tumour each; returns images, masks, boxes."""
    rng = np.random.default_rng(seed)
    images, masks, boxes = [], [], []
    for _ in range(count):
        image = rng.integers(0, 3000, size=(size, size)).astype(np.int16)
        mask = np.zeros((size, size), dtype=bool)
        top, left = rng.integers(2, size // 2, size=2)
        height, width = rng.integers(3, size // 3, size=2)
        mask[top : top + height, left : left + width] = True
        images.append(image)
        masks.append(mask)
        boxes.append((int(top), int(left), int(top + height - 1), int(left + width - 1)))
    return images, masks, boxes


def object_array(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


def write_kaggle(folder, images, masks, labels):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", object_array(images), allow_pickle=True)
    np.save(folder / "masks.npy", object_array(masks), allow_pickle=True)
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int64))
    return folder


def write_figshare_mat(path, image, mask, label, patient_id):
    """A MATLAB v7.3-style file: HDF5 with a 'cjdata' group, arrays stored transposed."""
    import h5py

    with h5py.File(path, "w") as file:
        group = file.create_group("cjdata")
        group["image"] = np.asarray(image).T
        group["tumorMask"] = np.asarray(mask, dtype=np.uint8).T
        group["label"] = np.array([[float(label)]])
        group["PID"] = np.array([[ord(c)] for c in patient_id], dtype=np.uint16)
        group["tumorBorder"] = np.zeros((1, 4))


@pytest.fixture
def kaggle_dir(tmp_path):
    images, masks, _ = make_slices(9)
    return write_kaggle(tmp_path / "brain_tumor_dataset", images, masks, [1, 2, 3] * 3)


# The top-level scripts (the paper's appendix) are thin wrappers around these command modules.
COMMANDS = {"extract_crops": "mrisr.commands.extract_crops", "balance_data": "mrisr.commands.balance_data",
            "CNN": "mrisr.commands.cnn", "GAN": "mrisr.commands.gan",
            "CNN_plot_losses": "mrisr.commands.cnn_plot_losses",
            "plot_visual_predictions": "mrisr.commands.plot_visual_predictions", "upscale": "mrisr.commands.upscale"}


def run_script(script_name, argv, capsys):
    """Run a script's main() in-process (the command module behind a top-level script, or a
    benchmark module); return (exit code, stdout, stderr)."""
    import importlib

    module = importlib.import_module(COMMANDS.get(script_name, script_name))
    try:
        code = module.main(argv)
    except SystemExit as stop:  # argparse refuses a bad option itself: its usage and one error line, status 2
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def make_crop_folder(folder, count=30, sizes=(6, 12), seed=0):
    """A labelled crop folder made by the real extraction code, with tiny crops for fast training."""
    from mrisr.paper.extraction import extract_crops
    from mrisr.paper.sources import read_kaggle

    images, masks, _ = make_slices(count, seed=seed)
    labels = [1, 2, 3] * (count // 3) + [1] * (count % 3)
    source = read_kaggle(write_kaggle(Path(folder) / "source", images, masks, labels))
    extract_crops(source, folder, sizes=sizes, progress=False)
    return Path(folder)


@pytest.fixture
def tiny_crops(tmp_path):
    return make_crop_folder(tmp_path / "crops")


# --- scans: DICOM and NIfTI built in the tests ----------------------------------------------------

# An oblique orientation: rows along x, columns tilted 0.3 rad towards z (LPS direction cosines).
OBLIQUE = (1.0, 0.0, 0.0, 0.0, float(np.cos(0.3)), float(np.sin(0.3)))
# Two more: a double obliquity, and sagittal slices (normal along -x).
DOUBLE_OBLIQUE = tuple(float(v) for v in np.concatenate([
    np.array([np.cos(0.2), np.sin(0.2) * np.cos(0.5), np.sin(0.2) * np.sin(0.5)]),
    np.cross([0.2, -0.1, 0.97], [np.cos(0.2), np.sin(0.2) * np.cos(0.5), np.sin(0.2) * np.sin(0.5)])
    / np.linalg.norm(np.cross([0.2, -0.1, 0.97], [np.cos(0.2), np.sin(0.2) * np.cos(0.5),
                                                  np.sin(0.2) * np.sin(0.5)]))]))
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def new_dicom_dataset(sop_class):
    """An empty DICOM dataset of `sop_class` with its file meta (explicit VR little endian) and a new SOP UID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    return dataset


def dicom_dataset(pixels, spacing=(0.8, 0.7), orientation=None, position=None, thickness=None, series=None,
                  bits_stored=12):
    """A classic MR image dataset of `pixels` (rows, columns), uint16 or int16, with the geometry given."""
    from pydicom.uid import MRImageStorage, generate_uid

    dataset = new_dicom_dataset(MRImageStorage)
    dataset.Modality, dataset.PatientName, dataset.SeriesDescription = "MR", "Test^Phantom", "T1 axial"
    dataset.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    dataset.SeriesInstanceUID = series or generate_uid()
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    signed = pixels.dtype == np.int16
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = int(signed)
    dataset.PixelSpacing = [float(v) for v in spacing]
    if orientation is not None:
        dataset.ImageOrientationPatient = [float(v) for v in orientation]
        dataset.ImagePositionPatient = [float(v) for v in position]
    if thickness is not None:
        dataset.SliceThickness = float(thickness)
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    dataset.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    return dataset


def write_dicom(path, pixels, spacing=(0.8, 0.7), **geometry):
    """One DICOM image file (see dicom_dataset)."""
    dicom_dataset(pixels, spacing, **geometry).save_as(path, enforce_file_format=True)
    return path


def write_series(folder, volume, spacing=(0.8, 0.7), step=3.0, thickness=2.5, orientation=OBLIQUE, seed=0,
                 origin=(10.0, -5.0, 7.0)):
    """A DICOM series of a volume (rows, columns, slices), slice k at origin + k * step along the normal,
    its files named at random (so their order says nothing). Returns the normal (LPS)."""
    import pydicom

    folder = Path(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    orientation = np.asarray(orientation, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    series = pydicom.uid.generate_uid()
    for k in rng.permutation(volume.shape[2]):
        write_dicom(folder / f"file_{rng.integers(1_000_000):07d}.dcm", volume[:, :, k], spacing,
                    orientation=orientation, position=np.asarray(origin) + normal * step * k, thickness=thickness,
                    series=series)
    return normal


def write_multiframe(path, volume, order, step=3.0, orientation=SAGITTAL, spacing=(0.9, 0.8), thickness=3.0,
                     origin=(20.0, -30.0, 40.0)):
    """An enhanced (multi-frame) MR file of a volume (rows, columns, frames) whose frames are stored in
    `order`, with per-frame positions and stack numbers, shared orientation and pixel measures."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage, generate_uid

    dataset = new_dicom_dataset(EnhancedMRImageStorage)
    dataset.Modality, dataset.SeriesInstanceUID = "MR", generate_uid()
    dataset.StudyInstanceUID, dataset.PatientName = "1.2.826.0.1.3680043.8.498.2", "Test^Phantom"
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    dataset.Rows, dataset.Columns = volume.shape[:2]
    dataset.NumberOfFrames = volume.shape[2]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 0
    plane, measures, shared = Dataset(), Dataset(), Dataset()
    plane.ImageOrientationPatient = [float(v) for v in orientation]
    measures.PixelSpacing, measures.SliceThickness = [float(v) for v in spacing], float(thickness)
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([plane]), Sequence([measures])
    dataset.SharedFunctionalGroupsSequence = Sequence([shared])
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    dimension = Dataset()
    dimension.DimensionIndexPointer = 0x00209057  # InStackPositionNumber
    dimension.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    dataset.DimensionIndexSequence = Sequence([dimension])
    items = []
    for k in order:
        position, content, item = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [float(v) for v in np.asarray(origin) + normal * step * k]
        content.InStackPositionNumber, content.DimensionIndexValues = k + 1, [k + 1]
        item.PlanePositionSequence, item.FrameContentSequence = Sequence([position]), Sequence([content])
        items.append(item)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(items)
    dataset.PixelData = np.ascontiguousarray(np.moveaxis(volume[:, :, order], -1, 0)).astype(np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return normal


def write_nifti(path, data, zooms=None, affine=None):
    """A NIfTI file of `data` with `affine` (default: diagonal `zooms`)."""
    import nibabel

    affine = np.diag(list(zooms) + [1.0]) if affine is None else affine
    image = nibabel.Nifti1Image(data, affine)
    if zooms is not None:
        image.header.set_zooms(zooms)
    nibabel.save(image, path)
    return Path(path)


def interrupt_after(calls):
    """A stand-in for a function that raises KeyboardInterrupt (Ctrl-C) on its call number `calls`, before
    doing it: `monkeypatch.setattr(module, "name", interrupt_after(5)(module.name))`."""
    def wrap(function):
        count = {"calls": 0}

        def wrapper(*arguments, **options):
            count["calls"] += 1
            if count["calls"] == calls:
                raise KeyboardInterrupt
            return function(*arguments, **options)

        return wrapper

    return wrap


def interrupt_after_epochs(method, epochs):
    """A stand-in for a training run's per-epoch method (CNNRun.save_checkpoint, GANRun.end_of_epoch):
    it does its work, then raises KeyboardInterrupt once the run's history holds `epochs` epochs."""
    def wrapper(self, *arguments, **options):
        method(self, *arguments, **options)
        if len(self.history["epoch"]) >= epochs:
            raise KeyboardInterrupt

    return wrapper


# --- real scanners' files and the independent readers that check what the tools write -------------------

DCM2NIIX = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
needs_dcm2niix = pytest.mark.skipif(not Path(DCM2NIIX).exists(),
                                    reason="dcm2niix is a test dependency (pip install .[test])")


def vendor_file(name):
    """A real scanner's file fetched by `python -m tests.vendor_data` (make test); skips the test without it."""
    from tests import vendor_data

    path = vendor_data.fetched(name)
    if path is None:
        pytest.skip(f"{name} is fetched by `python -m tests.vendor_data` (make test), which could not run here")
    return path


def nibabel_file(name):
    """A real scanner's file of nibabel's test data (installed with nibabel), gunzipped where it is .gz."""
    from tests import vendor_data

    folder = "nibabel/nicom/tests/data" if name.endswith((".dcm", ".dcm.gz")) else "nibabel/tests/data"
    return vendor_data.installed(folder, name)


def dcm2niix_images(source, folder):
    """dcm2niix's conversion of a DICOM file or series folder: ([(file name, nibabel image)], the warning
    and error lines it printed)."""
    import nibabel

    source, folder = Path(source), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if source.is_file():  # dcm2niix reads folders
        alone = Path(tempfile.mkdtemp(dir=folder))
        shutil.copy(source, alone / source.name)
        source = alone
    out = Path(tempfile.mkdtemp(dir=folder))
    result = subprocess.run([DCM2NIIX, "-z", "n", "-b", "n", "-f", "%f_%s", "-o", str(out), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "warning" in line.lower()
             or "error" in line.lower()]
    return [(path.name, nibabel.load(path)) for path in sorted(out.glob("*.nii"))], lines


def dciodvfy_errors(path):
    """The errors dicom3tools' validator (dciodvfy, Debian's dicom3tools) finds in a DICOM file (the first
    file of a folder), numbers blanked; skips the test where dciodvfy is not installed."""
    program = shutil.which("dciodvfy")
    if program is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed")
    path = Path(path)
    path = sorted(path.iterdir())[0] if path.is_dir() else path
    result = subprocess.run([program, str(path)], capture_output=True, text=True)
    return {re.sub(r"-?[0-9]+", "#", line) for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("Error")}


def assert_valid_derived_dicom(path):
    """The checks of a derived image's attributes that hold whether or not dciodvfy is installed (pydicom
    reads each file of `path`): ImageType with DERIVED first and the values its IOD asks for, no MR
    Pulse Sequence attribute in a derived enhanced MR image, the pixel data the size its attributes say,
    values inside BitsStored and the pixel statistics true, overlays and icon the size of what they draw."""
    import pydicom

    from mrisr.scans.dicom.derived import ENHANCED_MR, ORIGINAL_ONLY

    path = Path(path)
    for file in sorted(path.iterdir()) if path.is_dir() else [path]:
        dataset = pydicom.dcmread(file)
        image_type = list(dataset.ImageType)
        assert image_type[0] == "DERIVED", image_type
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        if str(dataset.SOPClassUID) == ENHANCED_MR:
            assert len(image_type) == 4 and image_type[1] == "PRIMARY", image_type
            assert not [keyword for keyword in ORIGINAL_ONLY if keyword in dataset]
            assert len(dataset.PerFrameFunctionalGroupsSequence) == frames
        else:
            assert len(image_type) >= 3, image_type
        assert len(dataset.PixelData) == dataset.Rows * dataset.Columns * frames * dataset.BitsAllocated // 8
        assert int(dataset.HighBit) == int(dataset.BitsStored) - 1
        pixels = dataset.pixel_array
        assert pixels.max() < 2 ** int(dataset.BitsStored)
        for keyword, value in (("SmallestImagePixelValue", pixels.min()), ("LargestImagePixelValue", pixels.max())):
            if keyword in dataset:
                assert int(dataset.get(keyword)) == int(value), keyword
        for group in {element.tag.group for element in dataset if 0x6000 <= element.tag.group <= 0x601E}:
            assert (int(dataset[group, 0x0010].value), int(dataset[group, 0x0011].value)) == \
                (dataset.Rows, dataset.Columns)
        for icon in dataset.get("IconImageSequence", []):
            assert len(icon.PixelData) == icon.Rows * icon.Columns * icon.BitsAllocated // 8
