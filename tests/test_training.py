import keras
import numpy as np
import pytest

from mrisr.core.files import load_json
from mrisr.paper.crops import read_crops
from mrisr.paper.splits import make_split
from mrisr.paper.training import CNNRun, CNNSettings, make_optimizer, train_cnn
from tests.conftest import interrupt_after_epochs


def settings(**changes):
    base = dict(loss_setup="MSE", epochs=2, batch_size=8, learning_rate=1e-3, xla=False)
    base.update(changes)
    return CNNSettings(**base)


def crops_and_split(folder):
    crops = read_crops(folder)
    return crops, make_split(crops.indices, crops.labels)


def test_learning_rate_schedule_is_the_old_keras_decay():
    optimizer = make_optimizer(CNNSettings())
    optimizer.build([])
    for step in (0, 1, 10, 1000, 500_000):
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(1e-5 / (1 + 1e-6 * step), rel=1e-6)


@pytest.mark.backend
def test_ssim_then_mse_switches_once_and_keeps_the_weights(tiny_crops, tmp_path, monkeypatch):
    crops, split = crops_and_split(tiny_crops)
    at_compile, at_phase_end = [], []
    original_compile, original_checkpoint = CNNRun.compile, CNNRun.save_checkpoint

    def recording_compile(self, phase_index):
        original_compile(self, phase_index)
        at_compile.append((phase_index, [w.copy() for w in self.model.get_weights()],
                           int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))))

    def recording_checkpoint(self, phase_index, epochs, early, phase_done=False):
        original_checkpoint(self, phase_index, epochs, early, phase_done)
        if phase_done:
            at_phase_end.append([w.copy() for w in self.model.get_weights()])

    monkeypatch.setattr(CNNRun, "compile", recording_compile)
    monkeypatch.setattr(CNNRun, "save_checkpoint", recording_checkpoint)
    run = train_cnn(crops, split, settings(loss_setup="SSIM_then_MSE"), tmp_path / "models", verbose=0)
    assert run.history["phase"] == ["SSIM", "SSIM", "MSE", "MSE"]
    record = load_json(tmp_path / "models/CNN_SSIM_then_MSE_model_history.json")
    assert record["switch_epoch"] == 3 and [p["phase"] for p in record["phases"]] == ["SSIM", "MSE"]
    assert [phase for phase, _, _ in at_compile] == [0, 1]  # compiled once per phase: one switch
    initial, at_switch = at_compile[0][1], at_compile[1][1]
    assert at_compile[1][2] == 0  # a fresh optimizer for the second phase
    assert any(not np.array_equal(a, b) for a, b in zip(initial, at_switch))  # phase 1 trained them
    assert len(at_phase_end) == 1  # phase 2 starts from exactly the weights phase 1 ended with
    assert all(np.array_equal(a, b) for a, b in zip(at_phase_end[0], at_switch))
    assert not (tmp_path / "models/CNN_SSIM_then_MSE_model_checkpoint").exists()


def test_early_stopping_stops(tiny_crops, tmp_path):
    crops, split = crops_and_split(tiny_crops)
    run = train_cnn(crops, split, settings(epochs=50, patience=2, learning_rate=0.0), tmp_path, verbose=0)
    # With a learning rate of 0 the validation loss never improves: best at epoch 1, stop after 2 more.
    assert len(run.history["epoch"]) == 3
    record = load_json(run.history_path)
    assert record["phases"][0]["stopped_early"] and record["epochs_to_early_stop"] == [3]


def ten_seconds_a_reading(monkeypatch):
    """PauseAfter's clock: ten seconds later at every reading (its creation, then each epoch's end), so the
    tests do not depend on this machine's speed."""
    from mrisr.core.callbacks import PauseAfter

    seconds = iter(range(0, 10_000_000, 10))
    monkeypatch.setattr(PauseAfter, "clock", staticmethod(lambda: float(next(seconds))))


