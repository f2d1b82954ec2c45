import numpy as np
import pytest

from mrisr.nets.imaging import (
    bone_rgba_to_grey,
    bone_table,
    cubic_weights,
    grey_to_bone_rgba,
    min_max_normalise,
    resize_cubic,
)


def test_cubic_weights_rows_sum_to_one():
    for in_size, out_size in ((25, 50), (50, 25), (37, 25), (7, 100)):
        np.testing.assert_allclose(cubic_weights(in_size, out_size).sum(axis=1), 1.0)


def test_cubic_upscale_by_two_hand_computed():
    # x2 upscaling samples at source position i/2 - 0.25: fraction 0.75 (even) and 0.25 (odd).
    # Keys kernel with a = -0.75 at distances 1.25, 0.25, 0.75, 1.75 (fraction 0.25).
    a = -0.75

    def kernel(d):
        d = abs(d)
        if d <= 1:
            return ((a + 2) * d - (a + 3)) * d * d + 1
        return a * (((d - 5) * d + 8) * d - 4)

    weights = cubic_weights(8, 16)
    expected = [kernel(1.25), kernel(0.25), kernel(0.75), kernel(1.75)]
    np.testing.assert_allclose(weights[5, 1:5], expected)  # output 5: source 2.25
    # Borders replicate: output 0 sits at -0.25, its taps -2..1 clamp onto pixels 0 and 1.
    assert weights[0, 2:].sum() == pytest.approx(0.0)


def test_resize_keeps_constant_and_linear_images():
    constant = np.full((25, 25), 7.0)
    np.testing.assert_allclose(resize_cubic(constant, (50, 50)), 7.0)
    ramp = np.tile(np.arange(40, dtype=float), (40, 1))
    out = resize_cubic(ramp, (20, 20))
    # Away from the borders a cubic kernel reproduces a linear ramp exactly (x = 2j + 0.5).
    np.testing.assert_allclose(out[5, 3:17], 2 * np.arange(3, 17) + 0.5)


def test_resize_matches_opencv_when_installed():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    image = rng.normal(size=(61, 47)).astype(np.float32)
    for size in ((25, 25), (50, 50), (100, 13)):
        expected = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(resize_cubic(image, size), expected, atol=1e-5)


def test_resize_channels():
    rng = np.random.default_rng(2)
    stack = rng.random((25, 25, 3))
    out = resize_cubic(stack, (50, 50))
    assert out.shape == (50, 50, 3)
    np.testing.assert_allclose(out[..., 1], resize_cubic(stack[..., 1], (50, 50)))


def test_min_max_normalise():
    out = min_max_normalise(np.array([[2.0, 4.0], [6.0, 10.0]]))
    np.testing.assert_allclose(out, [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(min_max_normalise(np.ones((3, 3))), 0)


def test_bone_table_is_matplotlibs_and_round_trips():
    import matplotlib

    table = bone_table()
    assert table.shape == (256, 4) and table.dtype == np.uint8
    np.testing.assert_array_equal(table[100], matplotlib.colormaps["bone"](100, bytes=True))
    grey = np.random.default_rng(3).random((30, 30))
    rgba = grey_to_bone_rgba(grey)
    assert rgba.shape == (30, 30, 4)
    np.testing.assert_allclose(bone_rgba_to_grey(rgba), grey, atol=1 / 256)
    np.testing.assert_allclose(bone_rgba_to_grey((rgba * 255).round().astype(np.uint8)), grey, atol=1 / 256)
