"""Studies (mrisr/studies): the scans of a BIDS dataset, a folder or a list; a run on local workers with
records beside every output, a bad scan that stops nothing, a run again that does only what is missing,
learning once per protocol; the report. (The Dask cluster and the browser: test_study_cluster.py.)"""

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest

from mrisr.errors import UserError
from mrisr.studies.inputs import find_scans
from tests.conftest import run_script, write_series
from tests.test_through_plane import blob_volume

QUICK = ["--steps", "20", "--minutes", "1", "--mixed-precision", "float32", "--no-self-ensemble", "--quiet"]


def thick_nifti(path, seed, axis=2, factor=2):
    from mrisr.scans.through_plane import SliceProfile, degrade

    path.parent.mkdir(parents=True, exist_ok=True)
    zooms = [1.0, 1.0, 1.0]
    zooms[axis] = float(factor)
    thick = degrade(blob_volume(24, seed=seed), axis, SliceProfile(factor))
    nibabel.save(nibabel.Nifti1Image(np.rint(thick * 1000).astype(np.int16), np.diag(zooms + [1.0])), path)
    return path


def bids_dataset(root):
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy", "BIDSVersion": "1.10.0"}))
    for seed, subject in enumerate(("01", "02", "03")):
        thick_nifti(root / f"sub-{subject}" / "ses-a" / "anat" / f"sub-{subject}_ses-a_run-1_T1w.nii.gz", seed)
    thick_nifti(root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_FLAIR.nii.gz", 7)
    thick_nifti(root / "derivatives" / "x" / "sub-01" / "anat" / "sub-01_T1w.nii.gz", 8)  # not raw data
    return root


def test_a_bids_dataset_gives_its_anatomical_images_and_derivative_names(tmp_path):
    root = bids_dataset(tmp_path / "bids")
    kind, scans = find_scans(root, tmp_path / "out")
    assert kind == "bids" and len(scans) == 4
    flair = [scan for scan in scans if scan.suffix == "FLAIR"][0]
    assert flair.output == tmp_path / "out" / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_desc-thin_FLAIR.nii.gz"
    assert flair.sources == ["bids:raw:sub-02/ses-a/anat/sub-02_ses-a_FLAIR.nii.gz"]
    _, scans = find_scans(root, tmp_path / "out", participants=["sub-01", "03"], suffixes=["T1w"])
    assert [scan.subject for scan in scans] == ["01", "03"]
    with pytest.raises(UserError, match="no scan of participant\\(s\\) 09"):
        find_scans(root, tmp_path / "out", participants=["09"])


def test_a_folder_gives_each_nifti_file_and_each_dicom_series(tmp_path):
    root = tmp_path / "scans"
    thick_nifti(root / "a" / "one.nii.gz", 0)
    write_series(root / "b" / "series", np.zeros((8, 8, 5), np.uint16))
    (root / "b" / "notes.txt").write_text("not a scan")
    kind, scans = find_scans(root, tmp_path / "out")
    assert kind == "folder" and [scan.name for scan in scans] == ["a/one.nii.gz", "b/series"]
    assert scans[1].output == tmp_path / "out" / "b" / "series"
    listed = tmp_path / "scans.txt"
    listed.write_text("# two scans\nscans/a/one.nii.gz\nscans/b/series  # a series\n")
    kind, scans = find_scans(listed, tmp_path / "out")
    assert kind == "list" and [scan.output.name for scan in scans] == ["one.nii.gz", "series"]
    listed.write_text("scans/a/one.nii.gz\nscans/a/one.nii.gz\n")
    with pytest.raises(UserError, match="two scans .* would be written to"):
        find_scans(listed, tmp_path / "out")


@pytest.mark.slow
def test_a_study_on_local_workers_records_every_output_and_runs_again_only_what_is_missing(tmp_path, capsys):
    from mrisr.scans.records import input_checksum, read_record

    root = bids_dataset(tmp_path / "bids")
    (root / "sub-03" / "ses-a" / "anat" / "sub-03_ses-a_T2w.nii.gz").write_bytes(b"not NIfTI")  # a bad scan
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 8), np.int16), np.eye(4)),
                 root / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_PDw.nii.gz")  # already isotropic
    out = tmp_path / "out"
    code, stdout, stderr = run_script("upscale", ["study", str(root), str(out), "participant", "--workers", "2",
                                                  *QUICK], capsys)  # the BIDS App convention's third argument
    assert code == 1 and "4 of 6 scan(s) done, 1 failed" in stdout, stdout + stderr
    assert "failed: sub-03/ses-a/anat/sub-03_ses-a_T2w.nii.gz: cannot read" in stdout
    assert "skipped: sub-01/ses-a/anat/sub-01_ses-a_PDw.nii.gz: already nearly isotropic" in stdout
    assert "`" not in stdout  # parameters shown as flags, the bar's lines too
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "mrisr"
    output = out / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_run-1_desc-thin_T1w.nii.gz"
    source = root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_run-1_T1w.nii.gz"
    assert nibabel.load(output).shape == (24, 24, 24)
    record = read_record(output)
    assert record["input"]["sha256"] == input_checksum(source) and record["learning"]["steps"] == 20
    sidecar = json.loads(output.with_name("sub-02_ses-a_run-1_desc-thin_T1w.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-02/ses-a/anat/sub-02_ses-a_run-1_T1w.nii.gz"]
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4 and "cannot read" in report
    finished = {path: read_record(path)["finished"] for path in out.rglob("*desc-thin_*.nii.gz")}
    code, stdout, _ = run_script("upscale", ["study", str(root), str(out), "--workers", "2", *QUICK], capsys)
    assert code == 1 and "4 done before, 2 to do" in stdout
    assert {path: read_record(path)["finished"] for path in finished} == finished  # untouched
    code, stdout, _ = run_script("upscale", ["study", str(root), str(out), "--suffixes", "FLAIR", "--workers", "1",
                                             *QUICK[:-1], "--steps", "30", "--quiet"], capsys)
    assert code == 0 and "0 done before, 1 to do" in stdout  # other settings: done again


@pytest.mark.slow
def test_scans_of_one_protocol_learn_one_network_then_each_is_fine_tuned(tmp_path, capsys):
    from mrisr.scans.records import read_record

    root = tmp_path / "scans"
    for seed in range(3):
        thick_nifti(root / f"scan{seed}.nii.gz", seed)
    thick_nifti(root / "other.nii.gz", 5, axis=1, factor=3)  # another protocol, alone
    out = tmp_path / "out"
    code, stdout, stderr = run_script("upscale", ["study", str(root), str(out), "--learn", "protocol",
                                                  "--fine-tune-steps", "10", "--workers", "2", *QUICK], capsys)
    assert code == 0, stdout + stderr
    assert "3 scans; one network learns from 3 of them, then each scan is fine-tuned from it for 10 steps" in stdout
    records = {path.name: read_record(path) for path in out.glob("*.nii.gz")}
    for name in ("scan0.nii.gz", "scan1.nii.gz", "scan2.nii.gz"):
        learning = records[name]["learning"]
        assert learning["start"].endswith(".weights.h5") and learning["start"] != "through_plane_x2.weights.h5"
        assert learning["steps"] in (10, 20)  # 10 fine-tuning, or 20 on its own where that did not beat the spline
        assert records[name]["settings"]["learn"] == "protocol"
    assert records["other.nii.gz"]["learning"]["start"] == "through_plane_x3.weights.h5"


@pytest.mark.slow
def test_a_study_killed_half_way_leaves_nothing_partial_and_does_the_rest_when_run_again(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    root = tmp_path / "scans"
    for seed in range(4):
        thick_nifti(root / f"scan{seed}.nii.gz", seed)
    out = tmp_path / "out"
    study = subprocess.Popen([sys.executable, str(ROOT / "upscale.py"), "study", str(root), str(out), "--workers",
                              "1", "--steps", "200", *QUICK[2:]], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("scan*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(study.pid, signal.SIGKILL)  # the study and its workers, at once
    study.wait()
    finished = sorted(path.name for path in out.glob("scan*.json"))
    assert 1 <= len(finished) < 4
    code, stdout, _ = run_script("upscale", ["study", str(root), str(out), "--workers", "1", "--steps", "200",
                                             *QUICK[2:]], capsys)
    assert code == 0 and f"{len(finished)} done before, {4 - len(finished)} to do" in stdout
    assert sorted(path.name for path in out.glob("scan*.nii.gz")) == [f"scan{k}.nii.gz" for k in range(4)]
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]


def worker_processes(parent):
    """The pids of a study's worker processes (spawned children running multiprocessing's worker)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent) and b"multiprocessing-fork" in command:
            found.append(int(status.parent.name))
    return found


def running(pid):
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_the_workers_stop_when_their_study_is_stopped(tmp_path, signal_name):
    """Before, a worker whose study was stopped went on learning its scan (minutes of CPU for no one)."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    thick_nifti(tmp_path / "scans" / "scan0.nii.gz", 0)
    study = subprocess.Popen([sys.executable, str(ROOT / "upscale.py"), "study", str(tmp_path / "scans"),
                              str(tmp_path / "out"), "--workers", "1", "--steps", "1000000", "--minutes", "5",
                              "--mixed-precision", "float32", "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (workers := worker_processes(study.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert workers, "the study started no worker"
    time.sleep(15)  # the worker is inside the scan: reading, learning
    study.send_signal(getattr(signal, signal_name))  # the study alone, not its workers
    study.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(running(pid) for pid in workers)