def test_a_paused_run_keeps_its_checkpoint_and_resumes_to_the_end(tiny_crops, tmp_path, monkeypatch, capsys):
    from mrisr.errors import Paused

    ten_seconds_a_reading(monkeypatch)
    crops, split = crops_and_split(tiny_crops)
    with pytest.raises(Paused):  # half a minute: the third epoch ends at 30 s
        train_cnn(crops, split, settings(epochs=5), tmp_path, verbose=0, pause_after_minutes=0.5)
    checkpoint = tmp_path / "CNN_MSE_model_checkpoint"
    assert f"Paused: the last finished epoch is kept in {checkpoint}" in capsys.readouterr().out
    assert load_json(checkpoint / "state.json")["history"]["epoch"] == [1, 2, 3]
    assert not (tmp_path / "CNN_MSE_model.keras").exists()
    run = train_cnn(crops, split, settings(epochs=5), tmp_path, resume=True, verbose=0)
    assert run.history["epoch"] == [1, 2, 3, 4, 5] and not checkpoint.exists()
    assert int(keras.ops.convert_to_numpy(run.model.optimizer.iterations)) == 5 * 3  # 24 pairs / batch 8


def test_an_epoch_that_stops_early_is_not_paused(tiny_crops, tmp_path, monkeypatch):
    ten_seconds_a_reading(monkeypatch)
    crops, split = crops_and_split(tiny_crops)
    # A learning rate of 0 never improves: early stopping ends the run after epoch 3, when the pause is due.
    run = train_cnn(crops, split, settings(epochs=50, patience=2, learning_rate=0.0), tmp_path, verbose=0,
                    pause_after_minutes=0.5)
    assert load_json(run.history_path)["epochs_to_early_stop"] == [3]


def test_history_records_settings_and_versions(tiny_crops, tmp_path):
    crops, split = crops_and_split(tiny_crops)
    run = train_cnn(crops, split, settings(epochs=1, limit=5), tmp_path, verbose=0, extra={"crops": "x"})
    record = load_json(run.history_path)
    assert record["settings"]["limit"] == 5 and record["settings"]["batch_size"] == 8
    assert record["crops"] == "x" and record["versions"]["backend"] in record["versions"]
    assert record["training_seconds"] > 0 and record["parameters"] == run.model.count_params()
    assert set(record["history"]) == {"epoch", "phase", "loss", "val_loss"}


@pytest.mark.backend
@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(tiny_crops, tmp_path, monkeypatch, capsys):
    crops, split = crops_and_split(tiny_crops)
    interrupted_run(crops, split, tmp_path, monkeypatch, xla=True)
    checkpoint = tmp_path / "CNN_MSE_model_checkpoint"
    assert f"the last finished epoch is kept in {checkpoint}" in capsys.readouterr().out
    assert (checkpoint / "state.json").is_file() and not (tmp_path / "CNN_MSE_model.keras").exists()
    state = load_json(checkpoint / "state.json")
    run = train_cnn(crops, split, settings(epochs=4, xla=True), tmp_path, resume=True, verbose=0)
    assert run.history["epoch"] == [1, 2, 3, 4]
    assert run.phase_records == [{"phase": "MSE", "first_epoch": 1, "last_epoch": 4, "stopped_early": False,
                                  "stopped_by_time_limit": False}]
    assert run.history["loss"][:2] == state["history"]["loss"]
    assert int(keras.ops.convert_to_numpy(run.model.optimizer.iterations)) == 4 * 3  # 24 pairs / 8, 4 epochs
    assert (tmp_path / "CNN_MSE_model.keras").is_file() and not checkpoint.exists()


