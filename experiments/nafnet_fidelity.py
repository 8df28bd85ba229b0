"""NAFNet fidelity: jaxdeblur's NAFNet against the PyTorch reference's outputs and gradients, float64 and float32.

Reads references written by experiments/make_nafnet_golden.py (the committed
tiny fixture, and optionally larger ones made with its --reference), loads
their weights with `jaxdeblur.models.nafnet.torch_weights` (the importer's
mapping), and reports the largest absolute and relative differences of the
output, the MSE's gradient w.r.t. the input and w.r.t. every parameter.
No torch needed here.

  JAX_PLATFORMS=cpu .venv/bin/python -m experiments.nafnet_fidelity [REF.npz ...]
      # default: tests/nets/fixtures/nafnet_golden.npz; writes results/nafnet_fidelity.json
"""

from __future__ import annotations

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402
from experiments.fidelity_report import ROOT, diff, fixture_name, run, worst_parameter  # noqa: E402

from jaxdeblur.models.nafnet import torch_weights  # noqa: E402

FIXTURE = ROOT / "tests" / "nets" / "fixtures" / "nafnet_golden.npz"
RESULTS = ROOT / "experiments" / "results" / "nafnet_fidelity.json"


def compare(path: Path, dtype) -> dict:
    data = np.load(path)
    state = {k[len("param/"):]: data[k] for k in data.files if k.startswith("param/")}
    config, model = torch_weights.from_state_dict(state)
    graphdef, params = nnx.split(model)
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)  # every parameter in `dtype`
    x = jnp.asarray(data["x"].transpose(0, 2, 3, 1), dtype)
    target = jnp.asarray(data["target"].transpose(0, 2, 3, 1), dtype)

    def loss_fn(p, x):
        out = nnx.merge(graphdef, p)(x)
        return jnp.mean(jnp.square(out - target)), out

    (loss, out), (grads, grad_x) = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))(params, x)
    assert out.dtype == dtype and grad_x.dtype == dtype, (out.dtype, grad_x.dtype)
    flat = dict(nnx.to_flat_state(grads))

    per_param = {name: diff(flat[torch_weights.flax_path(name)][...],
                            torch_weights.to_flax_layout(name, data[f"grad/{name}"])) for name in state}
    return {"fixture": fixture_name(path), "dtype": np.dtype(dtype).name,
            "config": json.loads(str(data["config"])), "parameters": int(sum(v.size for v in state.values())),
            "output": diff(out.transpose(0, 3, 1, 2), data["out"]), "loss": diff(loss, data["loss"]),
            "grad_input": diff(grad_x.transpose(0, 3, 1, 2), data["grad_x"]),
            **worst_parameter(per_param)}


def main():
    run(compare, FIXTURE, RESULTS, lambda r: (
        f"{r['fixture']} ({r['parameters']} parameters) {r['dtype']}: output abs {r['output']['max_abs']:.2e} "
              f"rel {r['output']['max_rel']:.2e}; grad input rel {r['grad_input']['max_rel']:.2e}; grad params max "
              f"rel {r['grad_params_max_rel']:.2e} ({r['grad_params_worst']['name']})"))


if __name__ == "__main__":
    main()
