"""Blur-kernel-space fidelity: jaxdeblur's F and G against the PyTorch reference's outputs and gradients,
float64 and float32.

Reads references written by experiments/make_kernel_space_golden.py (the
committed tiny fixture, and optionally larger ones made with its --reference,
e.g. the authors' full 49 M parameter network with --paper), loads their
weights with `jaxdeblur.models.kernel_space.torch_weights` (the importer's
mapping), and reports the largest absolute and relative differences of the
code map G(sharp, blurred), the re-blurred output F(sharp, code), the MSE's
gradient w.r.t. both images and w.r.t. every parameter. No torch needed here.

  JAX_PLATFORMS=cpu .venv/bin/python -m experiments.kernel_space_fidelity [REF.npz ...]
      # default: tests/nets/fixtures/kernel_space_golden.npz; writes results/kernel_space_fidelity.json
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

from jaxdeblur.models.kernel_space import torch_weights  # noqa: E402

FIXTURE = ROOT / "tests" / "nets" / "fixtures" / "kernel_space_golden.npz"
RESULTS = ROOT / "experiments" / "results" / "kernel_space_fidelity.json"



def compare(path: Path, dtype) -> dict:
    data = np.load(path)
    state = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    arch = torch_weights.architecture(state)
    graphdef, params = nnx.split(model)
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)  # every parameter in `dtype`
    sharp, blurred, target = (nhwc(data[k], dtype) for k in ("sharp", "blurred", "target"))

    def loss_fn(p, sharp, blurred):
        net = nnx.merge(graphdef, p)
        code = net.encode(sharp, blurred)
        out = net.blur(sharp, code)
        return jnp.mean(jnp.square(out - target)), (code, out)

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1, 2), has_aux=True))
    (loss, (code, out)), (grads, g_sharp, g_blurred) = grad_fn(params, sharp, blurred)
    assert out.dtype == dtype and g_sharp.dtype == dtype, (out.dtype, g_sharp.dtype)
    flat = dict(nnx.to_flat_state(grads))
    per_param = {name: diff(flat[torch_weights.flax_path(name, arch)][...],
                            torch_weights.to_flax_layout(name, data[f"grad/{name}"])) for name in state}
    t = lambda a: np.asarray(a).transpose(0, 3, 1, 2)  # noqa: E731
    return {"fixture": fixture_name(path),
            "dtype": np.dtype(dtype).name, "config": json.loads(str(data["config"])),
            "parameters": int(sum(v.size for v in state.values())),
            "code": diff(t(code), data["code"]), "output": diff(t(out), data["out"]), "loss": diff(loss, data["loss"]),
            "grad_sharp": diff(t(g_sharp), data["grad_sharp"]), "grad_blurred": diff(t(g_blurred), data["grad_blurred"]),
            **worst_parameter(per_param)}


def main():
    run(compare, FIXTURE, RESULTS, lambda r: (
        f"{r['fixture']} ({r['parameters']} parameters) {r['dtype']}: code rel {r['code']['max_rel']:.2e}; "
              f"output rel {r['output']['max_rel']:.2e}; grad sharp rel {r['grad_sharp']['max_rel']:.2e}, blurred "
              f"{r['grad_blurred']['max_rel']:.2e}; grad params max rel {r['grad_params_max_rel']:.2e} "
              f"({r['grad_params_worst']['name']})"))


if __name__ == "__main__":
    main()