def test_resume_from_a_truncated_checkpoint_is_one_line(tiny_crops, tmp_path, monkeypatch):
    """Before, --resume from a checkpoint cut short (a full disk, a copy stopped half way) gave zipfile's
    BadZipFile traceback."""
    from mrisr.errors import UserError

    crops, split = crops_and_split(tiny_crops)
    interrupted_run(crops, split, tmp_path, monkeypatch)
    variables = next((tmp_path / "CNN_MSE_model_checkpoint").glob("ckpt-*/variables.npz"))
    variables.write_bytes(variables.read_bytes()[:len(variables.read_bytes()) // 2])
    with pytest.raises(UserError, match="truncated or corrupt file; start afresh with `overwrite`"):
        train_cnn(crops, split, settings(epochs=4), tmp_path, resume=True, verbose=0)


def test_resume_without_checkpoint_is_a_user_error(tiny_crops, tmp_path):
    from mrisr.errors import UserError

    crops, split = crops_and_split(tiny_crops)
    with pytest.raises(UserError, match="no checkpoint"):
        train_cnn(crops, split, settings(), tmp_path, resume=True, verbose=0)


@pytest.mark.backend
@pytest.mark.parametrize("loss", ["L1", "PSNR"])
def test_extra_losses_and_augmentation_train_a_fully_convolutional_network(tiny_crops, tmp_path, loss):
    crops, split = crops_and_split(tiny_crops)
    run = train_cnn(crops, split, settings(loss_setup=loss, arch="espcn", augment=True, ema=True,
                                           lr_schedule="cosine"), tmp_path, verbose=0)
    record = load_json(run.history_path)
    assert record["settings"]["arch"] == "espcn" and len(record["history"]["loss"]) == 2
    assert np.isfinite(record["history"]["loss"]).all()
    assert run.model_path.name == f"CNN_espcn_{loss}_model.keras"


@pytest.mark.backend
def test_augmentation_moves_input_and_target_together():
    from mrisr.paper.datasets import make_dataset

    high = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    low = high.reshape(16, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    inputs, targets = next(iter(make_dataset(low, high, 16, augment=True)))
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    np.testing.assert_allclose(inputs, targets.reshape(16, 4, 2, 4, 2, 1).mean(axis=(2, 4)), atol=1e-6)
    for original, augmented in zip(high, targets):  # each is one of the eight flips and rotations
        variants = [np.rot90(image, k) for image in (original, original[:, ::-1]) for k in range(4)]
        assert any(np.array_equal(variant, augmented) for variant in variants)
    assert not np.array_equal(targets, high)


@pytest.mark.backend
def test_time_limit_stops_training_and_drives_the_cosine_schedule(tiny_crops, tmp_path, monkeypatch):
    from mrisr.core.callbacks import TimeLimit

    # A clock that advances one second each time it is read (at the limit's creation, then at every
    # batch's start and end), so that the test does not depend on how fast this machine compiles or steps.
    seconds = iter(range(1_000_000))
    monkeypatch.setattr(TimeLimit, "clock", staticmethod(lambda: float(next(seconds))))
    crops, split = crops_and_split(tiny_crops)
    run = train_cnn(crops, split, settings(arch="espcn", epochs=1000, patience=1000, lr_schedule="cosine",
                                           time_limit_minutes=0.5), tmp_path, verbose=0)
    # 30 clock seconds: the 15th batch starts at second 29 and ends at 30; three batches of 8 per epoch.
    assert len(run.history["epoch"]) == 5
    assert run.phase_records[-1]["stopped_by_time_limit"]
    # The cosine schedule follows the elapsed share of the time limit: from the rate to 1% of it; the
    # optimizer's rate was set from it before each batch, so it ends near 1%.
    rate = 1e-3
    for progress, expected in ((0.0, rate), (0.5, 0.505 * rate), (1.0, 0.01 * rate)):
        assert run.time_limit.learning_rate_at(progress) == pytest.approx(expected, rel=1e-6)
    assert run.time_limit.progress == pytest.approx(29 / 30)
    final = float(keras.ops.convert_to_numpy(run.model.optimizer.learning_rate))
    assert final == pytest.approx(run.time_limit.learning_rate_at(29 / 30), rel=1e-5)
    assert final < 0.05 * rate


@pytest.mark.parametrize("estimate, made", [(5, 3), (5, 5), (5, 9)])
def test_the_step_bar_never_passes_its_total_and_ends_at_the_steps_made(estimate, made, capsys):
    from mrisr.core.callbacks import StepProgress

    progress = StepProgress(estimate, "learning")
    for batch in range(made):
        progress.on_train_batch_end(batch, {"loss": 0.5})
        assert progress.bar.n == batch + 1 <= progress.bar.total
    progress.on_train_end()
    assert progress.bar.n == progress.bar.total == made
    assert f"{made}/{made}" in capsys.readouterr().err.split("\r")[-1]


def test_consistent_pairs_share_one_intensity_scale(tiny_crops):
    from mrisr.errors import UserError
    from mrisr.nets.imaging import bone_rgba_to_grey
    from mrisr.paper.pairs import consistent_pairs, make_pairs

    crops = read_crops(tiny_crops)
    pairs = consistent_pairs(crops, 2)
    assert pairs.inputs.shape[1:] == (6, 6, 4) and pairs.targets.shape[1:] == (12, 12, 4)
    averaged = bone_rgba_to_grey(pairs.targets).reshape(-1, 6, 2, 6, 2).mean(axis=(2, 4))
    assert np.abs(bone_rgba_to_grey(pairs.inputs) - averaged).max() <= 1 / 256 + 1e-9
    assert consistent_pairs(crops, 5).targets.shape[1] == 10  # cut to a multiple of the scale
    with pytest.raises(UserError, match="`scale` 3"):
        make_pairs(crops, "paper", 3)


def test_a_network_trained_a_few_steps_beats_nearest_neighbour_on_its_training_pairs(tmp_path):
    from scipy.ndimage import gaussian_filter

    from mrisr.nets.imaging import grey_to_bone_rgba, min_max_normalise
    from mrisr.nets.metrics import bicubic_upscale, score_images
    from mrisr.paper.crops import CropSet
    from mrisr.paper.pairs import consistent_pairs

    rng = np.random.default_rng(0)  # smooth random images: structure a network can learn
    grey = [min_max_normalise(gaussian_filter(rng.random((16, 16)), 2.0)) for _ in range(40)]
    targets = grey_to_bone_rgba(np.stack(grey))
    crops = consistent_pairs(CropSet(np.arange(40), targets[:, ::2, ::2], targets, None, None, tmp_path), 2)
    split = make_split(crops.indices, seed=0)
    run = train_cnn(crops, split, settings(loss_setup="L1", arch="espcn", epochs=20, batch_size=8, patience=100,
                                           learning_rate=3e-3, lr_schedule="constant"), tmp_path, verbose=0)
    train = crops.subset(split.train)
    nearest = train.inputs.repeat(2, axis=1).repeat(2, axis=2)
    model_scores = score_images(train.targets, np.clip(run.model.predict(train.inputs, verbose=0), 0, 1))
    assert model_scores.mean_psnr > score_images(train.targets, nearest).mean_psnr + 1.0
    assert model_scores.mean_psnr > score_images(train.targets, bicubic_upscale(train.inputs, 16)).mean_psnr


def interrupted_run(crops, split, folder, monkeypatch, **changes):
    """A run interrupted after its second epoch, its checkpoint kept."""
    original = CNNRun.save_checkpoint
    monkeypatch.setattr(CNNRun, "save_checkpoint", interrupt_after_epochs(original, 2))
    with pytest.raises(KeyboardInterrupt):
        train_cnn(crops, split, settings(epochs=4, **changes), folder, verbose=0)
    monkeypatch.setattr(CNNRun, "save_checkpoint", original)


@pytest.mark.parametrize("change, named", [
    (dict(limit=5), "limit (checkpoint None, now 5)"),
    (dict(seed=3), "seed"),
    (dict(epochs=9), "epochs"),
    (dict(ema=True), "ema"),
    (dict(lr_schedule="cosine"), "lr_schedule"),
])
def test_resume_is_refused_when_a_setting_differs(tiny_crops, tmp_path, monkeypatch, change, named):
    from mrisr.errors import UserError

    crops, split = crops_and_split(tiny_crops)
    interrupted_run(crops, split, tmp_path, monkeypatch)
    with pytest.raises(UserError, match="`resume`: the checkpoint .* other settings or data") as error:
        train_cnn(crops, split, settings(**{"epochs": 4, **change}), tmp_path, resume=True, verbose=0)
    assert named in str(error.value) and "\n" not in str(error.value)
    assert (tmp_path / "CNN_MSE_model_checkpoint/state.json").is_file()  # the checkpoint is kept


def test_resume_is_refused_on_other_crops_or_another_split(tiny_crops, tmp_path, monkeypatch):
    from mrisr.errors import UserError

    crops, split = crops_and_split(tiny_crops)
    interrupted_run(crops, split, tmp_path, monkeypatch)
    other_split = make_split(crops.indices, crops.labels, seed=4)
    with pytest.raises(UserError, match="the train crops of the split"):
        train_cnn(crops, other_split, settings(epochs=4), tmp_path, resume=True, verbose=0)
    changed = read_crops(tiny_crops)
    changed.targets[0] = 1.0 - changed.targets[0]  # same indices, other pixels: another fingerprint
    changed.fingerprint = "another"
    with pytest.raises(UserError, match="crops \\(the checkpoint's"):
        train_cnn(changed, split, settings(epochs=4), tmp_path, resume=True, verbose=0)


def test_a_fresh_run_never_deletes_an_interrupted_one_unless_told(tiny_crops, tmp_path, monkeypatch):
    from mrisr.errors import UserError

    crops, split = crops_and_split(tiny_crops)
    interrupted_run(crops, split, tmp_path, monkeypatch)
    state = (tmp_path / "CNN_MSE_model_checkpoint/state.json").read_text()
    with pytest.raises(UserError, match="an interrupted run \\(2 epoch\\(s\\)\\) .* `resume`, or .* `overwrite`"):
        train_cnn(crops, split, settings(epochs=4), tmp_path, verbose=0)
    assert (tmp_path / "CNN_MSE_model_checkpoint/state.json").read_text() == state
    assert not (tmp_path / "CNN_MSE_model.lock").exists()  # the refused run let its lock go
    run = train_cnn(crops, split, settings(epochs=1), tmp_path, verbose=0, overwrite=True)
    assert run.history["epoch"] == [1] and not (tmp_path / "CNN_MSE_model_checkpoint").exists()


def test_a_non_finite_loss_stops_training_and_nothing_is_saved(tiny_crops, tmp_path):
    from mrisr.core.callbacks import TrainingDiverged

    crops, split = crops_and_split(tiny_crops)
    crops.targets[:] = np.nan  # every batch: the loss is NaN from the first step
    with pytest.raises(TrainingDiverged, match="training diverged: loss became nan in epoch 1, batch 1"):
        train_cnn(crops, split, settings(), tmp_path / "models", verbose=0)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == []  # no model, no history, no lock


def test_non_finite_weights_stop_training_even_with_a_finite_loss(tiny_crops, tmp_path, monkeypatch):
    from mrisr.core.callbacks import TrainingDiverged

    crops, split = crops_and_split(tiny_crops)
    original = CNNRun.save_checkpoint
    calls = []

    def poison_after_first_epoch(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)
        weights = self.model.get_weights()
        weights[0] = np.full_like(weights[0], np.inf)
        self.model.set_weights(weights)

    monkeypatch.setattr(CNNRun, "save_checkpoint", poison_after_first_epoch)
    with pytest.raises(TrainingDiverged):
        train_cnn(crops, split, settings(epochs=3), tmp_path, verbose=0)
    assert not (tmp_path / "CNN_MSE_model.keras").exists() and not (tmp_path / "CNN_MSE_model_history.json").exists()


def test_what_a_killed_run_left_is_cleaned_by_the_next_run_of_the_model(tiny_crops, tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    crops, split = crops_and_split(tiny_crops)
    tmp_path = tmp_path / "models"
    tmp_path.mkdir()
    stale_model = tmp_path / f".CNN_MSE_model.keras.tmp-{dead.pid}-q1.keras"
    stale_model.write_bytes(b"part of a 1.2 GB model")
    partial = tmp_path / "CNN_MSE_model_checkpoint" / f"ckpt-{dead.pid}-7"
    partial.mkdir(parents=True)
    (tmp_path / "CNN_MSE_model.lock").write_text(f"{dead.pid}\n")
    run = train_cnn(crops, split, settings(epochs=1), tmp_path, verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CNN_MSE_model.keras", "CNN_MSE_model_history.json"]
    assert run.model_path.is_file()


def test_the_history_records_the_crops_and_split(tiny_crops, tmp_path):
    crops, split = crops_and_split(tiny_crops)
    run = train_cnn(crops, split, settings(epochs=1), tmp_path, verbose=0)
    data = load_json(run.history_path)["data"]
    assert data["fingerprint"] == crops.fingerprint and data["crop_count"] == len(crops)
    assert data["split"]["test"] == split.test.tolist() and data["split"]["train"] == split.train.tolist()
    digests = dict(zip(crops.indices.tolist(), crops.digests.tolist()))
    assert data["train_digests"] == [digests[i] for i in split.train.tolist()]


@pytest.mark.backend
def test_ema_weights_are_the_moving_average_even_when_training_stops_early():
    import keras

    from mrisr.paper.cnn_callbacks import ema_callbacks

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(CNNSettings(ema=True, lr_schedule="constant", learning_rate=0.05)),
                  loss="mse")
    raw = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raw.append([weight.copy() for weight in self.model.get_weights()])

    class StopAfterTwoEpochs(keras.callbacks.Callback):  # as early stopping or a time limit would
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    inputs = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    swap, keep = ema_callbacks()
    model.fit(inputs, inputs.sum(axis=1, keepdims=True), batch_size=8, epochs=10, verbose=0, shuffle=False,
              callbacks=[swap, Record(), StopAfterTwoEpochs(), keep])
    assert len(raw) == 10
    average = raw[0]  # Keras starts the average at the first step's weights, then momentum 0.99
    for weights in raw[1:]:
        average = [0.99 * a + 0.01 * w for a, w in zip(average, weights)]
    for final, expected, last in zip(model.get_weights(), average, raw[-1]):
        np.testing.assert_allclose(final, expected, atol=1e-6)
        assert np.abs(final - last).max() > 1e-3  # the raw weights are not what is kept
