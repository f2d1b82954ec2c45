import keras
import numpy as np
import pytest

from mrisr.nets import layers
from mrisr.nets.imaging import bone_rgba_to_grey, grey_to_bone_rgba, resize_cubic

pytestmark = pytest.mark.backend  # also run on JAX and PyTorch by make test-backends


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_cubic_upsample_layer_is_opencvs_cubic_resize(scale):
    image = np.random.default_rng(scale).random((1, 7, 11, 1)).astype(np.float32)
    upscaled = keras.ops.convert_to_numpy(layers.CubicUpsample(scale)(image))[0, ..., 0]
    assert upscaled.shape == (7 * scale, 11 * scale)
    np.testing.assert_allclose(upscaled, resize_cubic(image[0, ..., 0], (7 * scale, 11 * scale)), atol=1e-5)


def test_colour_map_layers_invert_each_other_on_the_maps_entries():
    grey = (np.random.default_rng(0).integers(0, 256, size=(2, 5, 6)) + 0.5) / 256
    rgba = grey_to_bone_rgba(grey)
    as_grey = keras.ops.convert_to_numpy(layers.BoneToGrey()(rgba))[..., 0]
    np.testing.assert_allclose(as_grey, bone_rgba_to_grey(rgba), atol=1e-7)
    bone = layers.GreyToBone()(as_grey[..., None].astype(np.float32))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bone), rgba, atol=1e-6)
