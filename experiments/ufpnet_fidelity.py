"""UFPNet fidelity: jaxdeblur's UFPNet (flow, kernel-code net, kernel-conditioned NAFNet) against the PyTorch
reference's outputs and gradients, float64 and float32.

Reads references written by experiments/make_ufpnet_golden.py (the committed
tiny fixture, and optionally larger ones made with its --reference, e.g. the
authors' full 80 M parameter network with --paper), loads their weights with
`jaxdeblur.models.ufpnet.torch_weights` (the importer's mapping), and reports
the largest absolute and relative differences of the standardised codes, sigma,
the kernel field, the restoration, the gradients of the kernel MSE (code net,
flow) and of the restoration MSE (deblurring net, image; kernels fixed) w.r.t.
every parameter. No torch needed here.

  JAX_PLATFORMS=cpu .venv/bin/python -m experiments.ufpnet_fidelity [REF.npz ...]
      # default: tests/nets/fixtures/ufpnet_golden.npz; writes results/ufpnet_fidelity.json
"""

from __future__ import annotations

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from experiments.fidelity_report import ROOT, diff, fixture_name, nhwc, run, worst_parameter  # noqa: E402

from jaxdeblur.models.ufpnet import torch_weights  # noqa: E402
from jaxdeblur.nets.kernel_code import kernel_field  # noqa: E402

FIXTURE = ROOT / "tests" / "nets" / "fixtures" / "ufpnet_golden.npz"
RESULTS = ROOT / "experiments" / "results" / "ufpnet_fidelity.json"


def compare(path: Path, dtype) -> dict:
    data = np.load(path)
    state = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)
    rest = jax.tree.map(lambda v: jnp.asarray(v, dtype) if jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating) else v,
                        rest)
    x, target = nhwc(data["x"], dtype), nhwc(data["target"], dtype)
    target_kernels = jnp.asarray(data["target_kernels"], dtype)

    def loss_fn(p, x):
        net = nnx.merge(graphdef, p, rest)
        n, h, w, _ = x.shape
        m = 2**net.deblur.levels
        padded = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="reflect")
        fixed = jax.lax.stop_gradient(padded)
        codes, sigma = net.code_net(fixed)
        kernels, _ = kernel_field(net.code_net, net.flow, fixed, None, rows_per_chunk=padded.shape[1])
        loss_k = jnp.mean(jnp.square(kernels.reshape(n, -1, *kernels.shape[3:]) - target_kernels))
        restored = net.restore_with(padded, jax.lax.stop_gradient(kernels))[:, :h, :w]
        loss_r = jnp.mean(jnp.square(restored - target))
        return loss_k + loss_r, (codes, sigma, kernels, restored, loss_k, loss_r)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    (_, (codes, sigma, kernels, restored, loss_k, loss_r)), (grads, grad_x) = grad_fn(params, x)
    assert restored.dtype == dtype and kernels.dtype == dtype, (restored.dtype, kernels.dtype)
    flat = dict(nnx.to_flat_state(grads))
    names = [k[len("grad/"):] for k in data.files if k.startswith("grad/")]
    per_param = {n: diff(flat[torch_weights.flax_path(n)][...], torch_weights.to_flax_layout(n, data[f"grad/{n}"]))
                 for n in names}
    t = lambda a: np.asarray(a).transpose(0, 3, 1, 2)  # noqa: E731
    return {"fixture": fixture_name(path),
            "dtype": np.dtype(dtype).name, "config": json.loads(str(data["config"])),
            "parameters": int(sum(np.size(data[f"param/{n}"]) for n in names)),
            "parameters_compared": len(names),
            "codes": diff(codes, data["codes"]), "sigma": diff(sigma, data["sigma"]),
            "kernels": diff(kernels, data["kernels"]), "restored": diff(t(restored), data["restored"]),
            "loss_kernels": diff(loss_k, data["loss_kernels"]), "loss_restored": diff(loss_r, data["loss_restored"]),
            "grad_input": diff(t(grad_x), data["grad_x"]),
            **worst_parameter(per_param)}


def main():
    run(compare, FIXTURE, RESULTS, lambda r: (
        f"{r['fixture']} ({r['parameters']} parameters with gradients) {r['dtype']}: codes rel "
              f"{r['codes']['max_rel']:.2e}, sigma {r['sigma']['max_rel']:.2e}, kernels {r['kernels']['max_rel']:.2e}, "
              f"restored {r['restored']['max_rel']:.2e}; grad input rel {r['grad_input']['max_rel']:.2e}; grad params "
              f"max rel {r['grad_params_max_rel']:.2e} ({r['grad_params_worst']['name']})"))


if __name__ == "__main__":
    main()
