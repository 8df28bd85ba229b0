"""Golden fidelity test: jaxdeblur's UFPNet (flow prior, kernel-code net, kernel-conditioned NAFNet) reproduces
the authors' PyTorch UFPNet_code_uncertainty (no torch needed).

The fixture (tests/nets/fixtures/ufpnet_golden.npz) was written once by
experiments/make_ufpnet_golden.py with experiments/torch_ufpnet.py (the
authors' module tree and state-dict names, from their
UFPNet_code_uncertainty_arch.py, Flow_arch.py and my_module.py): a tiny RGB
UFPNet (NAFNet width 4, two kernel-conditioned levels, 3 x 3 kernels, flow
hidden 8, code net widths (2, 4)) with random norms, beta / gamma and flow
batch-norm statistics; one 14 x 18 image (reflect-padded to 16 x 20), the
float64 codes, sigma, kernel field (code noise zero) and restoration, the
gradients of an MSE on the kernels (code net, flow) and of an MSE on the
restoration (deblurring net, image; kernels fixed as their no_grad). The
weights go through the importer's mapping (`models.ufpnet.torch_weights`).
experiments/ufpnet_fidelity.py makes the same comparison in float64.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdeblur.models.ufpnet import torch_weights
from jaxdeblur.nets.kernel_code import kernel_field

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "ufpnet_golden.npz"


def nhwc(a):
    return np.asarray(a).transpose(0, 2, 3, 1)


def forward(model, x, target, target_kernels):
    """(loss, aux) as the fixture's: the kernel MSE (through code net and flow) plus the restoration MSE
    (kernels held fixed)."""
    n, h, w, _ = x.shape
    m = 2**model.deblur.levels
    padded = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="reflect")
    fixed = jax.lax.stop_gradient(padded)
    codes, sigma = model.code_net(fixed)
    kernels, _ = kernel_field(model.code_net, model.flow, fixed, None)
    loss_k = jnp.mean(jnp.square(kernels.reshape(n, -1, *kernels.shape[3:]) - target_kernels))
    restored = model.restore_with(padded, jax.lax.stop_gradient(kernels))[:, :h, :w]
    loss_r = jnp.mean(jnp.square(restored - target))
    return loss_k + loss_r, dict(codes=codes, sigma=sigma, kernels=kernels, restored=restored, loss_k=loss_k,
                                 loss_r=loss_r)


@pytest.fixture(scope="module")
def golden():
    data = dict(np.load(FIXTURE))
    state = {k[len("param/"):]: v for k, v in data.items() if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x, target = jnp.asarray(nhwc(data["x"])), jnp.asarray(nhwc(data["target"]))
    target_kernels = jnp.asarray(data["target_kernels"])

    def loss_fn(p, x):
        return forward(nnx.merge(graphdef, p, rest), x, target, target_kernels)

    (_, aux), (grads, grad_x) = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))(params, x)
    return dict(data=data, state=state, config=config, model=model, aux=aux, grads=grads, grad_x=grad_x)


def test_architecture_read_from_the_state_dict(golden):
    cfg, c = json.loads(str(golden["data"]["config"])), golden["config"]
    assert (c.channels, c.width, c.enc_blocks, c.middle_blocks, c.dec_blocks, c.conditioned_levels) == (
        3, cfg["width"], tuple(cfg["enc_blk_nums"]), cfg["middle_blk_num"], tuple(cfg["dec_blk_nums"]), 2)
    assert (c.code_widths, c.code_middle_width, c.code_middle_convs) == (
        tuple(cfg["code_widths"]), cfg["code_middle"], cfg["code_middle_convs"])
    assert (c.prior.kernel_size, c.prior.hidden, c.prior.num_couplings, c.prior.raw_decode) == (3, 8, 5, True)
    assert (c.code_sigma_per_tap, c.code_std_eps) == (True, 0.0)


def test_codes_sigma_and_kernels_match_pytorch(golden):
    data, aux = golden["data"], golden["aux"]
    assert aux["codes"].shape == (1, 16, 20, 9) and aux["kernels"].shape == (1, 16, 20, 3, 3)
    for key in ("codes", "sigma", "kernels"):
        ref = data[key]
        np.testing.assert_allclose(aux[key], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max(), err_msg=key)
    np.testing.assert_allclose(aux["kernels"].reshape(1, -1, 3, 3), data["kernels_float32"], rtol=1e-4,
                               atol=1e-5 * np.abs(data["kernels"]).max())
    np.testing.assert_allclose(aux["loss_k"], data["loss_kernels"], rtol=1e-5)
    # the flow's raw decode: UFPNet does not renormalise its kernels
    assert np.abs(data["kernels"].sum((-1, -2)) - 1).max() > 0.05


def test_restoration_matches_pytorch(golden):
    data, aux = golden["data"], golden["aux"]
    ref = nhwc(data["restored"])
    assert aux["restored"].shape == ref.shape == (1, 14, 18, 3)
    np.testing.assert_allclose(aux["restored"], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(aux["restored"], nhwc(data["restored_float32"]), rtol=1e-4,
                               atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(np.clip(aux["restored"], 0, 1), nhwc(data["restored_clamped"]), atol=1e-6)
    np.testing.assert_allclose(aux["loss_r"], data["loss_restored"], rtol=1e-5)
    assert np.abs(ref - nhwc(data["x"])).max() > 0.1  # the blocks are not the identity


def test_gradients_match_pytorch(golden):
    """Every parameter with a gradient in the reference (the kernel_down conv it never uses has none) and the
    image's, to 1e-4 relative and 1e-5 of the largest absolute."""
    data, flat = golden["data"], dict(nnx.to_flat_state(golden["grads"]))
    expected = {n[len("grad/"):]: torch_weights.to_flax_layout(n[len("grad/"):], data[n])
                for n in data if n.startswith("grad/")}
    assert len(expected) == len(flat) == 248
    for name, grad in expected.items():
        ours = flat[torch_weights.flax_path(name)][...]
        np.testing.assert_allclose(ours, grad, rtol=1e-4, atol=1e-5 * np.abs(grad).max() + 1e-30, err_msg=name)
    ref_x = nhwc(data["grad_x"])
    np.testing.assert_allclose(golden["grad_x"], ref_x, rtol=1e-4, atol=1e-5 * np.abs(ref_x).max())


