"""The benchmarks' shared helpers: FLOP counts by hand, and the kernel timings run for every layer kind."""

import math
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from machine import conv_kernel_seconds, conv_layers, layer_flops  # noqa: E402
from mrisr.models import paper_cnn, paper_discriminator, paper_generator  # noqa: E402


def test_layer_flops_of_the_paper_cnn_match_a_count_by_hand():
    keras.backend.clear_session()  # layer names (conv2d, dense) restart, whatever other tests built
    rows = {name.split(" ")[0]: (forward, training) for name, forward, training in layer_flops(paper_cnn())}
    first = 2 * 25 * 25 * 128 * 10 * 10 * 4  # multiply-adds of Conv2D(128, 10) on 25x25x4
    dense = 2 * 25 * 25 * 32 * 10000
    assert rows["conv2d"] == (first, 2 * first)  # the first layer needs no input gradient
    assert rows["dense"] == (dense, 3 * dense)
    assert len(rows) == 5
    assert sum(training for _, training in rows.values()) == pytest.approx(2.549e9, rel=1e-3)


def test_gan_flops_per_pair_follow_the_two_steps():
    from gan_throughput import flops_per_pair

    generator, discriminator = paper_generator(), paper_discriminator()
    total, g, d = flops_per_pair(generator, discriminator)
    discriminator_step = sum(g) + 2 * (3 * sum(d) - d[0])
    generator_step = 3 * sum(g) - g[0] + 2 * sum(d)
    assert total == discriminator_step + generator_step
    assert total / 1e9 == pytest.approx(3.32, abs=0.01)


@pytest.mark.parametrize("strides", [1, 2])
def test_conv_kernel_seconds_runs_every_kernel_of_a_layer(strides):
    model = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(5, 3, strides=strides, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    (layer,) = conv_layers(model)
    seconds = conv_kernel_seconds(layer, batch=2, repeats=1)
    forward = conv_kernel_seconds(layer, batch=2, input_gradient=False, filter_gradient=False, repeats=1)
    assert math.isfinite(seconds) and seconds > 0 and math.isfinite(forward) and forward > 0
    assert np.isclose(conv_kernel_seconds(layer, 2, False, False, False), 0.0)  # nothing asked, nothing timed
