"""Saving and loading: atomic writes of models and JSON, and what a run records about itself."""

import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path

from mrisr.cli import UserError


def atomic_write(path, write):
    """Call `write(temporary_path)`, then rename onto `path`: a crash never leaves a broken file.

    The temporary file sits in the same folder and keeps the suffix (Keras checks it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; give them the usual mode
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


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


def save_model(model, path, include_optimizer=True):
    """Save a Keras model atomically; without the optimizer the file is a third of the size."""
    if not include_optimizer and getattr(model, "optimizer", None) is not None:
        bare = type(model).from_config(model.get_config())  # same layers, never compiled
        bare.set_weights(model.get_weights())
        model = bare
    atomic_write(path, lambda temporary: model.save(temporary))


def load_model(path, compile=False):
    """Load a .keras model, or raise UserError with one clear line."""
    import keras

    import mrisr.models  # noqa: F401  (registers the project's custom layers for deserialisation)

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {path} as a Keras model: {str(error).splitlines()[0][:200]}") from None


def library_versions():
    import keras
    import numpy
    import tensorflow

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


class CheckpointKeeper:
    """The last checkpoint of a run in one folder: TensorFlow objects plus a JSON state.

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
        import shutil

        import tensorflow as tf

        self.folder.mkdir(parents=True, exist_ok=True)
        previous = load_json(self.state_path)["checkpoint"] if self.exists() else None
        self.count += 1
        name = f"ckpt-{os.getpid()}-{self.count}"
        tf.train.Checkpoint(**objects).write(str(self.folder / name / "objects"))
        save_json(self.state_path, {**state, "checkpoint": name})
        if previous and previous != name:
            shutil.rmtree(self.folder / previous, ignore_errors=True)

    def read(self, objects):
        """Restore `objects` (built, with their optimizers built) and return the saved state."""
        import tensorflow as tf

        if not self.exists():
            raise UserError(f"no checkpoint to resume from in {self.folder}")
        state = load_json(self.state_path)
        tf.train.Checkpoint(**objects).read(str(self.folder / state["checkpoint"] / "objects")).assert_consumed()
        return state

    @contextlib.contextmanager
    def kept_on_interrupt(self):
        """On Ctrl-C, say where the last checkpoint is and how to continue, then let the interrupt go on."""
        try:
            yield
        except KeyboardInterrupt:
            if self.exists():
                print(f"\nInterrupted: the last finished epoch is kept in {self.folder}; "
                      "continue with the same command and --resume")
            raise

    def remove(self):
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
