"""Loading a .keras model file with the project's layers, checked: one clear line for a bad file, and a
model with NaN or infinite weights refused."""

from pathlib import Path

from mrisr.core.model_files import weights_finite
from mrisr.errors import UserError


def load_model(path, compile=False):
    """Load a .keras model, or raise UserError with one clear line."""
    import zipfile

    import keras

    import mrisr.nets.models  # noqa: F401  (registers the project's custom layers for deserialisation)

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
