"""The scans of a study, and where each one's output goes.

INPUT is a BIDS dataset (it holds `dataset_description.json`): the NIfTI images of `sub-*/[ses-*/]anat/`,
chosen by participant label and suffix, written as a BIDS derivatives dataset (the same path with a
`desc-thin` entity, a JSON sidecar beside each image). Or a folder: each NIfTI file and each folder of
DICOM files (one series; a folder of one DICOM file: that file, an enhanced or mosaic file) found
recursively is a scan, written under OUTPUT_DIR at the same relative path, the same name and kind. Or a
list file: one path a line (`#` comments), each a scan, written under OUTPUT_DIR by its name.
"""

import dataclasses
import json
from pathlib import Path
from typing import Optional

from mrisr.core.files import save_json
from mrisr.errors import UserError
from mrisr.scans.kinds import DICOM_SUFFIXES, NIFTI_SUFFIXES
from mrisr.version import __version__

DESCRIPTION_ENTITY = "desc-thin"
SKIPPED_FOLDERS = ("derivatives", "sourcedata", "code", ".git", ".mrisr")


@dataclasses.dataclass
class StudyScan:
    """One scan of a study: its input (a file or a series folder), its name in the study, its output."""

    path: Path
    name: str  # the input relative to the study's root, as the report and the lines say it
    output: Path
    sources: list  # what the output's sidecar names as its source (BIDS: a BIDS URI)
    subject: Optional[str] = None
    suffix: Optional[str] = None


def find_scans(input_path, output_dir, participants=None, suffixes=None):
    """(kind of study: "bids", "folder" or "list", its scans in name order). UserError when there are none."""
    input_path, output_dir = Path(input_path), Path(output_dir)
    if not input_path.exists():
        raise UserError(f"the study {input_path} does not exist")
    if (input_path / "dataset_description.json").is_file():
        kind, scans = "bids", _bids_scans(input_path, output_dir, participants, suffixes)
    else:
        if participants or suffixes:
            raise UserError("participant labels and suffixes are for a BIDS dataset (with dataset_description.json)")
        kind = "folder" if input_path.is_dir() else "list"
        scans = _folder_scans(input_path, output_dir) if kind == "folder" else _listed_scans(input_path, output_dir)
    if not scans:
        raise UserError(f"{input_path} holds no scan to upscale" + (" with these participant labels and suffixes"
                                                                   if participants or suffixes else ""))
    outputs = [scan.output for scan in scans]
    if len(set(outputs)) != len(outputs):
        twice = sorted({str(o) for o in outputs if outputs.count(o) > 1})
        raise UserError(f"two scans of {input_path} would be written to {twice[0]}: give them other names")
    return kind, sorted(scans, key=lambda scan: scan.name)


def _bids_scans(root, output_dir, participants, suffixes):
    participants = {label.removeprefix("sub-") for label in participants or []}
    scans = []
    for path in sorted(root.glob("sub-*/**/anat/*")):
        if not path.is_file() or not path.name.endswith(NIFTI_SUFFIXES) or _skipped(path.relative_to(root)):
            continue
        stem, suffix_part = _split_bids_name(path.name)
        subject = path.relative_to(root).parts[0].removeprefix("sub-")
        if participants and subject not in participants:
            continue
        if suffixes and suffix_part not in suffixes:
            continue
        relative = path.relative_to(root)
        extension = path.name[len(stem) + 1 + len(suffix_part):]
        name = f"{stem}_{DESCRIPTION_ENTITY}_{suffix_part}{extension}"
        scans.append(StudyScan(path, str(relative), output_dir / relative.parent / name, [f"bids:raw:{relative}"],
                               subject, suffix_part))
    if participants:
        missing = participants - {scan.subject for scan in scans}
        if missing:
            raise UserError(f"no scan of participant(s) {', '.join(sorted(missing))} in {root}"
                            + (f" with the suffixes {', '.join(suffixes)}" if suffixes else ""))
    return scans


def _split_bids_name(name):
    """('sub-01_ses-a_run-1', 'T1w') of 'sub-01_ses-a_run-1_T1w.nii.gz'."""
    base = name
    for extension in NIFTI_SUFFIXES[::-1]:
        if base.endswith(extension):
            base = base[:-len(extension)]
            break
    stem, _, suffix = base.rpartition("_")
    return stem, suffix


def _skipped(relative):
    return any(part in SKIPPED_FOLDERS or part.startswith(".") for part in relative.parts)


def _is_dicom_file(path):
    from mrisr.scans.dicom.datasets import looks_like_dicom

    return path.name.lower().endswith(DICOM_SUFFIXES) or looks_like_dicom(path)


def _folder_scans(root, output_dir):
    scans = []
    for folder in [root] + sorted(p for p in root.rglob("*") if p.is_dir()):
        relative_folder = folder.relative_to(root)
        if _skipped(relative_folder) or _inside(folder, output_dir):
            continue
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        dicoms = [p for p in files if _is_dicom_file(p)]
        for path in files:
            if path.name.endswith(NIFTI_SUFFIXES):
                scans.append(StudyScan(path, str(path.relative_to(root)), output_dir / path.relative_to(root),
                                       [str(path.relative_to(root))]))
        if len(dicoms) == 1:
            path = dicoms[0]
            scans.append(StudyScan(path, str(path.relative_to(root)), output_dir / path.relative_to(root),
                                   [str(path.relative_to(root))]))
        elif len(dicoms) > 1:
            name = str(relative_folder) if str(relative_folder) != "." else root.name
            scans.append(StudyScan(folder, name, output_dir / (relative_folder if name != root.name else root.name),
                                   [name]))
    return scans


def _inside(path, folder):
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _listed_scans(list_file, output_dir):
    scans = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        if not path.exists():
            raise UserError(f"{list_file}, line {number}: {line} does not exist")
        scans.append(StudyScan(path, line, output_dir / path.name, [str(path)]))
    return scans


def write_description(output_dir, input_path, command):
    """The derivatives dataset's dataset_description.json (BIDS studies)."""

    source = Path(input_path) / "dataset_description.json"
    try:
        name = json.loads(source.read_text()).get("Name", Path(input_path).name)
    except (OSError, ValueError):
        name = Path(input_path).name
    save_json(Path(output_dir) / "dataset_description.json", {
        "Name": f"{name}: thin slices (mrisr)", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "mrisr", "Version": __version__, "Description": command or "mrisr upscale_study"}],
        "SourceDatasets": [{"URL": Path(input_path).resolve().as_uri()}]})
