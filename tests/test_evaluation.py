import keras
import numpy as np

from mrisr.nets import layers, models
from mrisr.nets.imaging import grey_to_bone_rgba
from mrisr.paper.evaluation import predict


def test_self_ensemble_turns_each_prediction_back():
    crops = keras.Input((None, None, 4))
    cubic = keras.Model(crops, layers.GreyToBone()(layers.CubicUpsample(2)(layers.BoneToGrey()(crops))))
    inputs = grey_to_bone_rgba(np.random.default_rng(0).random((3, 9, 9)))
    # Cubic upscaling commutes with flips and rotations: the ensemble of its eight views is itself.
    np.testing.assert_allclose(predict(cubic, inputs, self_ensemble=True), predict(cubic, inputs), atol=1e-5)
    keras.utils.set_random_seed(0)
    network = models.build_cnn("espcn", 9, 18, 4)
    for layer in models.grey_network(network).layers:
        if layer.weights:
            layer.set_weights([w + np.random.default_rng(1).normal(0, 0.1, w.shape) for w in layer.get_weights()])
    plain, ensembled = predict(network, inputs), predict(network, inputs, self_ensemble=True)
    assert ensembled.shape == plain.shape and np.abs(ensembled - plain).max() > 1e-3
    # The ensemble of an input's flip is the flip of its ensemble.
    np.testing.assert_allclose(predict(network, inputs[:, :, ::-1].copy(), self_ensemble=True), ensembled[:, :, ::-1],
                               atol=1e-5)
