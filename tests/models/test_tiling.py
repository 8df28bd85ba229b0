"""Tiled application of an image-to-image function equals the whole-image one for a local function."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur.forward import blur
from jaxdeblur.models.tiling import tiled_apply


def test_local_function_tiles_exactly():
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 37, 29, 1)), jnp.float32)
    k = jnp.ones((5, 5)) / 25.0

    def fn(t):
        return blur(t, k, "replicate")

    np.testing.assert_allclose(tiled_apply(fn, x, tile=8, margin=2), fn(x), atol=1e-5)
    np.testing.assert_allclose(tiled_apply(fn, x, tile=64, margin=2), fn(x), atol=1e-6)  # whole image
    with pytest.raises(ValueError, match="tile"):
        tiled_apply(fn, x, tile=0)
