"""Files written whole or not at all: atomic writes, JSON, temporaries named after their process, and
the checks on an output path before any work."""

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from mrisr.errors import UserError

TEMPORARY_MARK = ".tmp-"


def full_suffix(path):
    """The suffix a reader looks at: `.nii.gz` for compressed NIfTI, `.weights.h5` for Keras weights,
    else the last suffix."""
    path = Path(path)
    if path.suffix.lower() == ".gz" or path.name.lower().endswith(".weights.h5"):
        return "".join(path.suffixes[-2:])
    return path.suffix


def pid_alive(pid):
    """Whether process `pid` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): as os.kill says


def temporary_stem(path):
    """The part of a temporary's name that names its target: the target's name, or for a long one (a
    temporary name must fit in 255 bytes too) its first 60 bytes and a hash of the whole."""
    name = Path(path).name
    encoded = name.encode()
    if len(encoded) <= 120:
        return name
    return encoded[:60].decode(errors="ignore") + "~" + hashlib.sha256(encoded).hexdigest()[:16]


def remove_stale_temporaries(path):
    """Remove the temporary files (or folders) that a killed writer of `path` left beside it:
    `.NAME.tmp-PID-*` whose process is gone. Returns how many were removed."""
    path = Path(path)
    removed = 0
    if not path.parent.is_dir():
        return 0
    stem = temporary_stem(path)
    for candidate in path.parent.glob(f".{glob.escape(stem)}{TEMPORARY_MARK}*"):
        removed += _remove_if_stale(candidate)
    return removed


def remove_stale_temporaries_under(folder):
    """Remove, anywhere under `folder`, the temporary files and folders of writers that were killed (their
    process is gone). Returns how many were removed."""
    candidates = sorted(Path(folder).rglob(f".*{TEMPORARY_MARK}*")) if Path(folder).is_dir() else []
    return sum(_remove_if_stale(candidate) for candidate in candidates if candidate.exists())


def _remove_if_stale(candidate):
    """Remove a temporary file or folder (`.NAME.tmp-PID-...`) whose writer's process is gone: 1, else 0."""
    pid_text = candidate.name.rsplit(TEMPORARY_MARK, 1)[1].split("-", 1)[0]
    if not pid_text.isdigit() or pid_alive(int(pid_text)):
        return 0
    if candidate.is_dir() and not candidate.is_symlink():
        shutil.rmtree(candidate, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            candidate.unlink()
    return 1


def temporary_path(path, folder=False):
    """A new temporary file (or folder) beside `path`, named for it and this process, same suffix."""
    path = Path(path)
    prefix = f".{temporary_stem(path)}{TEMPORARY_MARK}{os.getpid()}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=full_suffix(path), dir=path.parent)
    os.close(handle)
    return Path(temporary)


@contextlib.contextmanager
def writing(path):
    """Any OSError raised while writing `path` becomes one naming it, with the errno and words of its first
    cause (a library may wrap the error in one of its own whose message holds a traceback, as pydicom does)."""
    try:
        yield
    except OSError as error:
        cause = error
        while isinstance(cause.__cause__, OSError):
            cause = cause.__cause__
        if cause.errno is None:
            raise
        raise OSError(cause.errno, cause.strerror or os.strerror(cause.errno), str(path)) from None


def atomic_write(path, write):
    """Call `write(temporary_path)`, then rename onto `path`: a crash, a kill or a full disk never
    leaves a broken or half-written file; the previous file stays as it was until the rename.

    The temporary file sits in the same folder, keeps the suffix (Keras and nibabel check it) and is
    named after the target and this process, so what a killed run left is removed at the next write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    remove_stale_temporaries(path)
    temporary = temporary_path(path)
    try:
        with writing(path):
            write(str(temporary))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; give them the usual mode
        os.replace(temporary, path)
    except BaseException:
        if temporary.exists():
            temporary.unlink()
        raise


def same_file(first, second):
    """Whether two paths name the same file (through links, `..` or another spelling)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def check_output_path(path, inputs=()):
    """Before any work: raise UserError unless `path` can be written as a new file and is none of
    `inputs` (compared through links and other spellings of the same file)."""
    path = Path(path)
    for source in inputs:
        if path.exists() and same_file(path, source) or os.path.realpath(path) == os.path.realpath(source):
            raise UserError(f"the output {path} is the input {source}: refusing to overwrite it; "
                            "give another output name")
    if path.is_dir():
        raise UserError(f"the output {path} is a folder; give a file name")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write {path}: {existing} is not a folder")
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot write {path}: no permission to create folders in {existing}")
        return
    try:
        probe = temporary_path(path)
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def save_json(path, data):
    def write(temporary):
        with open(temporary, "w") as file:
            json.dump(data, file, indent=1, default=float)
            file.write("\n")

    atomic_write(path, write)


def load_json(path):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
