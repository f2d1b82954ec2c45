"""Data-parallel training (mrisr.distribution): several devices give what one device gives.

A run on several devices needs a fresh process (TensorFlow and JAX fix their devices when they
start), so the trainings here run as subprocesses; without a GPU, `--devices N` splits the CPU into
N logical devices, which takes the same code path.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mrisr.nets.models import build_cnn
from tests.conftest import ROOT, make_crop_folder, run_script

# The comparisons run on logical CPU devices on any machine, a GPU machine too (where --devices 2 would
# need two GPUs, and GPU kernels differ from the CPU's in rounding).
ENVIRONMENT = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="",
                   JAX_PLATFORMS="cpu")


def run(arguments, timeout=600, **environment):
    finished = subprocess.run([sys.executable, *arguments], cwd=ROOT, env=dict(ENVIRONMENT, **environment),
                              capture_output=True, text=True, timeout=timeout)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-3000:]
    return finished.stdout


def model_weights(path, backend="tensorflow"):
    """A saved model's weights, loaded in a subprocess of the given backend (as .npz)."""
    out = path.parent.parent / f"{path.parent.name}_weights.npz"
    run(["-c", "import sys, numpy as np\nfrom mrisr.nets.loading import load_model\n"
               "np.savez(sys.argv[2], *load_model(sys.argv[1]).get_weights())", str(path), str(out)],
        KERAS_BACKEND=backend)
    with np.load(out) as saved:
        return [saved[key] for key in sorted(saved.files, key=lambda name: int(name.split("_")[1]))]


def history(folder, name):
    return json.loads((folder / name).read_text())["history"]


def train_cnn(crops, folder, *options, backend="tensorflow", **environment):
    xla = ["--no-xla"] if backend == "tensorflow" else []  # as under several TensorFlow devices
    return run([str(ROOT / "CNN.py"), "train", "SSIM_then_MSE", "--crops", str(crops), "--models-dir", str(folder),
                "--epochs", "1", "--batch-size", "8", "--limit", "24", "--quiet", *xla, *options],
               KERAS_BACKEND=backend, **environment)


@pytest.mark.slow
def test_paper_cnn_on_two_devices_trains_as_on_one(tmp_path):
    """The paper's CNN, both of its loss phases, on two (logical CPU) devices: the same training losses
    and the same weights as one device with the same global batch. Adam turns float rounding in
    near-zero gradients into steps of up to the learning rate, so a few weights differ by that much;
    all the others agree to float precision."""
    crops = make_crop_folder(tmp_path / "crops", count=40)
    train_cnn(crops, tmp_path / "one")
    output = train_cnn(crops, tmp_path / "two", "--devices", "2")
    assert "2 logical devices" in output and "on 2 logical CPU devices" in output
    name = "CNN_SSIM_then_MSE_model"
    one, two = (history(tmp_path / run_name, f"{name}_history.json") for run_name in ("one", "two"))
    assert one["phase"] == two["phase"] == ["SSIM", "MSE"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    keras.utils.set_random_seed(0)  # as the runs, which then build the same network
    before = build_cnn("paper", 6, 12, 4).get_weights()
    first, second = (model_weights(tmp_path / run_name / f"{name}.keras") for run_name in ("one", "two"))
    differences = np.concatenate([np.abs(a - b).ravel() for a, b in zip(first, second)])
    assert np.quantile(differences, 0.999) < 1e-6
    assert differences.max() < 4 * 1e-5  # two Adam steps of at most lr = 1e-5 each, per phase
    assert max(np.abs(a - b).max() for a, b in zip(first, before)) > 1e-5  # and the weights did move
    assert not (tmp_path / "two" / f"{name}_checkpoint").exists()


GAN_STEPS = textwrap.dedent("""
    import json, sys
    from mrisr.core.distribution import Devices, setup_devices
    two_devices = setup_devices(2)
    import keras, numpy as np
    from mrisr.paper.datasets import make_dataset
    from mrisr.paper.gan_model import PairedGAN
    from mrisr.nets.models import build_generator, paper_discriminator

    rng = np.random.default_rng(0)
    targets = rng.random((64, 12, 12, 4)).astype("float32")
    inputs = targets.reshape(64, 6, 2, 6, 2, 4).mean(axis=(2, 4))

    def train(devices, scale_losses=True):
        keras.utils.set_random_seed(0)
        with devices.scope():
            generator, discriminator = build_generator("paper", 6, 12), paper_discriminator(12, 4, (1, 2, 2, 2))
            for layer in generator.layers + discriminator.layers:
                if isinstance(layer, keras.layers.Dropout):
                    layer.rate = 0.0  # random masks cannot agree between device layouts
            gan = PairedGAN(generator, discriminator)
            gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), jit_compile=False)
            if not scale_losses:
                gan.replicas = 1
            before = [np.asarray(weight.numpy()) for weight in gan.weights]
            logs = gan.fit(make_dataset(inputs, targets, 32, 0), epochs=2, verbose=0, shuffle=False).history
        after = [np.asarray(weight.numpy()) for weight in gan.weights]
        return before, after, logs

    before, one, logs_one = train(Devices())
    _, two, logs_two = train(two_devices)
    _, unscaled, _ = train(two_devices, scale_losses=False)
    difference = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    print(difference(one, before), difference(one, two), difference(one, unscaled))
    json.dump({"moved": difference(one, before), "two": difference(one, two), "unscaled": difference(one, unscaled),
               "logs": [logs_one, logs_two]}, open(sys.argv[1], "w"))
""")


@pytest.mark.slow
def test_gan_step_on_two_devices_equals_one_device(tmp_path):
    """The paired GAN step (two optimisers, batch normalisation in the generator) on two devices: the
    same weights and scores as one device (plain SGD, so a wrong gradient scale would show), and a
    control without the division of the losses by the device count that does not agree."""
    report = tmp_path / "report.json"
    run(["-c", GAN_STEPS, str(report)])
    result = json.loads(report.read_text())
    assert result["moved"] > 0.05
    assert result["two"] < 1e-3 * result["moved"]
    assert result["unscaled"] > 20 * result["two"]
    one, two = result["logs"]
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-4)


