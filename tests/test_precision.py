"""Mixed precision: 16-bit convolutions, float32 outputs and losses, loss scaling under float16, and
the choice of policy on a machine without a GPU."""

import keras
import numpy as np
import pytest

from mrisr.core import precision
from mrisr.nets.models import build_cnn, build_generator, paper_discriminator
from mrisr.paper.gan import GANSettings, train_gan
from mrisr.paper.splits import make_split
from mrisr.paper.training import CNNSettings, train_cnn
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
    from mrisr.paper.crops import read_crops

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


# The shape of the error TensorFlow 2.21 raises at the first step of a mixed bfloat16 network where
# oneDNN may not use AVX-512 (ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 BF16 CPU), paths shortened.
TENSORFLOW_KERNEL_ERROR = """Graph execution error:

Detected at node model/conv2d_1/BiasAdd defined at (most recent call last):
  File "trainer.py", line 629, in train_on_batch

  File "numpy.py", line 129, in add

Operation received an exception:Status: 3, message: could not create a primitive descriptor for the \
convolution forward propagation primitive. Run workload with environment variable ONEDNN_VERBOSE=all to get \
additional diagnostic information., in file tensorflow/core/kernels/mkl/mkl_conv_ops.cc:1112
\t [[{{node model/conv2d_1/BiasAdd}}]] [Op:__inference_one_step_on_data_1428]"""


class FakeClock:
    """A clock that each step of a trial advances by that policy's step time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def trial(self, seconds, calls=None):
        def make(policy):
            def step():
                if seconds[policy] is None:  # as TensorFlow reports a kernel oneDNN cannot build
                    raise RuntimeError(TENSORFLOW_KERNEL_ERROR)
                self.now += seconds[policy]
                if calls is not None:
                    calls.append(policy)

            return step

        return make


def test_auto_measures_and_keeps_the_faster_policy_in_one_line():
    clock, said = FakeClock(), []
    # a CPU that emulates bfloat16 (10 times slower): float32, and the emulated trial is cut short
    calls = []
    chosen, seconds = precision.measured_policy(clock.trial({"float32": 0.1, "mixed_bfloat16": 1.0}, calls),
                                                "a training step", said.append, candidates=POLICIES, clock=clock)
    assert chosen == "float32" and seconds == pytest.approx(0.1)
    assert len(said) == 1 and said[0].startswith("precision: float32") and "mixed bfloat16 1000 ms" in said[0]
    assert calls.count("float32") == 16 and calls.count("mixed_bfloat16") == 2  # 1 untimed, 1 proves it slower
    # a CPU that computes bfloat16 natively and faster
    chosen, seconds = precision.measured_policy(clock.trial({"float32": 0.1, "mixed_bfloat16": 0.06}), "a step",
                                                said.append, candidates=POLICIES, clock=clock)
    assert chosen == "mixed_bfloat16" and seconds == pytest.approx(0.06)
    # a math library that cannot run bfloat16 at all: left out, and said
    chosen, _ = precision.measured_policy(clock.trial({"float32": 0.1, "mixed_bfloat16": None}), "a step",
                                          said.append, candidates=POLICIES, clock=clock)
    assert chosen == "float32" and said[-1].endswith("mixed bfloat16 failed (could not create a primitive "
                                                     "descriptor for the convolution forward propagation primitive))")
    with pytest.raises(precision.RunFailed):
        precision.measured_policy(clock.trial({"float32": None, "mixed_bfloat16": None}), "a step", said.append,
                                  candidates=POLICIES, clock=clock)


POLICIES = ("float32", "mixed_bfloat16")


def test_explicit_choices_are_kept_and_an_emulated_one_is_said(monkeypatch):
    said = []
    monkeypatch.setattr(precision, "gpu_count", lambda: 0)
    assert precision.choose_policy(None) == "float32" and precision.choose_policy("float32") == "float32"
    assert precision.choose_policy("auto", said.append) == "auto" and not said  # measured by the work's own trial
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert precision.choose_policy("bfloat16", said.append) == "mixed_bfloat16" and not said
    assert precision.choose_policy("float16", said.append) == "mixed_float16" and "emulate" in said[-1]
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert precision.choose_policy("bfloat16", said.append) == "mixed_bfloat16" and "emulated" in said[-1]
    monkeypatch.setattr(precision, "gpu_count", lambda: 1)
    assert precision.trial_candidates() == ("float32", "mixed_float16")
    with pytest.raises(precision.UserError):
        precision.choose_policy("float8")


def test_auto_on_a_machine_where_bfloat16_is_slower_trains_the_cnn_and_the_gan_in_float32(tmp_path, monkeypatch):
    """The trial runs each run's real step; a machine without native bfloat16 is simulated by the timing."""
    from mrisr.paper.crops import read_crops

    crops = read_crops(make_crop_folder(tmp_path / "crops", count=30, sizes=(6, 12)))
    split = make_split(crops.indices, crops.labels)
    ran = []

    def seconds_per_step(step, budget=1.5, slower_than=None, clock=None):
        step()  # the real step runs
        ran.append(keras.mixed_precision.dtype_policy().name)
        return 0.1 if slower_than is None else 1.0  # float32 is tried first: bfloat16 reported 10 times slower

    monkeypatch.setattr(precision, "seconds_per_step", seconds_per_step)
    monkeypatch.setattr(precision, "gpu_count", lambda: 0)
    run = train_cnn(crops, split, CNNSettings(loss_setup="MSE", arch="espcn", epochs=1, batch_size=4, xla=False,
                                              precision="auto"), tmp_path / "cnn", verbose=0)
    from mrisr.core.files import load_json

    assert run.settings.precision == "float32" and load_json(run.history_path)["settings"]["precision"] == "float32"
    assert all(layer.compute_dtype == "float32" for layer in run.model.layers if layer.weights)
    gan = train_gan(crops, split, GANSettings(epochs=1, batch_size=4, precision="auto", snapshot_every=0),
                    tmp_path / "gan", tmp_path / "plots", verbose=0)
    assert gan.settings.precision == "float32" and len(ran) == 4


def test_upscaling_in_mixed_precision_stays_close_to_float32(tmp_path):
    from mrisr.core.model_files import save_model
    from mrisr.scans.upscaling import load_upscaler

    keras.utils.set_random_seed(0)
    save_model(build_cnn("espcn", 8, 16, 4), tmp_path / "espcn.keras")
    image = np.random.default_rng(0).random((40, 40))
    full = load_upscaler(str(tmp_path / "espcn.keras")).upscale(image)
    mixed = load_upscaler(str(tmp_path / "espcn.keras"), precision="mixed_bfloat16").upscale(image)
    assert mixed.dtype == np.float32 and np.abs(mixed - full).max() < 0.02
    assert not np.array_equal(mixed, full)  # the body did run in bfloat16
