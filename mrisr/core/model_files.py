"""Saving Keras models and reading their variables: never a model with a non-finite weight, written
atomically, a plain copy of a model trained on several devices; the library versions a run records.
(Loading a model file needs the project's layers: `mrisr.nets.loading.load_model`.)"""

import contextlib
import platform

from mrisr.core.files import atomic_write
from mrisr.errors import RunFailed


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
                        "try a lower `learning_rate`)")
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
