"""Tests of jaxdeblur.forward: conventions against scipy, FFT == direct, adjoint, grads, OTF, spatially varying."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sps

from jaxdeblur.forward import (
    METHODS,
    MODES,
    blur,
    blur_adjoint,
    blur_spatially_varying,
    correlate,
    kernel_to_otf,
)

SCIPY_MODE = {"same": "constant", "circular": "wrap", "reflect": "mirror", "replicate": "nearest"}
KERNEL_SHAPES = [(3, 3), (4, 4), (5, 2), (1, 6), (7, 4)]


def rand(rng, *shape):
    return rng.random(shape, dtype=np.float32)


def reference_blur(x2, k, mode):
    """Plain scipy true convolution of one (H, W) image, float64."""
    x2, k = np.float64(x2), np.float64(k)
    if mode == "valid":
        return sps.convolve2d(x2, k, mode="valid")
    return ndi.convolve(x2, k, mode=SCIPY_MODE[mode])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", KERNEL_SHAPES)
def test_blur_matches_scipy_and_methods_agree(rng, mode, kshape):
    x = rand(rng, 13, 11, 2)
    k = rand(rng, *kshape)
    expected = np.stack([reference_blur(x[..., c], k, mode) for c in range(2)], axis=-1)
    for method in METHODS:
        out = blur(x, k, mode, method=method)
        assert out.dtype == jnp.float32
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_layouts_2d_3d_4d(rng, mode):
    x = rand(rng, 3, 10, 12, 2)
    k = rand(rng, 3, 4)
    out4 = blur(x, k, mode)
    np.testing.assert_allclose(blur(x[1], k, mode), out4[1], atol=1e-6)
    np.testing.assert_allclose(blur(x[1, :, :, 0], k, mode), out4[1, :, :, 0], atol=1e-6)
    expected_hw = (10 - 3 + 1, 12 - 4 + 1) if mode == "valid" else (10, 12)
    assert out4.shape == (3, *expected_hw, 2)


@pytest.mark.parametrize("mode", MODES)
def test_per_image_kernels(rng, mode):
    x = rand(rng, 3, 12, 10, 2)
    k = rand(rng, 3, 4, 5)
    for method in ("fft", "direct"):
        out = blur(x, k, mode, method=method)
        for n in range(3):
            ref = np.stack([reference_blur(x[n, :, :, c], k[n], mode) for c in range(2)], axis=-1)
            np.testing.assert_allclose(out[n], ref, atol=1e-5, rtol=0)


def test_valid_shape_and_kernel_centre_same_modes(rng):
    x = np.zeros((9, 9), np.float32)
    x[4, 4] = 1.0
    k = rand(rng, 4, 4)
    # A centred impulse reproduces the kernel with its centre (kh//2, kw//2) on the impulse.
    out = np.asarray(blur(x, k, "same", method="direct"))
    np.testing.assert_allclose(out[4 - 2 : 4 + 2, 4 - 2 : 4 + 2], k, atol=1e-6)
    assert blur(rand(rng, 20, 17), k, "valid").shape == (17, 14)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", [(3, 3), (4, 5)])
def test_correlate_is_blur_with_rotated_kernel(rng, mode, kshape):
    x = rand(rng, 11, 12)
    k = rand(rng, *kshape)
    np.testing.assert_allclose(correlate(x, k, mode), blur(x, k[::-1, ::-1], mode), atol=1e-6)
    if mode == "valid":
        np.testing.assert_allclose(correlate(x, k, mode), sps.correlate2d(x, k, mode="valid"), atol=1e-5)


@pytest.mark.parametrize("mode", ["same", "circular", "reflect", "replicate"])
def test_correlate_odd_kernel_matches_scipy_correlate(rng, mode):
    x, k = rand(rng, 11, 12), rand(rng, 5, 3)
    np.testing.assert_allclose(
        correlate(x, k, mode), ndi.correlate(np.float64(x), np.float64(k), mode=SCIPY_MODE[mode]), atol=1e-5
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["fft", "direct"])
def test_adjoint_identity(rng, mode, method):
    x = rand(rng, 2, 12, 10, 3)
    for k in (rand(rng, 4, 3), rand(rng, 2, 5, 4)):  # shared and per-image kernels
        ax = blur(x, k, mode, method=method)
        y = rand(rng, *ax.shape)
        aty = blur_adjoint(y, k, x.shape, mode, method=method)
        assert aty.shape == x.shape
        lhs = float(jnp.vdot(ax, y))
        rhs = float(jnp.vdot(x, aty))
        assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_adjoint_valid_is_full_correlation(rng):
    y, k = rand(rng, 8, 9), rand(rng, 4, 3)
    np.testing.assert_allclose(blur_adjoint(y, k, (11, 11)), sps.correlate2d(y, k, mode="full"), atol=1e-5)


def test_adjoint_rejects_wrong_y_shape(rng):
    with pytest.raises(ValueError, match="blur of an x of shape"):
        blur_adjoint(rand(rng, 10, 10), rand(rng, 3, 3), (10, 10), "valid")


@pytest.mark.parametrize("mode", MODES)
def test_gradients_agree_between_methods(rng, mode):
    x = jnp.asarray(rand(rng, 10, 12, 2))
    k = jnp.asarray(rand(rng, 4, 3))
    w = jnp.asarray(rand(rng, *blur(x, k, mode).shape))

    def loss(x, k, method):
        return jnp.sum(w * blur(x, k, mode, method=method) ** 2)

    gx_f, gk_f = jax.grad(loss, argnums=(0, 1))(x, k, "fft")
    gx_d, gk_d = jax.grad(loss, argnums=(0, 1))(x, k, "direct")
    np.testing.assert_allclose(gx_f, gx_d, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gk_f, gk_d, rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(gk_d).sum()) > 0


def test_gradient_matches_finite_difference(rng):
    x = jnp.asarray(rand(rng, 9, 9))
    k = jnp.asarray(rand(rng, 3, 3))

    def loss(k):
        return jnp.sum(jnp.sin(blur(x, k, "reflect", method="fft")))

    g = jax.grad(loss)(k)
    eps = 1e-2
    e = jnp.zeros_like(k).at[1, 2].set(eps)
    fd = (loss(k + e) - loss(k - e)) / (2 * eps)
    np.testing.assert_allclose(g[1, 2], fd, rtol=2e-2)


def test_jit_and_vmap(rng):
    x = jnp.asarray(rand(rng, 4, 12, 12))
    k = jnp.asarray(rand(rng, 4, 3, 3))
    jitted = jax.jit(blur, static_argnames=("mode", "method"))
    np.testing.assert_allclose(jitted(x[0], k[0], "reflect"), blur(x[0], k[0], "reflect"), atol=1e-6)
    vmapped = jax.vmap(lambda xi, ki: blur(xi, ki, "circular"))(x, k)
    batched = blur(x[..., None], k, "circular")[..., 0]
    np.testing.assert_allclose(vmapped, batched, atol=1e-6)


def test_invalid_inputs(rng):
    x, k = rand(rng, 8, 8), rand(rng, 3, 3)
    with pytest.raises(ValueError, match="larger than the image"):
        blur(x, rand(rng, 9, 3), "valid")
    assert blur(x, rand(rng, 9, 3), "same").shape == (8, 8)  # fine in same-size modes
    with pytest.raises(ValueError, match="x must have shape"):
        blur(rand(rng, 8), k)
    with pytest.raises(ValueError, match="x must have shape"):
        blur(rand(rng, 1, 2, 8, 8, 1), k)
    with pytest.raises(ValueError, match="k must have shape"):
        blur(x, rand(rng, 3))
    with pytest.raises(ValueError, match="per-image kernels"):
        blur(rand(rng, 8, 8, 1), rand(rng, 2, 3, 3))
    with pytest.raises(ValueError, match="per-image kernels"):
        blur(rand(rng, 3, 8, 8, 1), rand(rng, 2, 3, 3))
    with pytest.raises(ValueError, match="mode must be"):
        blur(x, k, "wrap")
    with pytest.raises(ValueError, match="method must be"):
        blur(x, k, method="fast")
    with pytest.raises(TypeError, match="floating"):
        blur(np.zeros((8, 8), np.uint8), k)


@pytest.mark.parametrize("kshape", [(5, 5), (4, 6)])
def test_kernel_to_otf_is_circular_blur(rng, kshape):
    x, k = rand(rng, 12, 15), rand(rng, *kshape)
    otf = kernel_to_otf(k, x.shape)
    assert otf.shape == (12, 15 // 2 + 1)
    circ = jnp.fft.irfft2(jnp.fft.rfft2(x) * otf, s=x.shape)
    np.testing.assert_allclose(circ, blur(x, k, "circular", method="direct"), atol=1e-5)
    batched = kernel_to_otf(np.stack([k, 2 * k]), x.shape)
    np.testing.assert_allclose(batched[1], 2 * otf, atol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        kernel_to_otf(k, (3, 20))


def naive_spatially_varying(x, kmap):
    """Loop reference: per-pixel true convolution with edge padding, x (H, W, C)."""
    h, w, _ = x.shape
    kh, kw = kmap.shape[2:]
    xp = np.pad(x, ((kh - 1 - kh // 2, kh // 2), (kw - 1 - kw // 2, kw // 2), (0, 0)), mode="edge")
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            patch = xp[i : i + kh, j : j + kw][::-1, ::-1]  # patch[a, b] = xp[i + kh-1-a, j + kw-1-b]
            out[i, j] = np.einsum("ab,abc->c", kmap[i, j], patch)
    return out


@pytest.mark.parametrize("kshape", [(3, 3), (4, 5)])
def test_spatially_varying_matches_loop_reference(rng, kshape):
    x = rand(rng, 7, 9, 2)
    kmap = rand(rng, 7, 9, *kshape)
    np.testing.assert_allclose(blur_spatially_varying(x, kmap), naive_spatially_varying(x, kmap), atol=1e-5)


@pytest.mark.parametrize("kshape", [(5, 5), (4, 3)])
def test_spatially_varying_uniform_map_is_replicate_blur(rng, kshape):
    x = rand(rng, 2, 11, 10, 3)
    k = rand(rng, *kshape)
    kmap = np.broadcast_to(k, (11, 10, *kshape))
    np.testing.assert_allclose(blur_spatially_varying(x, kmap), blur(x, k, "replicate"), atol=1e-5)
    np.testing.assert_allclose(blur_spatially_varying(x[0, :, :, 1], kmap), blur(x[0, :, :, 1], k, "replicate"), atol=1e-5)


def test_spatially_varying_chunked_equals_unchunked_and_grads(rng):
    x = jnp.asarray(rand(rng, 10, 8, 2))
    kmap = jnp.asarray(rand(rng, 10, 8, 3, 4))
    full = blur_spatially_varying(x, kmap, rows_per_chunk=10)
    for rows in (1, 3, 4, None):
        np.testing.assert_allclose(blur_spatially_varying(x, kmap, rows_per_chunk=rows), full, atol=1e-6)

    def loss(x, kmap, rows):
        return jnp.sum(blur_spatially_varying(x, kmap, rows_per_chunk=rows) ** 2)

    g_full = jax.grad(loss, argnums=(0, 1))(x, kmap, 10)
    g_chunk = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(x, kmap, 3)
    for a, b in zip(g_full, g_chunk):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_spatially_varying_per_image_maps(rng):
    x = rand(rng, 2, 6, 7, 3)
    kmap = rand(rng, 2, 6, 7, 3, 3)
    out = blur_spatially_varying(x, kmap, rows_per_chunk=4)
    for n in range(2):
        np.testing.assert_allclose(out[n], blur_spatially_varying(x[n], kmap[n]), atol=1e-6)


def test_spatially_varying_invalid_inputs(rng):
    with pytest.raises(ValueError, match="spatial size"):
        blur_spatially_varying(rand(rng, 6, 7), rand(rng, 7, 6, 3, 3))
    with pytest.raises(ValueError, match="per-image kernel maps"):
        blur_spatially_varying(rand(rng, 6, 7, 1), rand(rng, 2, 6, 7, 3, 3))
    with pytest.raises(ValueError, match="kmap must have shape"):
        blur_spatially_varying(rand(rng, 6, 7), rand(rng, 6, 7, 9))
    with pytest.raises(ValueError, match="rows_per_chunk"):
        blur_spatially_varying(rand(rng, 6, 7), rand(rng, 6, 7, 3, 3), rows_per_chunk=0)
