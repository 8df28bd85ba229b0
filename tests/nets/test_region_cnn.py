"""RegionCNN: the paper's ResNet34 layout with strided convolutions instead of pooling, and the cpu variant."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.nets.region_cnn import RegionCNN


def _params(model) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_paper_layout_is_resnet34_without_pooling():
    model = nnx.eval_shape(lambda: RegionCNN(rngs=nnx.Rngs(0)))
    assert len(model.layers) == 3 + 4 + 6 + 3
    # ResNet34 has 21.8 M parameters with 3 input channels and 1000 classes; gray input, one logit and the
    # 3 x 3 strided conv in place of the max-pool (64 x 64 x 9 = 36,864 weights + BatchNorm) give 21.3 M.
    assert 21.2e6 < _params(model) < 21.4e6


def test_small_variant_gives_one_logit_per_window_of_any_size():
    model = RegionCNN(blocks=(1, 1), widths=(4, 8), stem_width=4, stem_kernel=3, rngs=nnx.Rngs(0))
    model.eval()
    x = jax.random.uniform(jax.random.key(0), (3, 24, 24))
    logits = model(x)
    assert logits.shape == (3,) and bool(jnp.all(jnp.isfinite(logits)))
    assert model(x[..., None]).shape == (3,) and model(jnp.ones((2, 40, 32))).shape == (2,)
    np.testing.assert_allclose(model(x + 0.2), logits, atol=1e-5)  # windows are centred: brightness-invariant
    with pytest.raises(ValueError, match="expects windows"):
        model(jnp.ones((2, 24, 24, 3)))
    with pytest.raises(ValueError, match="equally long"):
        RegionCNN(blocks=(1,), widths=(4, 8), rngs=nnx.Rngs(0))
