from mrisr.models import build_cnn, paper_cnn


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
