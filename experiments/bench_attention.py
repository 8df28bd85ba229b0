"""Cost of the edge-preserving attention (Nair & Patel, eq. 4) against image size.

Times one jitted forward + backward (gradient of a scalar loss with respect to
the features and both log-sigmas) and reads XLA's compiled memory analysis
(temporary buffers + arguments + outputs: the peak the program needs) for

- "stream": `jaxdeblur.nets.edge_attention.edge_preserving_attention`, the
  window visited one offset at a time with a custom VJP (what the library uses);
- "stacked": the p^2 shifted copies stacked and differentiated by plain
  autodiff (the reference of tests/test_edge_attention.py), O(p^2 HWC) memory;
- "dense": standard dot-product self-attention over all HW pixels,
  softmax(F F^T / sqrt(C)) F, whose (HW)^2 matrix is what a non-windowed
  attention costs (a lower bound: the bilateral logits per channel would be C
  such matrices).

Configurations too large to run here are compiled only, for their memory.
Prints JSON and writes experiments/results/bench_attention_<platform>.json.

    python -m experiments.bench_attention [--sizes 64 128 256 512] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur.nets.edge_attention import edge_preserving_attention

from tests.nets.test_edge_attention import stacked_attention  # (the O(p^2 HWC) reference)

RESULTS = Path(__file__).resolve().parent / "results"


def dense_attention(x, log_sigma_r, log_sigma_s, window, border):
    """Global dot-product attention over the H*W pixels of each image ((HW)^2 matrix)."""
    del log_sigma_r, log_sigma_s, window, border  # same call signature as the windowed forms
    n, h, w, c = x.shape
    tokens = x.reshape(n, h * w, c)
    weights = jax.nn.softmax(jnp.einsum("npc,nqc->npq", tokens, tokens) / np.sqrt(c), axis=-1)
    return jnp.einsum("npq,nqc->npc", weights, tokens).reshape(x.shape)


def stream_attention(x, log_sigma_r, log_sigma_s, window, border):
    return edge_preserving_attention(x, log_sigma_r, log_sigma_s, window=window, border=border)


IMPLEMENTATIONS = {"stream": stream_attention, "stacked": stacked_attention, "dense": dense_attention}


def measure(name, size, channels, window, reps, run):
    fn = IMPLEMENTATIONS[name]
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, size, size, channels), jnp.float32)
    log_r, log_s = jnp.float32(np.log(0.5)), jnp.float32(0.0)
    target = x[:, ::-1]

    def loss(x, a, b):
        return jnp.mean((fn(x, a, b, window, "reflect") - target) ** 2)

    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    t0 = time.perf_counter()
    compiled = step.lower(x, log_r, log_s).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    row = {
        "impl": name,
        "size": size,
        "pixels": size * size,
        "channels": channels,
        "window": window,
        "compile_s": round(compile_s, 3),
        "temp_mb": round(mem.temp_size_in_bytes / 2**20, 2),
        "peak_mb": round(
            (mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes) / 2**20, 2
        ),
        "ran": run,
    }
    if run:
        jax.block_until_ready(compiled(x, log_r, log_s))
        times, cpu_times = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(compiled(x, log_r, log_s))
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        row["fwd_bwd_s"] = round(min(times), 5)
        row["fwd_bwd_cpu_s"] = round(min(cpu_times), 5)
        row["ns_per_pixel"] = round(1e9 * min(times) / (size * size), 2)
    return row


def fitted_exponent(rows, key):
    """Slope of log(key) against log(pixels): 1 means linear in H*W."""
    pts = [(r["pixels"], r[key]) for r in rows if key in r]
    if len(pts) < 2:
        return None
    slope = np.polyfit(np.log([p for p, _ in pts]), np.log([v for _, v in pts]), 1)[0]
    return round(float(slope), 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--dense-sizes", type=int, nargs="+", default=[32, 64], help="dense sizes actually run")
    parser.add_argument("--stacked-max", type=int, default=256, help="largest stacked size actually run")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    device = jax.devices()[0]
    rows = []
    for size in args.sizes:
        rows.append(measure("stream", size, args.channels, args.window, args.reps, True))
        rows.append(measure("stacked", size, args.channels, args.window, args.reps, size <= args.stacked_max))
        print(json.dumps(rows[-2]), json.dumps(rows[-1]), file=sys.stderr)
    for size in sorted(set(args.dense_sizes) | set(s for s in args.sizes if s <= 256)):
        rows.append(measure("dense", size, args.channels, args.window, args.reps, size in args.dense_sizes))
        print(json.dumps(rows[-1]), file=sys.stderr)

    summary = {}
    for name in IMPLEMENTATIONS:
        sel = [r for r in rows if r["impl"] == name]
        summary[name] = {
            "time_exponent_vs_pixels": fitted_exponent(sel, "fwd_bwd_s"),
            "cpu_time_exponent_vs_pixels": fitted_exponent(sel, "fwd_bwd_cpu_s"),
            "memory_exponent_vs_pixels": fitted_exponent(sel, "peak_mb"),
        }
    report = {
        "benchmark": "edge-preserving attention, jitted forward + backward, N=1",
        "machine": {
            "platform": device.platform,
            "device_kind": device.device_kind,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "jax": jax.__version__,
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "notes": "time (wall) and cpu time (all threads of this process) are the best of `reps` runs; peak_mb = XLA temp + argument + output buffers of the "
        "compiled program; rows with ran=false were compiled only (too large to run here).",
        "summary": summary,
        "rows": rows,
    }
    text = json.dumps(report, indent=2)
    print(text)
    out = args.out or RESULTS / f"bench_attention_{device.platform}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
