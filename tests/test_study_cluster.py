"""A study beyond one process: a real Dask scheduler and two workers on this machine, one of them killed in
the middle of a scan (the study completes, every output whole); and its report opened in a real headless
browser (Debian's Chromium), whose screenshot must show the pictures."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import nibabel
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.test_studies import thick_nifti

QUICK = ["--mixed-precision", "float32", "--no-self-ensemble", "--quiet"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def cluster():
    """(address, worker processes): `dask scheduler` and two `dask worker` processes of one thread each,
    without a nanny (a killed worker stays dead)."""
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("Dask distributed is an optional extra (pip install \".[study]\"; the test extra has it)")
    dask = str(ROOT / ".venv" / "bin" / "dask") if (ROOT / ".venv" / "bin" / "dask").exists() else shutil.which("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                   "--no-dashboard"], **quiet)]
    workers = [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                 "--name", f"worker-{k}"], **quiet) for k in range(2)]
    processes += workers
    from distributed import Client

    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for process in processes:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_study_on_a_dask_cluster_completes_when_a_worker_dies_in_the_middle_of_a_scan(tmp_path, cluster):
    from distributed import Client

    address, workers = cluster
    root = tmp_path / "scans"
    for seed in range(3):
        thick_nifti(root / f"scan{seed}.nii.gz", seed)
    out = tmp_path / "out"
    study = subprocess.Popen([sys.executable, str(ROOT / "upscale.py"), "study", str(root), str(out), "--scheduler",
                              address, "--steps", "250", "--minutes", "3", *QUICK],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    with Client(address, timeout="60s") as client:
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline and study.poll() is None:
            busy = [worker for worker, tasks in client.processing().items() if tasks]
            info = client.scheduler_info()["workers"]
            if busy:
                time.sleep(2)  # inside the scan: reading, learning
                name = info[busy[0]]["name"]
                killed = workers[int(str(name).rsplit("-", 1)[1])]
                killed.send_signal(signal.SIGKILL)
            time.sleep(0.5)
    stdout, stderr = study.communicate(timeout=600)
    assert killed is not None and killed.wait() == -signal.SIGKILL
    assert study.returncode == 0, stdout + stderr
    assert "3 of 3 scan(s) done, 0 failed" in stdout
    for seed in range(3):
        assert nibabel.load(out / f"scan{seed}.nii.gz").shape == (24, 24, 24)
        assert (out / f"scan{seed}.json").is_file()
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]  # nothing half-written
    # The same study in one local worker: the same geometry, and values within a run's noise.
    local = subprocess.run([sys.executable, str(ROOT / "upscale.py"), "study", str(root), str(tmp_path / "local"),
                            "--workers", "1", "--steps", "250", "--minutes", "3", *QUICK],
                           capture_output=True, text=True)
    assert local.returncode == 0, local.stdout + local.stderr
    for seed in range(3):
        on_dask = nibabel.load(out / f"scan{seed}.nii.gz")
        here = nibabel.load(tmp_path / "local" / f"scan{seed}.nii.gz")
        np.testing.assert_array_equal(on_dask.affine, here.affine)
        assert on_dask.get_data_dtype() == here.get_data_dtype()
        values, reference = np.asarray(on_dask.dataobj, float), np.asarray(here.dataobj, float)
        assert np.abs(values - reference).mean() < 0.01 * np.ptp(reference)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium (Debian's package chromium) is not installed")
def test_the_report_shows_its_pictures_in_a_real_browser(tmp_path):
    from PIL import Image

    from mrisr.studies.engine import run_study
    from tests.test_dcm2niix import through_plane_file

    root = tmp_path / "scans"
    for seed in range(2):
        thick_nifti(root / f"scan{seed}.nii.gz", seed)
    study = run_study(root, tmp_path / "out", workers=1, progress=False, say=lambda line: None,
                      network=through_plane_file(tmp_path, 2), precision="float32", self_ensemble=False)
    blank = tmp_path / "blank.html"  # the same page, its pictures emptied
    page = study.report.read_text()
    blank.write_text(page.replace("data:image/png;base64,", "data:image/png;base64,x"))

    def screenshot(html, png):
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1100,1600",
                        html.as_uri()], capture_output=True, timeout=120)
        return np.asarray(Image.open(png).convert("L"), np.float64)

    shown, empty = screenshot(study.report, tmp_path / "shown.png"), screenshot(blank, tmp_path / "empty.png")
    assert shown.shape == empty.shape == (1600, 1100)
    differs = np.abs(shown - empty) > 30
    assert differs.mean() > 0.1  # the pictures fill a good part of the page
    assert shown[differs].std() > 30  # and they are pictures: many shades, not one block
