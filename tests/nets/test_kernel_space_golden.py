"""Golden fidelity test: jaxdeblur's blur-kernel-space network (F and G) reproduces the authors' PyTorch
KernelWizard (no torch needed).

The fixture (tests/nets/fixtures/kernel_space_golden.npz) was written once by
experiments/make_kernel_space_golden.py with experiments/torch_kernel_space.py
(the authors' module tree and state-dict names, from their kernel_wizard.py,
resnet.py and unet_parts.py): a tiny RGB network (nf 4, a 3-level U-Net, one
feature downsampling, an 8-d code), a 32 x 48 pair -> a 2 x 3 code map, the
float64 code, the re-blurred output and the gradients of its MSE to a random
target. The weights go through the importer's mapping
(`models.kernel_space.torch_weights`). experiments/kernel_space_fidelity.py
makes the same comparison in float64 (and on the authors' full 49 M network).
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.models.kernel_space import torch_weights

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "kernel_space_golden.npz"


def nhwc(a):
    return np.asarray(a).transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def golden():
    data = dict(np.load(FIXTURE))
    state = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    graphdef, params = nnx.split(model)
    sharp, blurred, target = (jnp.asarray(nhwc(data[k])) for k in ("sharp", "blurred", "target"))

    def loss_fn(p, sharp, blurred):
        net = nnx.merge(graphdef, p)
        code = net.encode(sharp, blurred)
        out = net.blur(sharp, code)
        return jnp.mean(jnp.square(out - target)), (code, out)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True))
    (loss, (code, out)), (grads, grad_sharp, grad_blurred) = grad_fn(params, sharp, blurred)
    return dict(data=data, state=state, config=config, model=model, graphdef=graphdef, params=params,
                loss=loss, code=code, out=out, grads=grads, grad_sharp=grad_sharp, grad_blurred=grad_blurred)


def test_architecture_read_from_the_state_dict(golden):
    cfg, c = json.loads(str(golden["data"]["config"])), golden["config"]
    for name in ("channels", "nf", "front_blocks", "back_blocks", "code_dim", "extractor_blocks", "depth",
                 "feature_downsamples"):
        assert getattr(c, name) == cfg[name], name
    assert c.all_biases is False
    assert len(jax.tree.leaves(golden["grads"])) == len(golden["state"]) == 31


def test_code_and_output_match_pytorch(golden):
    data = golden["data"]
    assert golden["code"].shape == (1, 2, 3, 8) and golden["out"].shape == (1, 32, 48, 3)
    for ours, key in ((golden["code"], "code"), (golden["out"], "out")):
        ref = nhwc(data[key])
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max(), err_msg=key)
        np.testing.assert_allclose(ours, nhwc(data[f"{key}_float32"]), rtol=1e-4, atol=1e-5 * np.abs(ref).max(),
                                   err_msg=key)
    np.testing.assert_allclose(golden["loss"], data["loss"], rtol=1e-5)
    # the network is not the identity here: the output is far from the sharp input
    assert np.abs(nhwc(data["out"]) - nhwc(data["sharp"])).max() > 0.1


def test_gradients_match_pytorch(golden):
    """Every parameter's gradient and both images' to 1e-4 relative, 1e-5 of the largest absolute."""
    data, flat = golden["data"], dict(nnx.to_flat_state(golden["grads"]))
    arch = torch_weights.architecture(golden["state"])
    expected = {n: torch_weights.to_flax_layout(n, data[f"grad/{n}"]) for n in golden["state"]}
    scale = max(np.abs(e).max() for e in expected.values())
    for name, grad in expected.items():
        np.testing.assert_allclose(flat[torch_weights.flax_path(name, arch)][...], grad, rtol=1e-4,
                                   atol=1e-5 * scale, err_msg=name)
    for key in ("grad_sharp", "grad_blurred"):
        ref = nhwc(data[key])
        assert np.abs(ref).max() > 0
        np.testing.assert_allclose(golden[key], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(), err_msg=key)


def test_an_unflipped_transposed_conv_is_caught(golden):
    """The fixture tells the transposed conv's kernel orientation apart: the U-Net's up convs loaded
    without the 180 degree flip change the output."""
    state = dict(golden["state"])
    arch = torch_weights.architecture(state)
    flat = dict(nnx.to_flat_state(golden["params"]))
    for name in state:
        if ".up.1.weight" in name:
            path = torch_weights.flax_path(name, arch)
            flat[path] = flat[path].replace(jnp.asarray(np.asarray(state[name]).transpose(2, 3, 0, 1)))
    net = nnx.merge(golden["graphdef"], nnx.from_flat_state(flat))
    sharp, blurred = (jnp.asarray(nhwc(golden["data"][k])) for k in ("sharp", "blurred"))
    out = net.blur(sharp, net.encode(sharp, blurred))
    assert np.abs(np.asarray(out) - nhwc(golden["data"]["out"])).max() > 1e-3


def test_mapping_rejects_a_state_dict_that_does_not_fit(golden):
    state = dict(golden["state"])
    state["kernel_extractor.model.1.bias"] = np.zeros(4, np.float32)  # a biased G (not the authors' layout)
    with pytest.raises(ValueError, match=r"0 parameters missing \[\], 1 unexpected \['kernel_extractor.model.1.bias'"):
        torch_weights.from_state_dict(state)
    state = dict(golden["state"])
    state["recon_trunk.4.weight"] = np.zeros((64, 4, 3, 3), np.float32)  # their 64 hidden channels with nf 4
    with pytest.raises(ValueError, match=r"shapes differ: .*recon_trunk.4.weight"):
        torch_weights.from_state_dict(state)
    with pytest.raises(ValueError, match="not a blur-kernel-space"):
        torch_weights.from_state_dict({"intro.weight": np.zeros((4, 3, 3, 3))})
