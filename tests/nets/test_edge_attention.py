"""Tests of the gated edge-preserving attention (Nair & Patel, eq. 3-5)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import ndimage

from jaxdeblur.nets.edge_attention import (
    EdgePreservingAttention,
    GatedEdgeAttention,
    edge_preserving_attention,
    ring_buffer_init,
    ring_buffer_push,
)
from jaxdeblur.nets.functional import apply, split_module


def naive_attention(x, sigma_r, sigma_s, window, border):
    """Eq. 4 with explicit loops over pixels, channels and window positions (float64)."""
    x = np.asarray(x, np.float64)
    n, h, w, c = x.shape
    r = window // 2

    def mirror(i, size):  # reflection without repeating the edge pixel
        return -i if i < 0 else (2 * (size - 1) - i if i >= size else i)

    out = np.zeros_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    logits, values = [], []
                    for dy in range(-r, r + 1):
                        for dx in range(-r, r + 1):
                            ii, jj = i + dy, j + dx
                            if border == "truncate":
                                if not (0 <= ii < h and 0 <= jj < w):
                                    continue
                            else:
                                ii, jj = mirror(ii, h), mirror(jj, w)
                            fb = x[b, ii, jj, ch]
                            logits.append(
                                -((x[b, i, j, ch] - fb) ** 2) / (2 * sigma_r**2) - (dy * dy + dx * dx) / (2 * sigma_s**2)
                            )
                            values.append(fb)
                    logits = np.array(logits)
                    weights = np.exp(logits - logits.max())
                    out[b, i, j, ch] = np.sum(weights * np.array(values)) / weights.sum()
    return out


def stacked_attention(x, log_sigma_r, log_sigma_s, window, border):
    """Eq. 4 with all window positions stacked (O(p^2 HWC) memory), differentiated by plain autodiff."""
    n, h, w, c = x.shape
    r = window // 2
    padded = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect" if border == "reflect" else "edge")
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    neighbours = jnp.stack([padded[:, r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in offsets])
    dist2 = jnp.array([dy * dy + dx * dx for dy, dx in offsets], x.dtype)[:, None, None, None, None]
    logits = -0.5 * jnp.exp(-2 * log_sigma_r) * (x[None] - neighbours) ** 2 - 0.5 * jnp.exp(-2 * log_sigma_s) * dist2
    if border == "truncate":
        rows = np.arange(h)[None, :, None] + np.array([dy for dy, _ in offsets])[:, None, None]
        cols = np.arange(w)[None, None, :] + np.array([dx for _, dx in offsets])[:, None, None]
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        logits = jnp.where(inside[:, None, :, :, None], logits, -jnp.inf)
    return jnp.sum(jax.nn.softmax(logits, axis=0) * neighbours, axis=0)


def _features(shape, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


@pytest.mark.parametrize("window,border", [(3, "reflect"), (5, "reflect"), (5, "truncate"), (7, "truncate")])
def test_matches_naive_loops_including_borders(window, border):
    x = _features((2, 6, 7, 2))
    sigma_r, sigma_s = 0.7, 1.3
    got = edge_preserving_attention(x, math.log(sigma_r), math.log(sigma_s), window=window, border=border)
    want = naive_attention(x, sigma_r, sigma_s, window, border)
    assert got.shape == x.shape
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("border", ["reflect", "truncate"])
def test_custom_gradient_matches_autodiff_of_stacked_form(border):
    x = _features((1, 6, 7, 3), seed=1)
    log_r, log_s = jnp.log(0.8), jnp.log(1.2)
    cotangent = _features(x.shape, seed=2)

    def loss(fn):
        return lambda x, a, b: jnp.sum(cotangent * fn(x, a, b))

    ours = jax.grad(loss(lambda x, a, b: edge_preserving_attention(x, a, b, window=5, border=border)), (0, 1, 2))
    ref = jax.grad(loss(lambda x, a, b: stacked_attention(x, a, b, 5, border)), (0, 1, 2))
    for g, want in zip(jax.jit(ours)(x, log_r, log_s), jax.jit(ref)(x, log_r, log_s)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_limits_identity_and_box_filter():
    x = _features((1, 8, 9, 2), seed=3)
    # Tiny sigma_s: only the centre has weight -> identity.
    np.testing.assert_allclose(edge_preserving_attention(x, 0.0, math.log(1e-2), window=5), x, atol=1e-6)
    # Huge sigmas: uniform weights -> 5x5 box mean with mirror borders.
    box = ndimage.uniform_filter(np.asarray(x, np.float64), size=(1, 5, 5, 1), mode="mirror")
    np.testing.assert_allclose(edge_preserving_attention(x, 10.0, 10.0, window=5), box, atol=1e-5)


def test_preserves_step_edge_and_smooths_flat_noise():
    rng = np.random.default_rng(0)
    step = np.where(np.arange(16) < 8, 0.0, 1.0)[None, None, :, None] * np.ones((1, 12, 16, 1))
    noisy = jnp.asarray(step + 0.02 * rng.standard_normal(step.shape), jnp.float32)
    out = np.asarray(edge_preserving_attention(noisy, math.log(0.1), math.log(1.5), window=5))
    assert np.abs(out - step).max() < 0.06  # the unit jump is kept ...
    assert np.std(out - step) < 0.6 * np.std(np.asarray(noisy) - step)  # ... and the noise is reduced


def test_module_params_gradients_finite_nonzero_and_pure():
    attn = EdgePreservingAttention(3, window=5, init_sigma_r=0.6, init_sigma_s=1.4)
    np.testing.assert_allclose(attn.sigma_r, 0.6, rtol=1e-6)
    np.testing.assert_allclose(attn.sigma_s, 1.4, rtol=1e-6)
    graphdef, params, state = split_module(attn)
    x = _features((1, 6, 7, 3), seed=4)

    def loss(p):
        out, _ = apply(graphdef, p, state, x)
        return jnp.mean((out - x[..., ::-1]) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    for name in ("log_sigma_r", "log_sigma_s"):
        g = float(grads[name][...])
        assert math.isfinite(g) and g != 0.0, (name, g)
    # Pure: vmapped over two stacked feature sets equals two separate calls.
    xs = jnp.stack([x, 2.0 * x])
    batched = jax.vmap(lambda f: apply(graphdef, params, state, f)[0])(xs)
    for k in range(2):
        np.testing.assert_allclose(batched[k], apply(graphdef, params, state, xs[k])[0], atol=1e-6)


def test_input_validation():
    x = _features((1, 6, 7, 2))
    with pytest.raises(ValueError, match="odd"):
        edge_preserving_attention(x, 0.0, 0.0, window=4)
    with pytest.raises(ValueError, match="border"):
        edge_preserving_attention(x, 0.0, 0.0, border="zeros")
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        edge_preserving_attention(x[0], 0.0, 0.0)
    with pytest.raises(ValueError, match="reflect border"):
        edge_preserving_attention(x, 0.0, 0.0, window=13)
    assert edge_preserving_attention(x, 0.0, 0.0, window=13, border="truncate").shape == x.shape
    with pytest.raises(TypeError, match="floating"):
        edge_preserving_attention(jnp.ones((1, 6, 7, 2), jnp.int32), 0.0, 0.0)
    with pytest.raises(ValueError, match="scalars"):
        edge_preserving_attention(x, jnp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="positive"):
        EdgePreservingAttention(2, init_sigma_r=0.0)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        EdgePreservingAttention(3)(x)


def _gated(history=2):
    return GatedEdgeAttention(4, image_channels=1, window=3, history=history, gate_hidden=5, rngs=nnx.Rngs(0))


def test_gate_is_convex_combination_of_attention_and_conv():
    graphdef, params, state = split_module(_gated())
    features = _features((1, 6, 7, 4), seed=5)
    past = jax.random.uniform(jax.random.PRNGKey(6), (2, 1, 6, 7, 1))

    @jax.jit
    def parts(past):
        call = functools.partial(apply, graphdef, params, state)
        return (call(features, past, method="gate")[0], call(features, past)[0],
                call(features, method="attention")[0], call(features, method="conv")[0])

    w1, out, attended, convolved = parts(past)
    assert w1.shape == out.shape == features.shape
    assert float(w1.min()) > 0.0 and float(w1.max()) < 1.0
    np.testing.assert_allclose(out, w1 * attended + (1 - w1) * convolved, atol=1e-6)
    # The gate depends on the history, which is treated as a constant.
    assert float(jnp.abs(parts(past[::-1])[0] - w1).max()) > 1e-4
    g_hist = jax.jit(jax.grad(lambda h: jnp.sum(parts(h)[1])))(past)
    assert float(jnp.abs(g_hist).max()) == 0.0


def test_gated_module_gradients_through_split_merge():
    graphdef, params, state = split_module(_gated())
    features = _features((1, 6, 7, 4), seed=7)
    past = ring_buffer_init(2, (1, 6, 7, 1))
    grads = jax.jit(jax.grad(lambda p: jnp.mean(apply(graphdef, p, state, features, past)[0] ** 2)))(params)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    for name in ("log_sigma_r", "log_sigma_s"):
        assert float(grads["attention"][name][...]) != 0.0


def test_gated_input_validation():
    gated = _gated()
    features = _features((1, 6, 7, 4))
    with pytest.raises(ValueError, match="history must be"):
        gated(features, jnp.zeros((1, 6, 7, 2)))  # (N, H, W, m * C) is not the buffer layout
    with pytest.raises(ValueError, match="history must be"):
        gated(features, jnp.zeros((3, 1, 6, 7, 1)))
    with pytest.raises(ValueError, match="features must be"):
        gated(features[..., :3], jnp.zeros((2, 1, 6, 7, 1)))
    with pytest.raises(ValueError, match="history must be a positive int"):
        _gated(history=0)


def test_ring_buffer_keeps_last_m_newest_first():
    buf = ring_buffer_init(3, (2, 2))
    assert buf.shape == (3, 2, 2) and float(jnp.abs(buf).max()) == 0.0
    push = jax.jit(ring_buffer_push)
    for k in range(1, 6):
        buf = push(buf, jnp.full((2, 2), float(k)))
        want = [max(k - i, 0) for i in range(3)]  # newest first, zeros before the start
        np.testing.assert_array_equal(buf[:, 0, 0], want)
    # Same inside a scan (static shapes, pure).
    xs = jnp.arange(1.0, 6.0)[:, None, None] * jnp.ones((5, 2, 2))
    scanned, _ = jax.lax.scan(lambda b, x: (ring_buffer_push(b, x), None), ring_buffer_init(3, (2, 2)), xs)
    np.testing.assert_array_equal(scanned, buf)
    with pytest.raises(ValueError, match="entry shape"):
        ring_buffer_push(buf, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive int"):
        ring_buffer_init(0, (2,))
