import keras
import numpy as np
import pytest

from mrisr.nets import models
from mrisr.nets.architectures import ARCHITECTURES, GENERATORS
from mrisr.nets.models import build_cnn, paper_cnn

pytestmark = pytest.mark.backend  # also run on JAX and PyTorch by make test-backends


def test_paper_cnn_has_the_papers_parameter_count_and_shapes():
    model = paper_cnn()
    assert model.count_params() == 200_387_120
    assert model.input_shape == (None, 25, 25, 4) and model.output_shape == (None, 50, 50, 4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D"] * 4 + ["Flatten", "Dense", "Reshape"]
    assert [layer.kernel_size for layer in model.layers[:4]] == [(10, 10), (5, 5), (5, 5), (3, 3)]
    assert [layer.filters for layer in model.layers[:4]] == [128, 64, 64, 32]
    assert model.layers[5].units == 10_000 and model.layers[5].activation.__name__ == "sigmoid"


def test_build_cnn_other_sizes():
    model = build_cnn("paper", 6, 12, 4)
    assert model.output_shape == (None, 12, 12, 4)


@pytest.mark.parametrize("arch", ARCHITECTURES[1:])  # all but the paper's
@pytest.mark.parametrize("sizes", [(25, 50), (25, 100), (7, 21)])
def test_fully_convolutional_networks_upscale_any_size(arch, sizes):
    low, high = sizes
    model = models.build_cnn(arch, low, high, 4)
    scale = high // low
    for shape in ((low, low), (9, 13)):  # the crops' size and an odd one
        inputs = np.random.default_rng(0).random((2,) + shape + (4,)).astype(np.float32)
        output = keras.ops.convert_to_numpy(model(inputs))
        assert output.shape == (2, shape[0] * scale, shape[1] * scale, 4)
        np.testing.assert_allclose(output[..., 3], 1.0)  # alpha stays opaque
    assert models.grey_network(model).output_shape == (None, None, None, 1)


def test_fully_convolutional_networks_refuse_a_non_integer_scale():
    with pytest.raises(ValueError, match="integer"):
        models.build_cnn("edsr", 13, 50, 4)


def test_models_with_custom_layers_save_and_load(tmp_path):
    from mrisr.nets.loading import load_model

    model = models.build_cnn("edsr_global", 5, 10, 4)
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    inputs = np.random.default_rng(1).random((1, 8, 8, 4)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), keras.ops.convert_to_numpy(model(inputs)),
                               atol=1e-6)


@pytest.mark.parametrize("name", GENERATORS)
def test_every_generator_name_builds_a_25_to_50_generator(name):
    generator = models.build_generator(name, 25, 50, 4)
    assert tuple(generator(np.zeros((1, 25, 25, 4), np.float32)).shape) == (1, 50, 50, 4)
