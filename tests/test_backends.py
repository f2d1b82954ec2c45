"""Keras 3 backends: a .keras file saved under the backend running the tests loads under every other
installed backend (TensorFlow, JAX, PyTorch) and gives the same outputs, custom layers included."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from mrisr.core.model_files import save_model
from mrisr.nets import models

pytestmark = pytest.mark.backend

MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
OTHERS = [name for name, module in MODULES.items()
          if name != keras.backend.backend() and importlib.util.find_spec(module) is not None]

LOAD_AND_PREDICT = """
import json, sys
import numpy as np
import keras
from mrisr.nets.loading import load_model
assert keras.backend.backend() == sys.argv[1]
for name in json.loads(sys.argv[2]):
    model = load_model(f"{sys.argv[3]}/{name}.keras")
    inputs = np.load(f"{sys.argv[3]}/{name}_inputs.npy")
    np.save(f"{sys.argv[3]}/{name}_{sys.argv[1]}.npy", model.predict(inputs, verbose=0))
"""


def saved_models(folder):
    """A model of each kind of custom layer, saved with inputs and this backend's outputs."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    crops = rng.random((2, 8, 8, 4)).astype(np.float32)
    built = {
        "espcn": (models.build_cnn("espcn", 8, 16, 4), crops),  # BoneToGrey, CubicUpsample, DepthToSpace, GreyToBone
        "edsr_global": (models.build_cnn("edsr_global", 8, 16, 4), crops),  # GlobalAffine
        "paper_generator": (models.build_generator("paper", 6, 12, 4), crops[:, :6, :6]),
        "through_plane": (models.through_plane_network(3, np.full(3, 1 / 3, np.float32), dtype="float32"),
                          rng.random((2, 5, 9, 4)).astype(np.float32)),
    }
    outputs = {}
    for name, (model, inputs) in built.items():
        save_model(model, folder / f"{name}.keras")
        np.save(folder / f"{name}_inputs.npy", inputs)
        outputs[name] = keras.ops.convert_to_numpy(model.predict(inputs, verbose=0))
    return outputs


@pytest.mark.skipif(not OTHERS, reason="no other Keras backend is installed")
@pytest.mark.parametrize("backend", OTHERS)
def test_models_saved_here_load_and_agree_under_another_backend(tmp_path, backend):
    outputs = saved_models(tmp_path)
    environment = dict(os.environ, KERAS_BACKEND=backend)
    finished = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, backend, json.dumps(sorted(outputs)),
                               str(tmp_path)], env=environment, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    for name, expected in outputs.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_{backend}.npy"), expected, atol=2e-5, err_msg=name)
