"""Readers of MRI slices with tumour masks: Kaggle `.npy`, figshare `.mat`, and the demo source.

Each reader returns a `SliceSource`: a count and an iterator of `Slice` records,
so the crop code treats every source alike.
"""

import dataclasses
import importlib.util
import os
import re
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from mrisr.core.messages import inform
from mrisr.core.safe_npy import load_npy
from mrisr.errors import UserError

KAGGLE_HELP = (
    "download the Kaggle data set 'awsaf49/brain-tumor' and unpack it so that "
    "brain_tumor_dataset/images.npy, masks.npy and labels.npy exist"
)
FIGSHARE_HELP = (
    "download figshare article 1512427 (brainTumorDataPublic_*.zip) and unzip "
    "every archive into one folder of 1.mat ... 3064.mat files"
)
DEMO_TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
DEMO_GREY_MATTER = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
DEMO_WHITE_MATTER = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"


@dataclasses.dataclass
class Slice:
    """One MRI slice with its tumour mask and what is known about it."""

    index: int
    image: np.ndarray
    mask: np.ndarray
    label: Optional[int]
    patient_id: Optional[str]
    source: str


@dataclasses.dataclass
class SliceSource:
    """A named collection of slices: how many there are and how to iterate them."""

    name: str
    count: int
    iterate: Callable[[], Iterator[Slice]]
    is_demo: bool = False


# --- Kaggle "Brain Tumor .npy" ---------------------------------------------


def has_kaggle_files(data_dir):
    return all((Path(data_dir) / name).is_file() for name in ("images.npy", "masks.npy"))


def read_kaggle(data_dir, limit=None):
    """Read `images.npy`, `masks.npy` and (if present) `labels.npy` from `data_dir`."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"data folder {data_dir} does not exist: {KAGGLE_HELP}")
    missing = [name for name in ("images.npy", "masks.npy") if not (data_dir / name).is_file()]
    if missing:
        raise UserError(f"{data_dir} lacks {', '.join(missing)}: {KAGGLE_HELP}")
    images = load_npy(data_dir / "images.npy")
    masks = load_npy(data_dir / "masks.npy")
    labels = None
    if (data_dir / "labels.npy").is_file():
        labels = load_npy(data_dir / "labels.npy").reshape(-1)
    else:
        inform(f"warning: {data_dir / 'labels.npy'} not found: the crops will be unlabelled")
    if len(images) != len(masks) or (labels is not None and len(labels) != len(images)):
        lengths = f"images {len(images)}, masks {len(masks)}"
        if labels is not None:
            lengths += f", labels {len(labels)}"
        raise UserError(f"{data_dir}: the arrays differ in length ({lengths})")
    count = len(images) if limit is None else min(limit, len(images))

    def iterate():
        for index in range(count):
            image, mask = np.asarray(images[index]), np.asarray(masks[index])
            if image.ndim != 2 or image.shape != mask.shape:
                raise UserError(
                    f"{data_dir}: slice {index} has image shape {image.shape} and mask shape "
                    f"{mask.shape}; expected two 2-D arrays of one shape"
                )
            label = None if labels is None else int(labels[index])
            yield Slice(index, image, mask, label, None, "kaggle")

    return SliceSource("kaggle", count, iterate)


# --- figshare 1512427 (MATLAB v7.3 = HDF5) ---------------------------------


def figshare_files(data_dir):
    """The `N.mat` files below `data_dir`, sorted by their number N."""
    numbered = []
    for path in Path(data_dir).rglob("*.mat"):
        if re.fullmatch(r"\d+", path.stem):
            numbered.append((int(path.stem), path))
    return [path for _, path in sorted(numbered)]


def _matlab_string(dataset):
    codes = np.asarray(dataset).reshape(-1)
    return "".join(chr(int(code)) for code in codes)


def read_figshare_file(path):
    """Read one figshare `.mat` file: image, mask, label and patient id (MATLAB order transposed)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            if "cjdata" not in file:
                raise UserError(f"{path}: no 'cjdata' struct (is this a figshare 1512427 file?)")
            data = file["cjdata"]
            missing = [key for key in ("image", "label", "tumorMask") if key not in data]
            if missing:
                raise UserError(f"{path}: 'cjdata' lacks {', '.join(missing)}")
            image = np.asarray(data["image"]).T
            mask = np.asarray(data["tumorMask"]).T.astype(bool)
            label = int(np.asarray(data["label"]).reshape(-1)[0])
            patient_id = _matlab_string(data["PID"]) if "PID" in data else None
    except OSError as error:
        raise UserError(f"{path}: cannot read as a MATLAB v7.3 (HDF5) file ({error})") from None
    return image, mask, label, patient_id


