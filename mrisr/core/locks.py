"""A lock on one model name for the duration of a training run."""

import contextlib
import os
from pathlib import Path

from mrisr.core.files import pid_alive, remove_stale_temporaries
from mrisr.core.messages import inform
from mrisr.errors import UserError


class RunLock:
    """A lock on one model name in a models folder for the duration of a run: `NAME.lock` holds the
    process id. A second run of the same model is refused; a lock left by a dead process is taken
    over with a message, and the stale temporary files of `paths` are removed then."""

    def __init__(self, path, paths=()):
        self.path, self.paths = Path(path), [Path(p) for p in paths]
        self.held = False

    def _create(self):
        handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(handle, "w") as file:
            file.write(f"{os.getpid()}\n")

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                self._create()
                break
            except FileExistsError:
                try:
                    owner = int(self.path.read_text().strip() or "0")
                except (OSError, ValueError):
                    owner = 0
                if owner and owner != os.getpid() and pid_alive(owner):
                    raise UserError(f"{self.path.name[:-len('.lock')]} in {self.path.parent} is being trained by "
                                    f"another run (process {owner}); wait for it to finish or use another "
                                    "`models_dir`") from None
                inform(f"note: taking over the lock {self.path} left by process {owner or '?'}, which is gone")
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        else:
            raise UserError(f"cannot take the lock {self.path}: another run keeps taking it")
        self.held = True
        for path in self.paths:
            remove_stale_temporaries(path)
        return self

    def release(self):
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
