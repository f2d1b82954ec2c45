import keras
import numpy as np
import pytest

from mrisr.core.files import load_json
from mrisr.nets.models import paper_discriminator, paper_generator
from mrisr.paper.crops import read_crops
from mrisr.paper.gan import GANSettings, train_gan
from mrisr.paper.gan_model import build_gan, gan_scores
from mrisr.paper.splits import make_split
from tests.conftest import interrupt_after_epochs

pytestmark = pytest.mark.backend  # also run on JAX and PyTorch by make test


def layer_table(model):
    return [(type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params()) for layer in model.layers]


def test_generator_layers_shapes_and_parameters():
    table = layer_table(paper_generator())
    assert table[0] == ("Conv2D", (25, 25, 64), 3 * 3 * 4 * 64 + 64)
    assert table[1] == ("BatchNormalization", (25, 25, 64), 4 * 64)
    assert [row[0] for row in table] == [
        "Conv2D", "BatchNormalization", "ReLU", "Dropout",
        "Conv2D", "BatchNormalization", "ReLU", "UpSampling2D",
        "Conv2D", "BatchNormalization", "ReLU",
        "Conv2D", "BatchNormalization", "ReLU",
        "Conv2D"]
    assert table[4] == ("Conv2D", (25, 25, 32), 5 * 5 * 64 * 32 + 32)
    assert table[7] == ("UpSampling2D", (50, 50, 32), 0)
    assert table[-1] == ("Conv2D", (50, 50, 4), 5 * 5 * 8 * 4 + 4)
    # 2368 + 256 + 51232 + 128 + 12816 + 64 + 3208 + 32 + 804, counted by hand
    assert paper_generator().count_params() == 70_908
    assert paper_generator().layers[1].momentum == 0.9


@pytest.mark.parametrize("strides, sizes, dense_inputs", [
    ((1, 1, 1, 1), (50, 50, 50, 50), 50 * 50 * 64),
    ((1, 2, 2, 2), (50, 25, 13, 7), 7 * 7 * 64),
])
def test_discriminator_layers_for_both_stride_settings(strides, sizes, dense_inputs):
    model = paper_discriminator(strides=strides)
    table = layer_table(model)
    convolutions = [row for row in table if row[0] == "Conv2D"]
    assert [row[1] for row in convolutions] == [(s, s, f) for s, f in zip(sizes, (8, 16, 32, 64))]
    assert [row[2] for row in convolutions] == [5 * 5 * 4 * 8 + 8, 5 * 5 * 8 * 16 + 16, 5 * 5 * 16 * 32 + 32,
                                                5 * 5 * 32 * 64 + 64]
    assert [row[0] for row in table[:3]] == ["Conv2D", "LeakyReLU", "Dropout"]
    assert table[-1] == ("Dense", (1,), dense_inputs + 1)
    assert model.layers[1].negative_slope == pytest.approx(0.2)


def test_scores_on_known_discriminator_outputs():
    real = np.array([0.9, 0.7, 0.8])
    fake = np.array([0.2, 0.4])
    score_generator, score_discriminator = gan_scores(real, fake)
    assert score_generator == pytest.approx(0.3)
    assert score_discriminator == pytest.approx(0.5 * 0.8 + 0.5 * 0.7)
    assert gan_scores([1.0], [0.0]) == (0.0, 1.0)  # a perfect discriminator


def small_gan(**changes):
    settings = GANSettings(epochs=1, batch_size=8, xla=False, **changes)
    return build_gan(settings, 6, 12, 4), settings