def read_figshare(data_dir, limit=None):
    """Read a folder of figshare `N.mat` files; slice index = N - 1."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"data folder {data_dir} does not exist: {FIGSHARE_HELP}")
    files = figshare_files(data_dir)
    if not files:
        raise UserError(f"{data_dir} holds no N.mat files: {FIGSHARE_HELP}")
    if limit is not None:
        files = files[:limit]

    def iterate():
        for path in files:
            image, mask, label, patient_id = read_figshare_file(path)
            if image.shape != mask.shape:
                raise UserError(f"{path}: image {image.shape} and mask {mask.shape} differ in shape")
            yield Slice(int(path.stem) - 1, image, mask, label, patient_id, "figshare")

    return SliceSource("figshare", len(files), iterate)


# --- demo: the MNI152 template that ships inside the nilearn wheel ---------


def demo_data_path(name=DEMO_TEMPLATE):
    """Where the nilearn package keeps a template file (found without importing nilearn)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the demo source needs the 'nilearn' package: pip install -r requirements.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        raise UserError(f"the demo template {path} is missing from the installed nilearn package")
    return path


def _load_volume(name):
    import nibabel

    return np.asarray(nibabel.load(str(demo_data_path(name))).dataobj, dtype=np.float32)


def _ellipse_mask(shape, centre, radii, angle):
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    dy, dx = rows - centre[0], columns - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / radii[1]
    v = (-dx * sin + dy * cos) / radii[0]
    return u**2 + v**2 <= 1.0


def read_demo(limit=None, step=3, seed=0, slices_per_patient=8):
    """Real T1 slices of the MNI152 template in all three directions, with synthetic tumour masks.

    This is demo data, not patient data: one healthy template brain, sliced
    every `step` voxels along each axis where at least 15% of the slice is
    brain; each slice gets an elliptical "tumour" mask placed inside the brain,
    and a pseudo patient id per `slices_per_patient` neighbouring slices with
    a label (1, 2 or 3) per pseudo patient.
    """
    template = _load_volume(DEMO_TEMPLATE)
    brain = (_load_volume(DEMO_GREY_MATTER) + _load_volume(DEMO_WHITE_MATTER)) > 0.5
    rng = np.random.default_rng(seed)
    planned = []
    for axis, axis_name in enumerate(("sagittal", "coronal", "axial")):
        for position in range(0, template.shape[axis], step):
            brain_slice = np.moveaxis(brain, axis, 0)[position]
            if brain_slice.mean() >= 0.15:
                planned.append((axis, axis_name, position))
    if limit is not None:
        planned = planned[:limit]

    def iterate():
        for index, (axis, axis_name, position) in enumerate(planned):
            # Rotate so the head stands upright, as radiological slices are shown.
            image = np.rot90(np.moveaxis(template, axis, 0)[position])
            brain_slice = np.rot90(np.moveaxis(brain, axis, 0)[position])
            rows, columns = np.nonzero(brain_slice)
            pick = rng.integers(len(rows))
            radii = rng.uniform(4, 14, size=2)
            mask = _ellipse_mask(image.shape, (rows[pick], columns[pick]), radii, rng.uniform(0, np.pi))
            mask &= brain_slice
            group = position // (step * slices_per_patient)
            patient = f"demo-{axis_name}-{group:02d}"
            label = (axis + group) % 3 + 1  # one label per pseudo patient, as with real patients
            yield Slice(index, np.ascontiguousarray(image), mask, label, patient, "demo")

    return SliceSource("demo", len(planned), iterate, is_demo=True)


# --- choosing a source -------------------------------------------------------


def open_source(source="auto", data_dir=None, limit=None):
    """Open the requested source; `auto` falls back to the demo when no real data is found."""
    default_dir = data_dir is None
    data_dir = Path(data_dir if data_dir is not None else "brain_tumor_dataset")
    if source == "kaggle":
        return read_kaggle(data_dir, limit)
    if source == "figshare":
        return read_figshare(data_dir, limit)
    if source == "demo":
        return read_demo(limit)
    if source != "auto":
        raise UserError(f"unknown source {source!r}: choose auto, kaggle, figshare or demo")
    if data_dir.is_dir() and has_kaggle_files(data_dir):
        return read_kaggle(data_dir, limit)
    if data_dir.is_dir() and figshare_files(data_dir):
        return read_figshare(data_dir, limit)
    if not default_dir:
        raise UserError(
            f"no brain tumour data found in {data_dir}: expected images.npy and masks.npy "
            f"(Kaggle: {KAGGLE_HELP}) or N.mat files (figshare: {FIGSHARE_HELP})"
        )
    inform(
        f"No real data in {os.fspath(data_dir)}/ (Kaggle images.npy/masks.npy or figshare N.mat): "
        "using the built-in DEMO source, the MNI152 T1 template with synthetic tumour masks. "
        "This is demo data, not patient data."
    )
    return read_demo(limit)
