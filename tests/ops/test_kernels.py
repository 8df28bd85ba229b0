"""Kernel generators, geometric helpers and loaders."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import correlate2d

from jaxdeblur import kernels as K
from jaxdeblur.forward import blur


def _moments(k):
    """Centre of mass (2,) and covariance (2, 2) of a kernel, in taps."""
    k = np.asarray(k, np.float64)
    yy, xx = np.mgrid[: k.shape[0], : k.shape[1]]
    pts = np.stack([yy.ravel(), xx.ravel()], axis=1)
    w = k.ravel() / k.sum()
    mean = w @ pts
    d = pts - mean
    return mean, (w[:, None] * d).T @ d


def _assert_kernel(k, shape):
    k = np.asarray(k)
    assert k.shape == shape and k.dtype == np.float32
    assert k.min() >= 0
    np.testing.assert_allclose(k.sum(axis=(-2, -1)), 1.0, atol=1e-5)


def test_gaussian_matches_closed_form():
    k = K.gaussian((7, 9), (1.5, 2.5))
    _assert_kernel(k, (7, 9))
    y = np.arange(7)[:, None] - 3
    x = np.arange(9)[None, :] - 4
    g = np.exp(-(y**2) / (2 * 1.5**2) - x**2 / (2 * 2.5**2))
    np.testing.assert_allclose(np.asarray(k), g / g.sum(), rtol=1e-5, atol=1e-8)
    assert np.unravel_index(np.argmax(K.gaussian(6, 1.0)), (6, 6)) == (3, 3)  # even size: peak on kh // 2


def test_gaussian_vmaps_over_sigma_and_checks():
    ks = jax.vmap(lambda s: K.gaussian(11, s))(jnp.array([0.5, 1.0, 2.0]))
    _assert_kernel(ks, (3, 11, 11))
    np.testing.assert_allclose(np.asarray(ks[1]), np.asarray(K.gaussian(11, 1.0)), atol=1e-7)
    with pytest.raises(ValueError, match="sigma"):
        K.gaussian(5, 0.0)
    with pytest.raises(ValueError, match="size"):
        K.gaussian((5, 0), 1.0)


def test_disk_is_antialiased_pillbox():
    k = K.disk(5.0)
    _assert_kernel(k, (11, 11))
    np.testing.assert_allclose(np.asarray(k), np.asarray(k).T, atol=1e-8)
    np.testing.assert_allclose(np.asarray(k), np.asarray(k)[::-1, ::-1], atol=1e-8)
    coverage = np.asarray(k) / np.asarray(k).max()  # interior taps are fully covered
    assert coverage.sum() == pytest.approx(math.pi * 25, rel=0.01)
    edge = coverage[5, 10]  # tap at distance 5 from the centre: about half covered
    assert 0.3 < edge < 0.7
    np.testing.assert_array_equal(np.asarray(K.disk(0.5)), [[1.0]])
    assert K.disk(2.6).shape == (7, 7)
    assert K.disk(3.0, size=(9, 5)).shape == (9, 5)
    with pytest.raises(ValueError, match="size"):
        jax.jit(lambda r: K.disk(r))(2.0)


# One compiled batch function for the motion tests that set the parameters (compiling is the slow part).
_motion_31 = jax.jit(
    jax.vmap(lambda key, length, anxiety, exposure: K.motion(key, 31, length=length, anxiety=anxiety, exposure=exposure))
)


def test_motion_kernels_are_valid_centred_and_vmappable():
    keys = jax.random.split(jax.random.key(0), 1000)
    ks = jax.vmap(lambda key: K.motion(key, 31))(keys)
    _assert_kernel(ks, (1000, 31, 31))
    com = np.asarray(K.center_of_mass(ks))
    np.testing.assert_allclose(com, 15.0, atol=2e-3)
    flat = np.asarray(ks).reshape(1000, -1)
    assert len(np.unique(flat.round(6), axis=0)) == 1000  # all different
    assert np.mean(flat.max(axis=1) < 0.9) > 0.99  # not collapsed to a point
    np.testing.assert_allclose(np.asarray(K.motion(keys[7], 31)), flat[7].reshape(31, 31), atol=1e-6)


def test_straight_motion_has_sub_pixel_length_and_exposure():
    length, n = 17.3, 256  # n: motion's default num_points

    def segment_variance(points):  # m equally spaced samples over the segment they span
        span = length * (points - 1) / (n - 1)
        return span**2 / 12 * (points + 1) / (points - 1)

    keys = jax.random.split(jax.random.key(1), 6)
    exposure = jnp.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    ks = _motion_31(keys, jnp.full(6, length), jnp.zeros(6), exposure)
    _assert_kernel(ks, (6, 31, 31))
    for k, e in zip(ks, exposure):
        minor, major = np.linalg.eigvalsh(_moments(k)[1])
        # Bilinear splatting adds between 0 and 1/4 of variance per axis.
        expected = segment_variance(n if e == 1 else n // 2)
        assert expected <= major < expected + 0.26
        assert minor < 0.26


def test_motion_parameters_can_be_traced_and_long_paths_shrink_to_fit():
    keys = jnp.stack([jax.random.key(2)] * 6)
    lengths = jnp.array([4.0, 8.0, 8.0, 20.0, 100.0, 100.0])
    anxiety = jnp.array([0.0, 0.0, 0.01, 0.005, 0.0, 0.01])
    ks = np.asarray(_motion_31(keys, lengths, anxiety, jnp.ones(6)))
    _assert_kernel(ks, (6, 31, 31))
    assert not np.allclose(ks[1], ks[2])
    np.testing.assert_allclose(np.asarray(K.center_of_mass(ks)), 15.0, atol=2e-3)
    # Too long for the support: shrunk about the centroid until it just fits (no mass lost).
    border = ks[4][:, 0].sum() + ks[4][:, -1].sum() + ks[4][0].sum() + ks[4][-1].sum()
    assert border > 0.001


def test_normalize_clips_and_handles_zero():
    k = jnp.array([[[-1.0, 2.0], [1.0, 1.0]], [[0.0, 0.0], [-3.0, 0.0]]])
    out = np.asarray(K.normalize(k))
    np.testing.assert_allclose(out[0], [[0, 0.5], [0.25, 0.25]])
    np.testing.assert_array_equal(out[1], [[0, 0], [0, 1]])  # identity kernel: delta on (kh//2, kw//2)


def test_center_moves_centre_of_mass():
    k = np.zeros((2, 15, 15), np.float32)
    k[0, 2:5, 3:6] = 1.0  # centre of mass (3, 4)
    k[1, 10, 11], k[1, 11, 12] = 0.7, 0.3  # centre of mass (10.3, 11.3)
    whole = np.asarray(K.center(k))
    _assert_kernel(whole, (2, 15, 15))
    np.testing.assert_allclose(whole[0, 6:9, 6:9], 1 / 9, atol=1e-6)  # moved without resampling
    np.testing.assert_allclose(np.asarray(K.center_of_mass(whole))[1], [7.3, 7.3], atol=1e-5)
    sub = np.asarray(K.center(k, subpixel=True))
    _assert_kernel(sub, (2, 15, 15))
    np.testing.assert_allclose(np.asarray(K.center_of_mass(sub)), 7.0, atol=1e-4)


def test_pad_to_and_crop_to_keep_the_centre_tap():
    k = np.arange(15, dtype=np.float32).reshape(3, 5)
    padded = np.asarray(K.pad_to(k, 9))
    assert padded.shape == (9, 9)
    assert padded[4, 4] == k[1, 2] and padded.sum() == k.sum()
    np.testing.assert_array_equal(padded[3:6, 2:7], k)  # symmetric for odd -> odd
    even = np.asarray(K.pad_to(np.ones((2, 2), np.float32), (4, 5)))
    assert even[2, 2] == 1 and even[1, 1] == 1 and even.sum() == 4  # tap (1, 1) -> (2, 2)
    batch = np.stack([k, 2 * k])
    np.testing.assert_array_equal(np.asarray(K.crop_to(K.pad_to(batch, (8, 10)), (3, 5))), batch)
    with pytest.raises(ValueError, match="crop_to"):
        K.pad_to(k, 2)
    with pytest.raises(ValueError, match="pad_to"):
        K.crop_to(k, 7)


@pytest.mark.parametrize(("size", "scale", "expected"), [(31, 0.5, 15), (31, 1 / math.sqrt(2), 21), (15, 2.0, 31), (16, 0.5, 8)])
def test_resize_keeps_sum_oddness_and_centre(size, scale, expected):
    k = K.gaussian(size, size / 8)
    out = K.resize(k, scale)
    assert K.resized_size(size, scale) == expected
    _assert_kernel(out, (expected, expected))
    mean, cov = _moments(out)
    np.testing.assert_allclose(mean, expected // 2, atol=1e-3 if size % 2 else 0.6)
    std = math.sqrt(cov[0, 0])
    assert std == pytest.approx(scale * size / 8, rel=0.15)


def test_resize_is_batched_and_checks_scale():
    ks = jax.vmap(lambda s: K.gaussian(21, s))(jnp.array([1.0, 2.0, 3.0]))
    out = K.resize(ks, 0.5)
    _assert_kernel(out, (3, 11, 11))
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(K.resize(ks[1], 0.5)), atol=1e-7)
    with pytest.raises(ValueError, match="scale"):
        K.resize(ks, 0.0)


def test_flip_turns_correlation_into_convolution():
    rng = np.random.default_rng(0)
    x = rng.random((12, 14), dtype=np.float32)
    k = rng.random((3, 5), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(blur(x, K.flip(k), "valid")), correlate2d(x, k, "valid"), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(K.flip(K.flip(k))), k)


def test_to_image():
    k = jnp.array([[[0.0, 0.2], [-0.1, 0.4]], [[0.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_allclose(np.asarray(K.to_image(k)), [[[0, 0.5], [0, 1]], [[0, 0], [0, 0]]])
