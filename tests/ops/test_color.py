"""MATLAB-compatible YCbCr and BT.601 luma."""

import jax
import numpy as np
import pytest

from jaxdeblur.color import rgb_to_gray, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb

# MATLAB rgb2ycbcr on double input, computed by hand from its matrix (values x 255).
HAND = {
    (1.0, 1.0, 1.0): (235.0, 128.0, 128.0),
    (0.0, 0.0, 0.0): (16.0, 128.0, 128.0),
    (1.0, 0.0, 0.0): (16 + 65.481, 128 - 37.797, 128 + 112.0),
    (0.0, 1.0, 0.0): (16 + 128.553, 128 - 74.203, 128 - 93.786),
    (0.0, 0.0, 1.0): (16 + 24.966, 128 + 112.0, 128 - 18.214),
    (0.5, 0.25, 0.75): (
        16 + 65.481 * 0.5 + 128.553 * 0.25 + 24.966 * 0.75,
        128 - 37.797 * 0.5 - 74.203 * 0.25 + 112.0 * 0.75,
        128 + 112.0 * 0.5 - 93.786 * 0.25 - 18.214 * 0.75,
    ),
}


@pytest.mark.parametrize("rgb", list(HAND))
def test_rgb_to_ycbcr_matches_matlab_by_hand(rgb):
    got = np.asarray(rgb_to_ycbcr(np.array(rgb, np.float32))) * 255
    np.testing.assert_allclose(got, HAND[rgb], atol=1e-4)


def test_studio_range_of_y():
    assert float(rgb_to_y(np.ones(3, np.float32))) == pytest.approx(235 / 255, abs=1e-6)
    assert float(rgb_to_y(np.zeros(3, np.float32))) == pytest.approx(16 / 255, abs=1e-6)
    x = np.random.default_rng(0).random((50, 3), dtype=np.float32)
    y = np.asarray(rgb_to_y(x))
    assert y.shape == (50,)
    assert y.min() >= 16 / 255 - 1e-6 and y.max() <= 235 / 255 + 1e-6
    np.testing.assert_array_equal(y, np.asarray(rgb_to_ycbcr(x))[..., 0])


def test_round_trip_is_exact_for_batches():
    x = np.random.default_rng(1).random((2, 5, 7, 3), dtype=np.float32)
    ycc = rgb_to_ycbcr(x)
    assert ycc.shape == x.shape and ycc.dtype == np.float32
    np.testing.assert_allclose(np.asarray(ycbcr_to_rgb(ycc)), x, atol=1e-5)
    np.testing.assert_allclose(np.asarray(rgb_to_ycbcr(ycbcr_to_rgb(ycc))), np.asarray(ycc), atol=1e-5)


def test_ycbcr_to_rgb_of_studio_white_and_black():
    white = np.array([235, 128, 128], np.float32) / 255
    black = np.array([16, 128, 128], np.float32) / 255
    np.testing.assert_allclose(np.asarray(ycbcr_to_rgb(white)), [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(ycbcr_to_rgb(black)), [0, 0, 0], atol=1e-6)


def test_gray_is_full_range_bt601_not_studio_y():
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(rgb_to_gray(x)), [0.299, 0.587, 0.114, 1.0, 0.0], atol=1e-6)
    # The OpenCV trap: full-range luma differs from MATLAB's studio-range Y.
    assert abs(float(rgb_to_gray(x[4])) - float(rgb_to_y(x[4]))) > 0.06


def test_jit_and_input_checks():
    x = np.random.default_rng(2).random((4, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(jax.jit(rgb_to_ycbcr)(x)), np.asarray(rgb_to_ycbcr(x)), atol=1e-7)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rgb_to_ycbcr(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        ycbcr_to_rgb(np.zeros((4, 4, 1), np.float32))
    with pytest.raises(TypeError, match="255"):
        rgb_to_y(np.zeros((2, 3), np.uint8))
