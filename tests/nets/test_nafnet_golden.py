"""Golden fidelity test: jaxdeblur's NAFNet reproduces the authors' PyTorch NAFNet (no torch needed).

The fixture (tests/nets/fixtures/nafnet_golden.npz) was written once by
experiments/make_nafnet_golden.py with experiments/torch_nafnet.py (the
authors' module tree and state-dict names, checked equal to their
NAFNet_arch.py): a tiny RGB NAFNet (width 4, two levels) with random
LayerNorm and beta / gamma, a 2 x 3 x 13 x 18 batch (padded to 16 x 20 inside),
the float64 output and the gradients of the MSE to a random target. The
weights go through the importer's mapping (`models.nafnet.torch_weights`).
experiments/nafnet_fidelity.py makes the same comparison in float64 (1e-15).
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxdeblur.nets.nafnet as nafnet_module
from jaxdeblur.models.nafnet import torch_weights

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "nafnet_golden.npz"


@pytest.fixture(scope="module")
def golden():
    data = dict(np.load(FIXTURE))
    state = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    graphdef, params = nnx.split(model)
    x = jnp.asarray(data["x"].transpose(0, 2, 3, 1))
    target = jnp.asarray(data["target"].transpose(0, 2, 3, 1))

    def loss_fn(p, x):
        out = nnx.merge(graphdef, p)(x)
        return jnp.mean(jnp.square(out - target)), out

    (loss, out), (grads, grad_x) = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))(params, x)
    return dict(data=data, state=state, config=config, model=model, loss=loss, out=out, grads=grads, grad_x=grad_x)


def test_architecture_read_from_the_state_dict(golden):
    cfg = json.loads(str(golden["data"]["config"]))
    c = golden["config"]
    assert (c.channels, c.width, c.enc_blocks, c.middle_blocks, c.dec_blocks) == (
        cfg["channels"], cfg["width"], tuple(cfg["enc_blocks"]), cfg["middle_blocks"], tuple(cfg["dec_blocks"]))
    n_flax = len(jax.tree.leaves(golden["grads"]))
    assert n_flax == len(golden["state"]) == 100


def test_output_matches_pytorch(golden):
    ref = golden["data"]["out"].transpose(0, 2, 3, 1)
    assert golden["out"].shape == ref.shape == (2, 13, 18, 3)
    np.testing.assert_allclose(golden["out"], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(golden["out"], golden["data"]["out_float32"].transpose(0, 2, 3, 1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(golden["loss"], golden["data"]["loss"], rtol=1e-5)
    # the blocks are not the identity here: the output is far from the input
    assert np.abs(ref - golden["data"]["x"].transpose(0, 2, 3, 1)).max() > 0.1


def test_gradients_match_pytorch(golden):
    """Every parameter's gradient and the input's to 1e-4 relative, 1e-5 of the largest absolute."""
    data, flat = golden["data"], dict(nnx.to_flat_state(golden["grads"]))
    expected = {n: torch_weights.to_flax_layout(n, data[f"grad/{n}"]) for n in golden["state"]}
    scale = max(np.abs(e).max() for e in expected.values())
    for name, grad in expected.items():
        np.testing.assert_allclose(flat[torch_weights.flax_path(name)][...], grad, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=name)
    ref_x = data["grad_x"].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(golden["grad_x"], ref_x, rtol=1e-4, atol=1e-5 * np.abs(ref_x).max())


def test_a_wrong_pixel_shuffle_order_is_caught(golden, monkeypatch):
    """The fixture tells channel orders apart: depth-to-space in (i, j, c) order instead of PyTorch's (c, i, j)."""
    def depth_to_space(x, r=2):
        n, h, w, c = x.shape
        x = x.reshape(n, h, w, r, r, c // (r * r))
        return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * r, w * r, c // (r * r))

    monkeypatch.setattr(nafnet_module, "pixel_shuffle", depth_to_space)
    out = golden["model"](jnp.asarray(golden["data"]["x"].transpose(0, 2, 3, 1)))
    assert np.abs(np.asarray(out) - golden["data"]["out"].transpose(0, 2, 3, 1)).max() > 1e-3


def test_mapping_rejects_a_state_dict_that_does_not_fit(golden):
    state = dict(golden["state"])
    state["encoders.0.0.extra.weight"] = state.pop("encoders.0.0.conv1.weight")
    with pytest.raises(ValueError, match=r"1 parameters missing \['encoders.0.0.expand.kernel'\].*unexpected"):
        torch_weights.from_state_dict(state)
    state = dict(golden["state"])
    state["intro.bias"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="shapes differ: .*intro.bias"):
        torch_weights.from_state_dict(state)