def one_step(gan):
    """One paired step through fit (on every backend); returns its logs."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 6, 6, 4), dtype=np.float32)
    y = rng.random((8, 12, 12, 4), dtype=np.float32)
    history = gan.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return {key: values[-1] for key, values in history.history.items()}


def snapshot(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="spies on the stateful optimizer.apply that JAX's "
                    "stateless step does not call")
def test_each_step_updates_only_its_network(monkeypatch):
    gan, _ = small_gan()
    gan.build_optimizers()
    d_before, g_before = snapshot(gan.discriminator), snapshot(gan.generator)
    after_d_step = {}
    original = gan.g_optimizer.apply

    def spy(gradients, variables):  # called at the start of the generator's update
        after_d_step["d"], after_d_step["g"] = snapshot(gan.discriminator), snapshot(gan.generator)
        return original(gradients, variables)

    monkeypatch.setattr(gan.g_optimizer, "apply", spy)
    rng = np.random.default_rng(0)
    gan.train_step((keras.ops.convert_to_tensor(rng.random((8, 6, 6, 4), dtype=np.float32)),
                    keras.ops.convert_to_tensor(rng.random((8, 12, 12, 4), dtype=np.float32))))  # eagerly
    # the discriminator's step changed the discriminator and not the generator
    assert changed(d_before, after_d_step["d"]) and not changed(g_before, after_d_step["g"])
    # the generator's step changed the generator and not the (frozen) discriminator
    assert changed(g_before, snapshot(gan.generator))
    assert not changed(after_d_step["d"], snapshot(gan.discriminator))


def test_the_generator_loss_with_a_content_loss_is_content_plus_a_thousandth_of_adversarial():
    """Same seed, same networks, same discriminator step: g_loss(mse) = MSE(G(x), y) + 1e-3 g_loss(none),
    the content measured independently on the generator before the step (NumPy). Dropout off, so that
    the generator's output in training mode is the step's."""
    results = {}
    for content in ("none", "mse"):
        keras.utils.set_random_seed(0)
        gan, settings = small_gan(content_loss=content)
        for layer in gan.generator.layers + gan.discriminator.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        rng = np.random.default_rng(0)
        x = rng.random((8, 6, 6, 4), dtype=np.float32)
        y = rng.random((8, 12, 12, 4), dtype=np.float32)
        generated = keras.ops.convert_to_numpy(gan.generator(x, training=True))
        results[content] = ({k: float(v) for k, v in one_step(gan).items()}, float(np.mean((generated - y) ** 2)))
    (none, _), (mse, content) = results["none"], results["mse"]
    assert mse["d_loss"] == pytest.approx(none["d_loss"], rel=1e-5)
    assert mse["g_loss"] == pytest.approx(content + 1e-3 * none["g_loss"], rel=1e-4)
    assert none["g_loss"] > 10 * 1e-3 * none["g_loss"] and content > 0.01  # both terms matter in the sum


@pytest.mark.slow
def test_train_writes_models_history_plots_and_resumes(tiny_crops, tmp_path, monkeypatch):
    from mrisr.paper.gan import GANRun

    crops = read_crops(tiny_crops)
    split = make_split(crops.indices, crops.labels)
    settings = GANSettings(epochs=3, batch_size=8, xla=False, snapshot_every=2)
    original = GANRun.end_of_epoch
    monkeypatch.setattr(GANRun, "end_of_epoch", interrupt_after_epochs(original, 2))
    with pytest.raises(KeyboardInterrupt):
        train_gan(crops, split, settings, tmp_path / "GAN_models", tmp_path / "scores", verbose=0)
    assert (tmp_path / "GAN_models/checkpoint/state.json").is_file()
    monkeypatch.setattr(GANRun, "end_of_epoch", original)
    run = train_gan(crops, split, settings, tmp_path / "GAN_models", tmp_path / "scores", resume=True, verbose=0)
    history = load_json(tmp_path / "GAN_models/history.json")["history"]
    assert history["epoch"] == [1, 2, 3] and run.history["epoch"] == [1, 2, 3]
    for key in ("score_generator", "score_discriminator", "val_psnr", "val_ssim", "d_loss", "g_loss"):
        assert len(history[key]) == 3 and all(np.isfinite(history[key]))
    assert all(0 <= s <= 1 for s in history["score_generator"] + history["score_discriminator"])
    assert (tmp_path / "GAN_models/generator.keras").is_file()
    assert (tmp_path / "GAN_models/discriminator.keras").is_file()
    assert (tmp_path / "scores/GAN_score_plot.png").is_file()
    assert (tmp_path / "GAN_models/snapshots/epoch_0002.png").is_file()
    assert not (tmp_path / "GAN_models/checkpoint").exists()


@pytest.mark.slow
def test_pretraining_with_a_content_loss(tiny_crops, tmp_path):
    crops = read_crops(tiny_crops)
    split = make_split(crops.indices, crops.labels)
    settings = GANSettings(epochs=1, batch_size=8, xla=False, content_loss="l1", pretrain_epochs=1,
                           snapshot_every=0)
    run = train_gan(crops, split, settings, tmp_path, tmp_path / "scores", verbose=0)
    assert run.history["phase"] == ["pretrain", "adversarial"]
    assert run.history["d_loss"][0] is None and run.history["d_loss"][1] is not None


def test_a_fully_convolutional_generator_trains_in_the_gan(tiny_crops, tmp_path):
    crops = read_crops(tiny_crops)
    split = make_split(crops.indices, crops.labels)
    settings = GANSettings(epochs=1, batch_size=8, generator="espcn", content_loss="l1", adversarial_weight=1e-3,
                           xla=False)
    run = train_gan(crops, split, settings, tmp_path, tmp_path / "scores", verbose=0)
    assert len(load_json(run.history_path)["history"]["epoch"]) == 1
    assert run.generator_path.is_file()


@pytest.mark.slow
def test_gan_resume_checks_settings_and_a_fresh_run_keeps_the_checkpoint(tiny_crops, tmp_path, monkeypatch):
    import dataclasses

    from mrisr.errors import UserError
    from mrisr.paper.gan import GANRun

    crops = read_crops(tiny_crops)
    split = make_split(crops.indices, crops.labels)
    settings = GANSettings(epochs=3, batch_size=8, xla=False, snapshot_every=0)
    original = GANRun.end_of_epoch
    monkeypatch.setattr(GANRun, "end_of_epoch", interrupt_after_epochs(original, 1))
    with pytest.raises(KeyboardInterrupt):
        train_gan(crops, split, settings, tmp_path / "g", tmp_path / "scores", verbose=0)
    monkeypatch.setattr(GANRun, "end_of_epoch", original)
    for change, named in ((dict(batch_size=4), "batch_size"), (dict(limit=6), "limit"),
                          (dict(disc_strides=(1, 2, 2, 2)), "disc_strides")):
        with pytest.raises(UserError, match=named):
            train_gan(crops, split, dataclasses.replace(settings, **change), tmp_path / "g", tmp_path / "scores",
                      resume=True, verbose=0)
    with pytest.raises(UserError, match="interrupted run .* `overwrite`"):
        train_gan(crops, split, settings, tmp_path / "g", tmp_path / "scores", verbose=0)
    run = train_gan(crops, split, settings, tmp_path / "g", tmp_path / "scores", resume=True, verbose=0)
    assert run.history["epoch"] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["discriminator.keras", "generator.keras",
                                                                  "history.json"]
