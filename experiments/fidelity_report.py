"""What the fidelity scripts (nafnet_, kernel_space_, ufpnet_fidelity.py) share: differences, the worst
parameter gradient, and the run over fixtures x (float64, float32) that prints and writes the JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def nhwc(a, dtype=np.float64):
    """PyTorch's (N, C, H, W) array as ours, (N, H, W, C) in `dtype`."""
    return jnp.asarray(np.asarray(a).transpose(0, 2, 3, 1), dtype)


def diff(ours, ref) -> dict:
    """{"max_abs", "max_rel"}: the largest absolute difference, and it over the largest |ref| (an all-zero ref:
    0 when equal, else inf)."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    a = float(np.abs(ours - ref).max())
    scale = float(np.abs(ref).max())
    return {"max_abs": a, "max_rel": a / scale if scale else (0.0 if a == 0 else float("inf"))}


def worst_parameter(per_param: dict) -> dict:
    """{"grad_params_worst": {"name", max_abs, max_rel}, "grad_params_max_rel"} of per-parameter `diff`s."""
    worst = max(per_param, key=lambda n: per_param[n]["max_rel"])
    return {"grad_params_worst": {"name": worst, **per_param[worst]},
            "grad_params_max_rel": per_param[worst]["max_rel"]}


def fixture_name(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def run(compare: Callable[[Path, type], dict], fixture: Path, results: Path, summary: Callable[[dict], str]) -> None:
    """compare(path, dtype) for every fixture named on the command line (default `fixture`) in float64 and
    float32; prints summary(row) per row and writes {"machine", "rows"} to `results`."""
    paths = [Path(p) for p in sys.argv[1:]] or [fixture]
    rows = [compare(p, dtype) for p in paths for dtype in (np.float64, np.float32)]
    for r in rows:
        print(summary(r))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"machine": "2-core CPU, JAX " + jax.__version__, "rows": rows}, indent=1) + "\n")
    print(f"wrote {results}")
