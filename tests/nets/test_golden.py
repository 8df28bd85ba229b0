"""Golden fidelity test: the JAX SelfDeblur networks reproduce the PyTorch reference (no torch needed).

The fixture (tests/nets/fixtures/selfdeblur_golden.npz) was written once by
experiments/make_golden_fixture.py with the PyTorch reference networks of
experiments/torch_reference.py: weights, inputs, outputs, the reblur MSE,
its gradients and the loss after one Adam step. Here the weights are loaded
into the Flax modules and everything is recomputed in JAX.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxdeblur import losses
from jaxdeblur.forward import blur
from jaxdeblur.methods.selfdeblur import DIPConfig, SelfDeblur
from jaxdeblur.nets import KernelGenerator, SkipGenerator, apply, split_module

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "selfdeblur_golden.npz"


def torch_to_flax(name: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    """A PyTorch parameter (state-dict leaf name, array) -> (Flax leaf name, array in Flax layout)."""
    if name == "bias":
        return "bias", value
    if value.ndim == 1:
        return "scale", value                       # BatchNorm weight
    if value.ndim == 2:
        return "kernel", value.T                    # Linear (out, in) -> (in, out)
    return "kernel", value.transpose(2, 3, 1, 0)    # Conv OIHW -> HWIO


def load_torch_params(module: nnx.Module, arrays: dict, prefix: str) -> dict:
    """Sets every nnx.Param of `module` from `arrays[prefix + torch name]`; returns {Flax path: torch name}."""
    paths = {}
    for key, value in arrays.items():
        if not key.startswith(prefix):
            continue
        *owners, leaf = key[len(prefix):].split(".")
        owner = module
        for attr in owners:
            owner = getattr(owner, attr)
        flax_name, converted = torch_to_flax(leaf, value)
        variable = getattr(owner, flax_name)
        assert variable.shape == converted.shape, (key, variable.shape, converted.shape)
        variable[...] = jnp.asarray(converted)
        paths[(*owners, flax_name)] = key[len(prefix):]
    return paths


def recompute(data: dict) -> dict:
    """The fixture's networks with its weights, in JAX: outputs, loss, gradients, loss after one Adam step."""
    cfg = json.loads(str(data["config"]))
    image_net = SkipGenerator(cfg["in_channels"], 1, channels_down=cfg["channels_down"],
                              channels_up=cfg["channels_up"], channels_skip=cfg["channels_skip"],
                              nonlocal_levels=cfg["nonlocal_levels"], rngs=nnx.Rngs(0))
    kernel_net = KernelGenerator(tuple(cfg["kernel_size"]), in_features=cfg["kernel_code"],
                                 hidden=cfg["kernel_hidden"], rngs=nnx.Rngs(1))
    paths = {"image": load_torch_params(image_net, data, "param/image/"),
             "kernel": load_torch_params(kernel_net, data, "param/kernel/")}
    nets = {"image": split_module(image_net), "kernel": split_module(kernel_net)}
    z_image, z_kernel = data["z_image"].transpose(0, 2, 3, 1), data["z_kernel"]
    y = data["y"][0].transpose(1, 2, 0)
    optimizer = SelfDeblur().optimizer(DIPConfig(lr_image=cfg["lr_image"], lr_kernel=cfg["lr_kernel"]))

    def generate(params):
        latent, _ = apply(nets["image"][0], params["image"], nets["image"][2], z_image)
        kernel, _ = apply(nets["kernel"][0], params["kernel"], nets["kernel"][2], z_kernel)
        return latent[0], kernel

    def loss_fn(params):
        latent, kernel = generate(params)
        return losses.mse(blur(latent, kernel, "valid"), y)

    @jax.jit
    def everything(params):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, _ = optimizer.update(grads, optimizer.init(params), params)
        return generate(params), loss, grads, loss_fn(optax.apply_updates(params, updates))

    (latent, kernel), loss, grads, loss_after_step = everything({name: net[1] for name, net in nets.items()})
    return dict(data=data, paths=paths, latent=latent, kernel=kernel, loss=loss, grads=grads,
                loss_after_step=loss_after_step)


@pytest.fixture(scope="module")
def golden():
    return recompute(dict(np.load(FIXTURE)))


def test_every_reference_weight_lands_in_a_flax_param(golden):
    for name, paths in golden["paths"].items():
        n_torch = sum(k.startswith(f"param/{name}/") for k in golden["data"])
        n_flax = len(jax.tree.leaves(golden["grads"][name]))
        assert len(paths) == n_torch == n_flax


def test_outputs_match_pytorch(golden):
    data = golden["data"]
    np.testing.assert_allclose(golden["latent"], data["latent"][0].transpose(1, 2, 0), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(golden["kernel"], data["kernel"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(golden["loss"], data["loss"], rtol=1e-5)


def test_gradients_match_pytorch(golden):
    """Every gradient to 1e-3 relative, 1e-5 of the net's largest gradient absolute.

    The absolute part covers the biases of convolutions followed by BatchNorm,
    whose exact gradient is zero (both frameworks give float noise there).
    """
    for name, paths in golden["paths"].items():
        flat = dict(nnx.to_flat_state(golden["grads"][name]))
        expected = {p: torch_to_flax(t.rsplit(".", 1)[1], golden["data"][f"grad/{name}/{t}"])[1]
                    for p, t in paths.items()}
        scale = max(np.abs(e).max() for e in expected.values())
        for flax_path, torch_name in paths.items():
            np.testing.assert_allclose(flat[flax_path][...], expected[flax_path], rtol=1e-3, atol=1e-5 * scale,
                                       err_msg=f"{name}: {torch_name}")


def test_one_adam_step_matches_pytorch(golden):
    assert golden["loss_after_step"] < golden["loss"]
    np.testing.assert_allclose(golden["loss_after_step"], golden["data"]["loss_after_step"], rtol=1e-4)
