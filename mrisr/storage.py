"""Saving and loading: atomic writes of models and JSON, and what a run records about itself."""

import contextlib
import glob
import json
import os
import platform
import tempfile
from pathlib import Path

from mrisr.cli import RunFailed, UserError, same_file


TEMPORARY_MARK = ".tmp-"


def full_suffix(path):
    """The suffix a reader looks at: `.nii.gz` for compressed NIfTI, else the last suffix."""
    path = Path(path)
    return "".join(path.suffixes[-2:]) if path.suffix.lower() == ".gz" else path.suffix


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def remove_stale_temporaries(path):
    """Remove the temporary files (or folders) that a killed writer of `path` left beside it:
    `.NAME.tmp-PID-*` whose process is gone. Returns how many were removed."""
    import shutil

    path = Path(path)
    removed = 0
    if not path.parent.is_dir():
        return 0
    for candidate in path.parent.glob(f".{glob.escape(path.name)}{TEMPORARY_MARK}*"):
        pid_text = candidate.name[len(path.name) + 1 + len(TEMPORARY_MARK):].split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    candidate.unlink()
            removed += 1
    return removed


def temporary_path(path, folder=False):
    """A new temporary file (or folder) beside `path`, named for it and this process, same suffix."""
    path = Path(path)
    prefix = f".{path.name}{TEMPORARY_MARK}{os.getpid()}-"
    if folder:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=full_suffix(path), dir=path.parent)
    os.close(handle)
    return Path(temporary)


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
        write(str(temporary))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; give them the usual mode
        os.replace(temporary, path)
    except BaseException:
        if temporary.exists():
            temporary.unlink()
        raise


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


def weights_finite(model):
    """Whether every weight of a Keras model is a finite number."""
    import numpy as np

    return all(np.isfinite(keras_to_numpy(variable)).all() for variable in model.weights)


def save_model(model, path, include_optimizer=True):
    """Save a Keras model atomically; without the optimizer the file is a third of the size.
    A model with a non-finite weight is never saved (RunFailed). Under a JAX distribution the file is
    written from a plain copy (on several machines only the first process writes, and a distributed
    model's weights cannot be made or read by one process alone)."""
    import keras
    import numpy as np

    values = [keras_to_numpy(variable) for variable in model.weights]
    if not all(np.isfinite(value).all() for value in values):
        raise RunFailed(f"refusing to save {path}: the model has non-finite weights (training diverged; "
                        "try a lower --lr)")
    distributed = keras.backend.backend() == "jax" and keras.distribution.distribution() is not None
    with unsynchronized_batch_norm(model), without_distribution():
        if distributed or (not include_optimizer and getattr(model, "optimizer", None) is not None):
            bare = type(model).from_config(model.get_config())  # same layers, never compiled
            bare.set_weights(values)
            model = bare
        atomic_write(path, lambda temporary: model.save(temporary))


@contextlib.contextmanager
def without_distribution():
    """No Keras distribution (JAX) for what is made inside: a process's own copy of a model."""
    import keras

    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        yield
        return
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


@contextlib.contextmanager
def unsynchronized_batch_norm(model):
    """Batch normalisations synchronised across devices for training (distribution.synchronize_batch_norm)
    saved as plain ones, which load on every Keras backend (only TensorFlow knows the synchronised kind)."""
    import keras

    synchronized = [layer for layer in model._flatten_layers()
                    if isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized]
    for layer in synchronized:
        layer.synchronized = False
    try:
        yield
    finally:
        for layer in synchronized:
            layer.synchronized = True


def load_model(path, compile=False):
    """Load a .keras model, or raise UserError with one clear line."""
    import keras

    import mrisr.models  # noqa: F401  (registers the project's custom layers for deserialisation)

    import zipfile

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise UserError(f"cannot load {path}: not a Keras model file (a .keras file is a zip archive; this one "
                        "is not: truncated or another kind of file)")
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {path} as a Keras model: {str(error).splitlines()[0][:200]}") from None
    # Checked on the weights, not only on outputs: TensorFlow's fused convolution + ReLU kernels turn
    # NaN into 0 in graph mode, so a diverged model can give finite, meaningless outputs.
    if not weights_finite(model):
        raise UserError(f"{path} has NaN or infinite weights (a diverged or corrupt model): refusing to use it")
    return model


def library_versions():
    """Python, Keras, its backend and NumPy versions (recorded with every run)."""
    import importlib

    import keras
    import numpy

    backend = keras.backend.backend()
    module = importlib.import_module({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend))
    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": backend,
        backend: getattr(module, "__version__", "unknown"),
        "numpy": numpy.__version__,
    }


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

    with np.load(path) as saved:
        keys = set(saved.files)
        for name, owner in objects.items():
            variables = owner.variables
            wanted = {f"{name}/{index:05d}" for index in range(len(variables))}
            present = {key for key in keys if key.startswith(name + "/")}
            if wanted != present:
                raise UserError(f"the checkpoint {path} holds {len(present)} variables for {name}, not "
                                f"{len(variables)}: it was made by another model")
            for index, variable in enumerate(variables):
                value = saved[f"{name}/{index:05d}"]
                if tuple(value.shape) != tuple(variable.shape):
                    raise UserError(f"the checkpoint {path} does not fit {name} (variable {variable.path}: "
                                    f"{value.shape} saved, {tuple(variable.shape)} expected)")
                variable.assign(value)


def keras_to_numpy(variable):
    """A variable's value as a NumPy array, on every backend and under a distribution strategy."""
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        return np.asarray(variable.value.numpy())  # a mirrored variable reads its (equal) copies' value
    value = variable.value
    if keras.backend.backend() == "jax" and not value.is_fully_addressable:
        value = value.addressable_data(0)  # replicated over several processes: this process's copy
    return keras.ops.convert_to_numpy(value)


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
        import shutil

        self.folder.mkdir(parents=True, exist_ok=True)
        previous = load_json(self.state_path)["checkpoint"] if self.exists() else None
        self.count += 1
        name = Path(tempfile.mkdtemp(prefix=f"ckpt-{os.getpid()}-{self.count}-", dir=self.folder)).name
        save_variables(self.folder / name / "variables.npz", objects)
        save_json(self.state_path, {**state, "checkpoint": name})
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
        import shutil

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
        except KeyboardInterrupt:
            self.remove_partial()
            if self.exists():
                print(f"\nInterrupted: the last finished epoch is kept in {self.folder}; "
                      "continue with the same command and --resume")
            raise

    def remove(self):
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


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
                                    "--models-dir") from None
                print(f"note: taking over the lock {self.path} left by process {owner or '?'}, which is gone")
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
