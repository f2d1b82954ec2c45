"""Mixed precision: 16-bit convolutions, float32 outputs and losses, loss scaling under float16, and
the choice of policy on a machine without a GPU."""

import keras
import numpy as np
import pytest

from mrisr import precision
from mrisr.gan import GANSettings, train_gan
from mrisr.models import build_cnn, build_generator, paper_discriminator
from mrisr.splits import make_split
from mrisr.training import CNNSettings, train_cnn
from tests.conftest import make_crop_folder


@pytest.fixture(autouse=True)
def float32_afterwards():
    yield
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_outputs_stay_float32_and_the_body_runs_in_16_bits(policy):
    with precision.policy_scope(policy):
        models = [build_cnn("paper", 6, 12, 4), build_cnn("espcn", 6, 12, 4), build_generator("paper", 6, 12, 4),
                  paper_discriminator(12, 4)]
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the scope restores the policy
    for model, inputs in zip(models, [np.zeros((1, 6, 6, 4), np.float32)] * 3 + [np.zeros((1, 12, 12, 4), np.float32)]):
        assert keras.backend.standardize_dtype(model(inputs).dtype) == "float32", model.name
        convolutions = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
        assert convolutions and all(layer.compute_dtype == policy.split("_")[1] for layer in convolutions)
    with precision.policy_scope("float32"):  # float32 models are built exactly as the paper's
        assert [type(layer).__name__ for layer in build_cnn("paper", 6, 12, 4).layers][-2:] == ["Dense", "Reshape"]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_training_keeps_the_loss_finite(tmp_path, policy):
    crops_folder = make_crop_folder(tmp_path / "crops", count=30, sizes=(6, 12))
    from mrisr.crops import read_crops

    crops = read_crops(crops_folder)
    split = make_split(crops.indices, crops.labels)
    run = train_cnn(crops, split, CNNSettings(loss_setup="SSIM", arch="espcn", epochs=2, batch_size=4, xla=False,
                                              precision=policy, learning_rate=1e-3), tmp_path / "cnn", verbose=0)
    assert np.isfinite(run.history["loss"]).all() and run.history["loss"][-1] < run.history["loss"][0] + 0.05
    if policy == "mixed_float16":  # Keras scales the loss so that float16 gradients do not underflow
        assert isinstance(run.model.optimizer, keras.optimizers.LossScaleOptimizer)
    gan = train_gan(crops, split, GANSettings(epochs=1, batch_size=4, precision=policy, snapshot_every=0),
                    tmp_path / "gan", tmp_path / "plots", verbose=0)
    assert np.isfinite([v for v in gan.history["g_loss"] + gan.history["d_loss"] if v is not None]).all()


def test_the_policy_follows_the_machine(monkeypatch):
    said = []
    monkeypatch.setattr(precision, "gpu_count", lambda: 0)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert precision.choose_policy(None) == "float32"
    assert precision.choose_policy("auto", said.append) == "mixed_bfloat16" and not said
    assert precision.choose_policy("float16", said.append) == "mixed_bfloat16" and "no GPU" in said[-1]
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert precision.choose_policy("auto", said.append) == "float32" and "float32" in said[-1]
    monkeypatch.setattr(precision, "gpu_count", lambda: 1)
    assert precision.choose_policy("auto") == "mixed_float16"
    assert precision.choose_policy("bfloat16") == "mixed_bfloat16"


def test_upscaling_in_mixed_precision_stays_close_to_float32(tmp_path):
    from mrisr.storage import save_model
    from mrisr.upscaling import load_upscaler

    keras.utils.set_random_seed(0)
    save_model(build_cnn("espcn", 8, 16, 4), tmp_path / "espcn.keras")
    image = np.random.default_rng(0).random((40, 40))
    full = load_upscaler(str(tmp_path / "espcn.keras")).upscale(image)
    mixed = load_upscaler(str(tmp_path / "espcn.keras"), precision="mixed_bfloat16").upscale(image)
    assert mixed.dtype == np.float32 and np.abs(mixed - full).max() < 0.02
    assert not np.array_equal(mixed, full)  # the body did run in bfloat16
