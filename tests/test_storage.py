"""Files are written whole or not at all; runs lock their model; what killed runs left is cleaned."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mrisr.core.files import atomic_write, check_output_path, remove_stale_temporaries, temporary_path
from mrisr.core.locks import RunLock
from mrisr.errors import UserError


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_failing_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "scan.nii.gz"
    target.write_bytes(b"previous")

    def fails_half_way(temporary):
        assert temporary.endswith(".nii.gz")  # nibabel chooses the format by the full suffix
        Path(temporary).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", temporary)

    with pytest.raises(OSError):
        atomic_write(target, fails_half_way)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


def test_a_killed_writer_leaves_the_previous_file_and_the_next_write_removes_its_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"previous")
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from mrisr.core.files import atomic_write
        def slow(temporary):
            Path(temporary).write_bytes(b"x" * 1000)
            print("writing", flush=True)
            time.sleep(60)
        atomic_write({str(target)!r}, slow)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert target.read_bytes() == b"previous"
    left = [p for p in tmp_path.iterdir() if p.name != "model.keras"]
    assert len(left) == 1 and left[0].name.startswith(f".model.keras.tmp-{process.pid}-")
    atomic_write(target, lambda temporary: Path(temporary).write_bytes(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"] and target.read_bytes() == b"new"


def test_sigterm_during_a_write_removes_the_temporary(tmp_path):
    target = tmp_path / "out.npy"
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from mrisr.commands.cli import script_main
        from mrisr.core.files import atomic_write
        def slow(temporary):
            Path(temporary).write_bytes(b"x")
            print("writing", flush=True)
            time.sleep(60)
        sys.exit(script_main(lambda argv: atomic_write({str(target)!r}, slow))())
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_live_process_are_kept(tmp_path):
    target = tmp_path / "a.json"
    (tmp_path / f".a.json.tmp-{os.getppid()}-x.json").write_text("someone else's write in progress")
    (tmp_path / f".a.json.tmp-{dead_pid()}-y.json").write_text("left by a killed run")
    assert remove_stale_temporaries(target) == 1
    assert [p.name for p in tmp_path.iterdir()] == [f".a.json.tmp-{os.getppid()}-x.json"]


def test_output_checks_before_any_work(tmp_path):
    source = tmp_path / "scan.dcm"
    source.write_bytes(b"scan")
    os.symlink(source, tmp_path / "link.dcm")
    for same in (source, tmp_path / "link.dcm", tmp_path / "sub" / ".." / "scan.dcm"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(UserError, match="is the input"):
            check_output_path(same, inputs=[source])
    with pytest.raises(UserError, match="is a folder"):
        check_output_path(tmp_path / "sub", inputs=[source])
    with pytest.raises(UserError, match="not a folder"):
        check_output_path(tmp_path / "scan.dcm" / "out.dcm")
    check_output_path(tmp_path / "new" / "deeper" / "out.dcm", inputs=[source])
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.dcm", "scan.dcm", "sub"]


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "CNN_MSE_model.lock").write_text(f"{holder.pid}\n")
        with pytest.raises(UserError, match=f"another run \\(process {holder.pid}\\)"):
            RunLock(tmp_path / "CNN_MSE_model.lock").acquire()
        assert (tmp_path / "CNN_MSE_model.lock").read_text().strip() == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_and_released(tmp_path, capsys):
    lock_path = tmp_path / "CNN_MSE_model.lock"
    pid = dead_pid()
    lock_path.write_text(f"{pid}\n")
    stale = tmp_path / f".CNN_MSE_model.keras.tmp-{pid}-abc.keras"
    stale.write_bytes(b"1.2 GB, once")
    with RunLock(lock_path, [tmp_path / "CNN_MSE_model.keras"]):
        assert lock_path.read_text().strip() == str(os.getpid())
        assert f"left by process {pid}, which is gone" in capsys.readouterr().out
        assert not stale.exists()
    assert not lock_path.exists()


def test_a_library_that_wraps_a_full_disk_error_still_gives_the_files_name_and_no_traceback(tmp_path):
    """pydicom re-raises a write's OSError with its tag and a whole traceback in the message; the command
    prints the file and the reason only, and nothing is left."""
    import pydicom

    from mrisr.commands.cli import script_main
    from mrisr.errors import describe_os_error

    def wrapped(temporary):
        with pydicom.tag.tag_in_exception(pydicom.tag.Tag(0x0029, 0x1020)):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as error:
        atomic_write(tmp_path / "out.dcm", wrapped)
    assert describe_os_error(error.value) == \
        f"{tmp_path / 'out.dcm'}: no space left on the device (nothing was replaced)"
    assert script_main(lambda argv: atomic_write(tmp_path / "out.dcm", wrapped))() == 2
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_cut_short_by_a_full_disk_leaves_the_last_whole_one(tmp_path, monkeypatch):
    import keras

    from mrisr.core import checkpoints

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keeper = checkpoints.CheckpointKeeper(tmp_path / "checkpoint")
    keeper.write({"model": model}, {"epoch": 1})
    first = sorted(p.name for p in keeper.folder.iterdir())

    def half_then_full(path, objects):
        Path(path).write_bytes(b"half an npz")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_variables", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        keeper.write({"model": model}, {"epoch": 2})
    assert sorted(p.name for p in keeper.folder.iterdir()) == first  # no half-written checkpoint beside it
    assert keeper.read({"model": model}) == {"epoch": 1, "checkpoint": first[0]}


def test_a_long_output_name_gets_a_temporary_name_that_fits(tmp_path):
    """A valid name of 240 bytes: its temporary (the name plus a mark, the process and a suffix) would pass
    255 bytes, so a long name's temporary carries its start and a hash instead; stale ones are still found."""
    target = tmp_path / ("scan_" + "é" * 110 + "x.nii.gz")
    assert len(target.name.encode()) > 200
    atomic_write(target, lambda temporary: Path(temporary).write_bytes(b"data"))
    assert target.read_bytes() == b"data" and sorted(tmp_path.iterdir()) == [target]
    live = temporary_path(target)
    live.rename(str(live).replace(f".tmp-{os.getpid()}-", f".tmp-{dead_pid()}-"))  # as a killed run leaves it
    assert remove_stale_temporaries(target) == 1 and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_killed_writer_not_yet_reaped_counts_as_gone(tmp_path):
    """A writer killed but not yet reaped (a zombie) is dead: its temporary file is stale."""
    import subprocess
    import time

    from mrisr.core.files import pid_alive, remove_stale_temporaries_under

    running = subprocess.Popen(["sleep", "30"])
    finished = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        state = Path(f"/proc/{finished.pid}/stat")
        while time.monotonic() < deadline and state.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.05)  # `true` has exited and, not waited for, is a zombie
        assert pid_alive(running.pid) and not pid_alive(finished.pid)
        (tmp_path / f".out.png.tmp-{finished.pid}-abc.png").write_bytes(b"partial")
        (tmp_path / f".out2.png.tmp-{running.pid}-abc.png").write_bytes(b"being written")
        assert remove_stale_temporaries_under(tmp_path) == 1
        assert [path.name for path in tmp_path.iterdir()] == [f".out2.png.tmp-{running.pid}-abc.png"]
    finally:
        running.kill()
        running.wait()
        finished.wait()
