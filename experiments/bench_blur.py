"""Benchmark of `jaxdeblur.forward.blur`: FFT vs direct, and batched per-image kernels.

Times single grayscale images (mode "same") for image sizes 64..1024 and kernel
sizes 1..75 with both methods (jit-compiled first, then the median of a few
`block_until_ready` repeats; fewer repeats for slow cases), derives the
FFT/direct crossover used by `method="auto"`, checks how the current "auto"
rule fares, and compares a batched blur of N images with per-image kernels
against a Python loop of single-image calls.

Usage: python -m experiments.bench_blur [--out PATH] [--quick]
Prints the results as JSON and writes them to --out
(default experiments/results/bench_blur_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur import forward

IMAGE_SIZES = (64, 128, 256, 512, 1024)
KERNEL_SIZES = (1, 3, 5, 11, 21, 31, 51, 75)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bench_blur_cpu.json"


def time_call(fn, *args, budget_s: float = 0.5, max_repeats: int = 7, min_repeats: int = 2) -> float:
    """Median wall time (s) of fn(*args) after one compiling call; repeats fit in ~budget_s."""
    jax.block_until_ready(fn(*args))
    times = []
    while len(times) < max_repeats:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if len(times) >= min_repeats and sum(times) > budget_s:
            break
    return statistics.median(times)


def random_kernels(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    k = rng.random((n, size, size), dtype=np.float32)
    return k / k.sum(axis=(1, 2), keepdims=True)


def bench_single(rng: np.random.Generator, image_sizes, kernel_sizes) -> list[dict]:
    rows = []
    for size in image_sizes:
        x = jnp.asarray(rng.random((size, size), dtype=np.float32))
        for ks in kernel_sizes:
            k = jnp.asarray(random_kernels(rng, 1, ks)[0])
            row = {"image": size, "kernel": ks}
            for method in ("direct", "fft"):
                fn = jax.jit(lambda x, k, m=method: forward.blur(x, k, "same", method=m))
                row[f"{method}_ms"] = 1e3 * time_call(fn, x, k)
            row["faster"] = "fft" if row["fft_ms"] < row["direct_ms"] else "direct"
            row["auto"] = forward._auto_method(size, size, ks, ks)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def crossover(rows: list[dict]) -> dict[str, int | None]:
    """Per image size: the smallest benchmarked kernel size from which FFT is faster."""
    out = {}
    for size in sorted({r["image"] for r in rows}):
        sizes = [r for r in rows if r["image"] == size]
        fft_from = None
        for r in sorted(sizes, key=lambda r: r["kernel"], reverse=True):
            if r["faster"] != "fft":
                break
            fft_from = r["kernel"]
        out[str(size)] = fft_from
    return out


def auto_quality(rows: list[dict]) -> dict:
    """How often "auto" picks the faster method and its worst slowdown over the best."""
    slowdowns = [r[f"{r['auto']}_ms"] / min(r["direct_ms"], r["fft_ms"]) for r in rows]
    return {
        "picks_faster": sum(r["auto"] == r["faster"] for r in rows),
        "cases": len(rows),
        "worst_slowdown": max(slowdowns),
    }


def bench_batched(rng: np.random.Generator, n: int, size: int, channels: int, kernel_sizes) -> list[dict]:
    """Blur of n (size, size, channels) images with per-image kernels: one batched call vs a loop."""
    rows = []
    x = jnp.asarray(rng.random((n, size, size, channels), dtype=np.float32))
    for ks in kernel_sizes:
        k = jnp.asarray(random_kernels(rng, n, ks))
        for method in ("direct", "fft"):
            batched = jax.jit(lambda x, k, m=method: forward.blur(x, k, "same", method=m))
            single = jax.jit(lambda x, k, m=method: forward.blur(x, k, "same", method=m))

            def loop(x, k, single=single):
                return [single(x[i], k[i]) for i in range(n)]

            row = {
                "n": n,
                "image": size,
                "channels": channels,
                "kernel": ks,
                "method": method,
                "batched_ms": 1e3 * time_call(batched, x, k),
                "loop_ms": 1e3 * time_call(loop, x, k),
            }
            row["speedup"] = row["loop_ms"] / row["batched_ms"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    image_sizes = IMAGE_SIZES[:2] if args.quick else IMAGE_SIZES
    kernel_sizes = KERNEL_SIZES[:4] if args.quick else KERNEL_SIZES
    t0 = time.perf_counter()
    single = bench_single(rng, image_sizes, kernel_sizes)
    batched = bench_batched(rng, 8 if args.quick else 32, 64 if args.quick else 128, 3, (11, 31))
    device = jax.devices()[0]
    result = {
        "machine": {
            "device_kind": device.device_kind,
            "platform": device.platform,
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__,
        },
        "protocol": "mode 'same', grayscale float32, jit, median of repeats after compile (ms)",
        "single": single,
        "crossover_fft_from_kernel": crossover(single),
        "auto_rule": {"direct_if_taps_at_most": forward._AUTO_MAX_DIRECT_TAPS, **auto_quality(single)},
        "batched_per_image_kernels": batched,
        "total_s": time.perf_counter() - t0,
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