@pytest.mark.slow
def test_gan_script_on_two_devices_saves_plain_models(tmp_path):
    crops = make_crop_folder(tmp_path / "crops", count=40)
    output = run([str(ROOT / "GAN.py"), "train", "1", "--crops", str(crops), "--models-dir", str(tmp_path / "gan"),
                  "--score-plot-dir", str(tmp_path / "plots"), "--batch-size", "8", "--devices", "2", "--quiet"])
    assert "on 2 logical CPU devices" in output
    config = json.dumps(keras.saving.load_model(tmp_path / "gan" / "generator.keras", compile=False).get_config())
    assert '"synchronized": false' in config  # loads on every backend
    assert (tmp_path / "plots" / "GAN_score_plot.png").is_file()


RESUME = textwrap.dedent("""
    import json, sys
    from mrisr.core.distribution import Devices, setup_devices
    two_devices = setup_devices(2)
    import numpy as np
    from mrisr.paper.crops import read_crops
    from mrisr.paper.splits import make_split
    from mrisr.core.model_files import keras_to_numpy
    from mrisr.paper.training import CNNRun, CNNSettings, train_cnn
    from tests.conftest import interrupt_after_epochs

    crops = read_crops(sys.argv[1])
    split = make_split(crops.indices, crops.labels)
    settings = CNNSettings(loss_setup="SSIM_then_MSE", arch="espcn", epochs=2, batch_size=8, learning_rate=1e-3,
                           limit=24, xla=False, lr_schedule="cosine")
    original = CNNRun.save_checkpoint
    interrupt_after_three = interrupt_after_epochs(original, 3)  # in the second phase

    weights = {}
    for name, devices in (("one", Devices()), ("two", two_devices)):
        folder = f"{sys.argv[2]}/{name}"
        CNNRun.save_checkpoint = interrupt_after_three
        try:
            train_cnn(crops, split, settings, folder, verbose=0, devices=devices)
        except KeyboardInterrupt:
            pass
        CNNRun.save_checkpoint = original
        run = train_cnn(crops, split, settings, folder, resume=True, verbose=0, devices=devices)
        weights[name] = [keras_to_numpy(variable) for variable in run.model.weights]
        assert run.history["phase"] == ["SSIM", "SSIM", "MSE", "MSE"], run.history
    print(json.dumps(max(float(np.abs(a - b).max()) for a, b in zip(weights["one"], weights["two"]))))
""")


MIXED_FLOAT16 = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from mrisr.core.distribution import Devices, setup_devices
    two_devices = setup_devices(2)
    import keras
    from mrisr.paper.crops import read_crops
    from mrisr.paper.gan import GANSettings, train_gan
    from mrisr.paper.splits import make_split
    from mrisr.paper.training import CNNSettings, train_cnn

    folder = Path(sys.argv[1])
    crops = read_crops(folder / "crops")
    split = make_split(crops.indices, crops.labels)
    report = {}
    for name, devices in (("one", Devices()), ("two", two_devices)):
        keras.utils.set_random_seed(0)
        cnn = train_cnn(crops, split, CNNSettings(loss_setup="SSIM", arch="espcn", epochs=2, batch_size=8, xla=False,
                                                  precision="mixed_float16", learning_rate=1e-3),
                        folder / f"cnn_{name}", verbose=0, devices=devices)
        gan = train_gan(crops, split, GANSettings(epochs=1, batch_size=8, precision="mixed_float16", snapshot_every=0),
                        folder / f"gan_{name}", folder / f"plots_{name}", verbose=0, devices=devices)
        report[name] = {"loss": cnn.history["loss"], "output": cnn.model.output.dtype,
                        "scaled": isinstance(cnn.model.optimizer, keras.optimizers.LossScaleOptimizer),
                        "gan": [value for value in gan.history["g_loss"] + gan.history["d_loss"] if value is not None]}
    json.dump(report, open(folder / "report.json", "w"))
