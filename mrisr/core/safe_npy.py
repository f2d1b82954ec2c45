"""Read `.npy` files, object arrays included, without letting pickle run code.

`np.load(allow_pickle=True)` on a downloaded file can execute arbitrary code.
Object arrays (such as the Kaggle data set's per-slice images) are pickles, so
they are read here with an unpickler that admits only what an array of NumPy
arrays needs: the array reconstructor, `ndarray`, `dtype` and a bytes codec.
"""

import codecs
import pickle

import numpy as np

from mrisr.errors import UserError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside a small NumPy allow-list."""

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: only NumPy arrays are allowed"
            ) from None


def read_npy_header(file):
    """(shape, fortran_order, dtype) from an open .npy file, positioned after the header."""
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(file)
    return np.lib.format.read_array_header_2_0(file)


def load_npy(path):
    """Load a `.npy` file; object arrays go through the restricted unpickler.

    Raises UserError for anything that is not a plain array or an object array
    of NumPy arrays.
    """
    try:
        with open(path, "rb") as file:
            shape, fortran_order, dtype = read_npy_header(file)
            if not dtype.hasobject:
                file.seek(0)
                return np.load(file, allow_pickle=False)
            try:
                array = RestrictedUnpickler(file).load()
            except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
                raise UserError(f"{path}: not a safe array file ({error})") from None
    except UserError:
        raise
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read as a .npy file ({error})") from None
    if not isinstance(array, np.ndarray):
        raise UserError(f"{path}: holds a {type(array).__name__}, not an array")
    for item in array.flat:
        if not isinstance(item, np.ndarray) or item.dtype.hasobject:
            raise UserError(f"{path}: an element is a {type(item).__name__}, not a numeric array")
    return array
