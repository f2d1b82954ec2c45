"""The benchmarks' shared helpers: FLOP counts by hand, and the kernel timings run for every layer kind."""

import math

import keras
import numpy as np
import pytest

from benchmarks.machine import conv_kernel_seconds, conv_kernels, conv_layers, layer_flops
from mrisr.nets.models import paper_cnn, paper_discriminator, paper_generator
from tests.conftest import ROOT


def test_layer_flops_of_the_paper_cnn_match_a_count_by_hand():
    keras.backend.clear_session()  # layer names (conv2d, dense) restart, whatever other tests built
    rows = {name.split(" ")[0]: (forward, training) for name, forward, training in layer_flops(paper_cnn())}
    first = 2 * 25 * 25 * 128 * 10 * 10 * 4  # multiply-adds of Conv2D(128, 10) on 25x25x4
    dense = 2 * 25 * 25 * 32 * 10000
    assert rows["conv2d"] == (first, 2 * first)  # the first layer needs no input gradient
    assert rows["dense"] == (dense, 3 * dense)
    assert len(rows) == 5
    assert sum(training for _, training in rows.values()) == pytest.approx(2.549e9, rel=1e-3)


@pytest.mark.parametrize("build", [paper_generator, paper_discriminator])
def test_layer_flops_agree_with_tensorflows_own_count(build):
    """TensorFlow's profiler counts the forward graph's floating-point operations (bias additions and
    activations too, which layer_flops leaves out: a few tenths of a percent)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    model = build()
    graph = tf.function(lambda x: model(x, training=False), autograph=False).get_concrete_function(
        tf.TensorSpec((1,) + model.input_shape[1:], tf.float32)).graph
    options = {**option_builder.ProfileOptionBuilder.float_operation(), "output": "none"}
    counted = model_analyzer.profile(graph, options=options).total_float_ops
    ours = sum(forward for _, forward, _ in layer_flops(model))
    assert ours <= counted <= 1.005 * ours


def test_gan_flops_per_pair_are_the_hand_count():
    from benchmarks.gan_throughput import flops_per_pair

    # Per pair: the discriminator step (generator forward; discriminator forward, weight and input
    # gradients on the real and the fake image) and the generator step: 3.32 GFLOP at the paper's sizes.
    total, _, _ = flops_per_pair(paper_generator(), paper_discriminator())
    assert total / 1e9 == pytest.approx(3.32, abs=0.01)


@pytest.mark.parametrize("strides", [1, 2])
def test_the_timed_kernels_are_the_layers_convolution_and_its_two_gradients(strides):
    import tensorflow as tf

    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(5, 3, strides=strides, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    (layer,) = conv_layers(model)
    kernels, (images, kernel, output_gradient) = conv_kernels(layer, batch=2)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        tape.watch(kernel)
        output = keras.ops.conv(images, kernel, strides=strides, padding="same")
        weighted = tf.reduce_sum(output * output_gradient)
    np.testing.assert_allclose(kernels["forward"](), output, rtol=1e-5)
    np.testing.assert_allclose(kernels["input_gradient"](), tape.gradient(weighted, images), rtol=1e-5)
    np.testing.assert_allclose(kernels["filter_gradient"](), tape.gradient(weighted, kernel), rtol=1e-4)
    seconds = conv_kernel_seconds(layer, batch=2, repeats=1)
    assert math.isfinite(seconds) and seconds > 0
    assert list(conv_kernels(layer, 2, forward=False, filter_gradient=False)[0]) == ["input_gradient"]
    with pytest.raises(ValueError, match="no kernel"):
        conv_kernels(layer, 2, False, False, False)


@pytest.mark.parametrize("name", sorted(path.stem for path in (ROOT / "benchmarks").glob("*.py")
                                        if path.stem != "__init__"))
def test_every_benchmark_imports_and_its_options_parse(name, capsys):
    """Each benchmark script imports, and the ones with a parser answer --help (exit 0)."""
    import importlib

    module = importlib.import_module(f"benchmarks.{name}")
    if hasattr(module, "build_parser"):
        with pytest.raises(SystemExit) as finished:
            module.build_parser().parse_args(["--help"])
        assert finished.value.code == 0 and "usage" in capsys.readouterr().out


def test_the_through_plane_step_flops_match_a_count_by_hand():
    from benchmarks.through_plane_speed import step_flops
    from mrisr.scans.through_plane import Recipe

    recipe = Recipe(channels=8, blocks=1, batch_size=2, thick_length=3, width=5)
    pixels = 3 * 5 * 9 * 2  # a 3x3 multiply-add per output pixel is 2 FLOPs per input channel
    first = pixels * 5 * 8  # 1 + F = 5 channels in (F = 4)
    middle = pixels * 8 * 8  # each of the block's two convolutions
    last = pixels * 8 * 4  # out: F sub-slices
    # training: forward + the weights' gradient (+ the input's gradient but for the first layer), batch 2
    by_hand = 2 * (2 * first + 3 * (2 * middle) + 3 * last)
    assert step_flops(recipe, 4) == by_hand


def test_a_peers_output_on_another_grid_is_read_at_the_truths_voxel_centres():
    """ECLARE's output may sit on its own grid: it is sampled at the reference's voxel centres in world
    coordinates. A linear function of world position, stored on a coarser, shifted grid, reads back
    exactly (linear interpolation is exact for it) inside the coarse grid."""
    import nibabel

    from benchmarks.peers import on_grid

    def world_function(affine, shape):
        grid = np.indices(shape, dtype=np.float64).reshape(3, -1)
        x, y, z = affine[:3, :3] @ grid + affine[:3, 3:]
        return (x + 2 * y - 3 * z).reshape(shape).astype(np.float32)

    reference_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    reference_affine[:3, 3] = [-4.0, -5.0, -3.0]
    reference = nibabel.Nifti1Image(np.zeros((8, 10, 6), np.float32), reference_affine)
    coarse_affine = np.diag([1.0, 2.0, 1.0, 1.0])
    coarse_affine[:3, 3] = [-4.0, -5.5, -3.0]  # half a fine voxel before the reference's first centre
    coarse = nibabel.Nifti1Image(world_function(coarse_affine, (8, 6, 6)), coarse_affine)
    sampled = on_grid(coarse, reference)
    assert sampled.shape == reference.shape
    np.testing.assert_allclose(sampled, world_function(reference_affine, reference.shape), atol=1e-4)
    # on the reference's own grid the data come back as they are
    same = nibabel.Nifti1Image(world_function(reference_affine, (8, 10, 6)), reference_affine)
    np.testing.assert_array_equal(on_grid(same, reference), same.get_fdata(dtype=np.float32))


def test_the_machine_line_says_when_onednn_is_capped(monkeypatch):
    from benchmarks.machine import describe_machine

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert "capped" not in describe_machine()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    assert "capped" not in describe_machine()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert ", oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA)," in describe_machine()


def test_eclare_runs_with_the_box_profile_the_patches_and_the_gpu_it_is_given(tmp_path):
    """run_eclare calls ECLARE's program as its own environment holds it: the known box profile (F - 1 full
    taps and two half taps, summing to 1), the patches asked for, and --gpu-id only where a GPU is named.
    A stand-in program records its arguments and writes the output where ECLARE would."""
    from benchmarks.peers import run_eclare

    venv = tmp_path / "eclare"
    (venv / "bin").mkdir(parents=True)
    program = venv / "bin" / "run-eclare"
    program.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/arguments"\n'
                       'while [ $# -gt 0 ]; do [ "$1" = --out-dir ] && touch "$2/thick_eclare.nii.gz"; shift; done\n')
    program.chmod(0o755)
    thick = tmp_path / "thick.nii.gz"
    _, output = run_eclare(venv, thick, tmp_path / "out", 4, 1_000_000, gpu=0)
    arguments = (venv / "bin" / "arguments").read_text().split()
    assert output == tmp_path / "out" / "thick_eclare.nii.gz" and output.exists()
    assert arguments[arguments.index("--n-patches") + 1] == "1000000"
    assert arguments[arguments.index("--gpu-id") + 1] == "0"
    assert float(arguments[arguments.index("--relative-slice-thickness") + 1]) == 4.0
    kernel = np.load(arguments[arguments.index("--relative-slice-profile-fpath") + 1])
    np.testing.assert_allclose(kernel, [0.125, 0.25, 0.25, 0.25, 0.125])
    run_eclare(venv, thick, tmp_path / "cpu", 2, 128)
    arguments = (venv / "bin" / "arguments").read_text().split()
    assert "--gpu-id" not in arguments and arguments[arguments.index("--n-patches") + 1] == "128"
