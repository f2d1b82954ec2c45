"""The last checkpoint of a training run: the variables of its models and optimizers as one .npz
(readable on every Keras backend) and a JSON state, replaced atomically."""

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from mrisr.core.files import load_json, remove_stale_temporaries, save_json, writing
from mrisr.core.messages import inform
from mrisr.core.model_files import keras_to_numpy
from mrisr.errors import Paused, UserError


def save_variables(path, objects):
    """Every variable of `objects` (name -> Keras model or optimizer) as one .npz, in each object's own
    variable order (the same for the same architecture on every Keras backend)."""
    import numpy as np

    arrays = {f"{name}/{index:05d}": keras_to_numpy(variable)
              for name, owner in objects.items() for index, variable in enumerate(owner.variables)}
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def load_variables(path, objects):
    """Assign the variables saved by save_variables to `objects` (built, optimizers built), checking
    that every one is there with its shape (UserError otherwise)."""
    import numpy as np

    try:
        saved = np.load(path)
        keys = set(saved.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"the checkpoint {path} cannot be read ({str(error).splitlines()[0][:100]}): a truncated or "
                        "corrupt file; start afresh with `overwrite`") from None
    with saved:
        for name, owner in objects.items():
            variables = owner.variables
            wanted = {f"{name}/{index:05d}" for index in range(len(variables))}
            present = {key for key in keys if key.startswith(name + "/")}
            if wanted != present:
                raise UserError(f"the checkpoint {path} holds {len(present)} variables for {name}, not "
                                f"{len(variables)}: it was made by another model")
            for index, variable in enumerate(variables):
                try:
                    value = saved[f"{name}/{index:05d}"]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                    raise UserError(f"the checkpoint {path} cannot be read ({str(error).splitlines()[0][:100]}): a "
                                    "truncated or corrupt file; start afresh with `overwrite`") from None
                if tuple(value.shape) != tuple(variable.shape):
                    raise UserError(f"the checkpoint {path} does not fit {name} (variable {variable.path}: "
                                    f"{value.shape} saved, {tuple(variable.shape)} expected)")
                variable.assign(value)




class CheckpointKeeper:
    """The last checkpoint of a run in one folder: the variables of models and optimizers (an .npz,
    readable on every Keras backend) plus a JSON state.

    Each write goes to a new sub-folder; `state.json` is then replaced atomically to
    point at it, and the previous sub-folder is removed, so an interruption at any
    moment leaves one complete checkpoint.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"
        self.count = 0

    def exists(self):
        return self.state_path.is_file()

    def write(self, objects, state):
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = load_json(self.state_path)["checkpoint"] if self.exists() else None
        self.count += 1
        name = Path(tempfile.mkdtemp(prefix=f"ckpt-{os.getpid()}-{self.count}-", dir=self.folder)).name
        try:
            with writing(self.folder / name / "variables.npz"):
                save_variables(self.folder / name / "variables.npz", objects)
            save_json(self.state_path, {**state, "checkpoint": name})
        except BaseException:  # a full disk, an interrupt: no half-written checkpoint is left behind
            shutil.rmtree(self.folder / name, ignore_errors=True)
            raise
        if previous and previous != name:
            shutil.rmtree(self.folder / previous, ignore_errors=True)

    def read(self, objects):
        """Restore `objects` (built, with their optimizers built) and return the saved state."""
        if not self.exists():
            raise UserError(f"no checkpoint to resume from in {self.folder}")
        state = load_json(self.state_path)
        load_variables(self.folder / state["checkpoint"] / "variables.npz", objects)
        return state

    def epochs_done(self):
        """How many epochs the checkpoint holds (0 when there is none or it is unreadable)."""
        try:
            return len(load_json(self.state_path)["history"]["epoch"])
        except (UserError, KeyError, TypeError):
            return 0

    def remove_partial(self):
        """Remove checkpoint sub-folders that state.json does not point at (a write cut short by a
        kill or an interrupt), and stale temporary files. Only the run holding the lock calls this."""
        if not self.folder.is_dir():
            return
        current = None
        if self.exists():
            with contextlib.suppress(UserError, KeyError, TypeError):
                current = load_json(self.state_path)["checkpoint"]
        for child in self.folder.iterdir():
            if child.is_dir() and child.name.startswith("ckpt-") and child.name != current:
                shutil.rmtree(child, ignore_errors=True)
        remove_stale_temporaries(self.state_path)

    @contextlib.contextmanager
    def kept_on_interrupt(self):
        """On Ctrl-C, say where the last checkpoint is and how to continue, then let the interrupt go on."""
        try:
            yield
        except KeyboardInterrupt as interrupt:
            self.remove_partial()
            if self.exists():
                how = "Paused" if isinstance(interrupt, Paused) else "\nInterrupted"
                inform(f"{how}: the last finished epoch is kept in {self.folder}; "
                      "continue with the same command and `resume`")
            raise

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)
