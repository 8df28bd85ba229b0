"""The loop-friendly convolution: same values and gradients as lax's, any stride and size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxdeblur.nets.conv import conv_general_dilated, conv_nhwc

SPEC = ("NHWC", "HWIO", "NHWC")


def _lax_conv(x, w, strides):
    return lax.conv_general_dilated(x, w, strides, "VALID", dimension_numbers=SPEC)


@pytest.mark.parametrize("shape, kernel, strides", [
    ((2, 9, 9, 3), (3, 3), (1, 1)),
    ((1, 10, 7, 2), (3, 2), (2, 2)),   # strides that leave rows and columns unused
    ((1, 11, 12, 4), (1, 1), (1, 1)),
    ((2, 13, 13, 2), (3, 3), (2, 1)),
    ((1, 12, 11, 3), (2, 3), (3, 2)),  # a kernel smaller than the stride: phases no tap reaches
    ((1, 9, 8, 2), (1, 1), (2, 2)),
])
def test_values_and_gradients_match_lax(shape, kernel, strides):
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, (*kernel, shape[-1], 5))
    out = conv_nhwc(x, w, strides)
    np.testing.assert_allclose(out, _lax_conv(x, w, strides), rtol=1e-5, atol=1e-5)
    g = jax.random.normal(kg, out.shape)
    ours = jax.grad(lambda x, w: jnp.sum(g * conv_nhwc(x, w, strides)), (0, 1))(x, w)
    ref = jax.grad(lambda x, w: jnp.sum(g * _lax_conv(x, w, strides)), (0, 1))(x, w)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_general_entry_point_routes_only_the_simple_case():
    x = jax.random.normal(jax.random.key(1), (1, 8, 8, 4))
    w = jax.random.normal(jax.random.key(2), (3, 3, 2, 4))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, SPEC)
    # grouped + SAME padding: handled by lax itself, identical result
    grouped = conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn, feature_group_count=2)
    np.testing.assert_array_equal(grouped, lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn,
                                                                     feature_group_count=2))
    w1 = jax.random.normal(jax.random.key(3), (3, 3, 4, 2))
    jaxpr = str(jax.make_jaxpr(lambda x: conv_general_dilated(x, w1, (1, 1), "VALID", dimension_numbers=dn))(x))
    assert "custom_vjp" in jaxpr


def test_other_backends_get_plain_lax(monkeypatch):
    """The CPU-specific gradient is gated: on a GPU / TPU backend the call is lax's, traced as it is."""
    x = jax.random.normal(jax.random.key(1), (1, 8, 8, 4))
    w = jax.random.normal(jax.random.key(3), (3, 3, 4, 2))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, SPEC)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    jaxpr = str(jax.make_jaxpr(lambda x: conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=dn))(x))
    assert "custom_vjp" not in jaxpr and "conv_general_dilated" in jaxpr