def test_the_kernel_map_channel_order_is_checked(golden):
    """The fixture tells the kernel map's channel order apart: taps transposed ((b, a) instead of (a, b))
    change the restoration."""
    model, data = golden["model"], golden["data"]
    kernels = jnp.asarray(data["kernels"])
    x = jnp.pad(jnp.asarray(nhwc(data["x"])), ((0, 0), (0, 2), (0, 2), (0, 0)), mode="reflect")
    right = np.asarray(model.restore_with(x, kernels))[:, :14, :18]
    wrong = np.asarray(model.restore_with(x, jnp.swapaxes(kernels, -1, -2)))[:, :14, :18]
    np.testing.assert_allclose(right, nhwc(data["restored"]), rtol=1e-4, atol=1e-5)
    assert np.abs(wrong - nhwc(data["restored"])).max() > 2e-4  # 6.8e-4; the match above is to ~1e-5


def test_mapping_rejects_a_state_dict_that_does_not_fit(golden):
    state = dict(golden["state"])
    state["flow.net.0.mask"] = 1 - state["flow.net.0.mask"]
    with pytest.raises(ValueError, match="alternating mask"):
        torch_weights.from_state_dict(state)
    state = dict(golden["state"])
    state["kernel_extra.Conv_tail.var.2.weight"] = state["kernel_extra.Conv_tail.var.2.weight"][:1]  # one sigma
    with pytest.raises(ValueError, match=r"shapes differ: .*Conv_tail.var.2.weight"):
        torch_weights.from_state_dict(state)
    state = {k: v for k, v in golden["state"].items() if not k.startswith("encoders.0.0.kernel_atttion.")}
    with pytest.raises(ValueError, match=r"conditioned encoder levels \[1\] are not the first"):
        torch_weights.from_state_dict(state)