""")


@pytest.mark.slow
def test_mixed_float16_on_two_devices_scales_the_loss_and_trains_as_on_one(tmp_path):
    """What several GPUs run by default with --mixed-precision (float16 with loss scaling under the
    strategy), here on two logical CPU devices: finite losses close to one device's (float16 rounding,
    and the epoch's odd last pair left out on two devices)."""
    make_crop_folder(tmp_path / "crops", count=40, sizes=(6, 12))
    run(["-c", MIXED_FLOAT16, str(tmp_path)])
    report = json.loads((tmp_path / "report.json").read_text())
    for name in ("one", "two"):
        assert report[name]["scaled"] and report[name]["output"] == "float32"
        assert np.isfinite(report[name]["loss"] + report[name]["gan"]).all() and report[name]["gan"]
    np.testing.assert_allclose(report["two"]["loss"], report["one"]["loss"], rtol=0.02)


@pytest.mark.slow
def test_resume_on_two_devices_as_on_one(tmp_path):
    """A run on two devices interrupted in its second loss phase resumes from its checkpoint (weights
    and optimizer variables restored into the mirrored variables) and ends as one device's does."""
    crops = make_crop_folder(tmp_path / "crops", count=40)
    difference = json.loads(run(["-c", RESUME, str(crops), str(tmp_path)]).strip().splitlines()[-1])
    assert difference < 1e-4


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_jax_on_two_devices_and_on_two_processes_trains_as_on_one(tmp_path):
    """JAX: Keras's DataParallel over two devices of one process, and over two processes joined on
    127.0.0.1 (as two machines would be), give the weights one device gives; only process 0 writes,
    and both processes stop by themselves."""
    pytest.importorskip("jax")
    crops = make_crop_folder(tmp_path / "crops", count=40)
    options = ("--arch", "espcn", "--augment")
    train_cnn(crops, tmp_path / "one", *options, backend="jax")
    train_cnn(crops, tmp_path / "two", *options, "--devices", "2", backend="jax")
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, str(ROOT / "CNN.py"), "train", "SSIM_then_MSE", "--crops", str(crops), "--models-dir",
               str(tmp_path / "cluster"), "--epochs", "1", "--batch-size", "8", "--limit", "24", "--quiet", *options]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=dict(ENVIRONMENT, KERAS_BACKEND="jax", KERAS_DISTRIBUTION_JOB_ADDRESSES=address,
                                           KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                                           KERAS_DISTRIBUTION_PROCESS_ID=str(rank)))
                 for rank in range(2)]
    try:
        outputs = [process.communicate(timeout=300)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "Process 1 of 2" in outputs[1] and "trained alongside process 0" in outputs[1]
    name = "CNN_espcn_SSIM_then_MSE_model"
    weights = {run_name: model_weights(tmp_path / run_name / f"{name}.keras", "jax")
               for run_name in ("one", "two", "cluster")}
    for run_name in ("two", "cluster"):
        assert max(np.abs(a - b).max() for a, b in zip(weights["one"], weights[run_name])) < 1e-5, run_name
        np.testing.assert_allclose(history(tmp_path / run_name, f"{name}_history.json")["loss"],
                                   history(tmp_path / "one", f"{name}_history.json")["loss"], rtol=1e-5)
    assert sorted(path.name for path in (tmp_path / "cluster").iterdir()) == [f"{name}.keras", f"{name}_history.json"]


@pytest.mark.parametrize("options, environment, message", [
    (["--devices", "0"], {}, "--devices must be positive"),
    (["--devices", "3", "--batch-size", "32"], {}, "does not split evenly over 3 devices"),
    ([], {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                   "task": {"type": "worker", "index": 0}})}, "keras-team/keras/issues/20585"),
    ([], {"KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "0"},
     "KERAS_DISTRIBUTION_JOB_ADDRESSES"),
])
def test_device_options_that_cannot_work_are_refused_in_one_line(tiny_crops, capsys, monkeypatch, options,
                                                                  environment, message):
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    code, _, err = run_script("CNN", ["train", "MSE", "--crops", str(tiny_crops), *options], capsys)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.backend
def test_devices_on_pytorch_are_refused_and_one_device_needs_nothing():
    from mrisr.core.distribution import setup_devices
    from mrisr.errors import UserError

    one = setup_devices(1)
    assert one.replicas == 1 and one.chief and one.strategy is None
    if keras.backend.backend() == "torch":
        with pytest.raises(UserError, match="TensorFlow and JAX only"):
            setup_devices(2)
