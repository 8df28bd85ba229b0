"""Benchmark of the DIP engine: compile time, ms per iteration, throughput, memory.

Compares, in one run, batches of N images with the "map" and "vmap" batch
strategies (per-image throughput against N = 1). Prints JSON; --out writes it.

  python experiments/bench_dip.py --preset fast --batch 1 4 8 --iterations 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, device_tag, machine, peak_memory_bytes, write_json  # noqa: E402

from jaxdeblur.engine.runner import EngineOptions, run_batch  # noqa: E402
from jaxdeblur.methods import get_method  # noqa: E402


def bench(method, cfg, n, size, kernel_size, iterations, strategy):
    rng = np.random.default_rng(0)
    ys = rng.uniform(0, 1, (n, size, size, 1)).astype(np.float32)
    keys = jax.numpy.stack([jax.random.key(i) for i in range(n)])
    options = EngineOptions(chunk=iterations, strategy=strategy, progress=False)
    t0 = time.perf_counter()
    out = run_batch(method, cfg, ys, (kernel_size, kernel_size), keys, iterations=iterations, options=options)
    wall = time.perf_counter() - t0
    ms = out.timings["ms_per_iteration"]
    return {"batch": n, "strategy": out.strategy, "compile_s": round(out.timings["compile_s"], 2),
            "ms_per_iteration": round(ms, 2), "ms_per_image_iteration": round(ms / n, 2),
            "images_iterations_per_s": round(1e3 * n / ms, 2), "wall_s": round(wall, 2), **peak_memory_bytes()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="selfdeblur")
    parser.add_argument("--preset", default="fast", choices=["paper", "fast", "tiny"])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--size", type=int, default=255, help="image side (Levin: 255)")
    parser.add_argument("--kernel-size", type=int, default=19)
    parser.add_argument("--strategy", nargs="+", default=["map", "vmap"], choices=["auto", "map", "vmap"])
    parser.add_argument("--out", default="auto",
                        help="JSON file; 'auto': results/bench_dip_<preset>_<device>.json; 'none': print only")
    args = parser.parse_args(argv)

    method = get_method(args.method)
    cfg = method.presets[args.preset]
    out = None if args.out == "none" else (
        RESULTS / f"bench_dip_{args.preset}_{device_tag()}.json" if args.out == "auto" else Path(args.out))
    record = {"benchmark": "dip_engine", "method": args.method, "preset": args.preset, "image_size": args.size,
              "kernel_size": args.kernel_size, "iterations_timed": args.iterations, "machine": machine(), "rows": []}
    rows = record["rows"]
    for strategy in args.strategy:
        for n in args.batch:
            rows.append(bench(method, cfg, n, args.size, args.kernel_size, args.iterations, strategy))
            one = next((r for r in rows if r["batch"] == 1 and r["strategy"] == rows[-1]["strategy"]), None)
            if one:
                rows[-1]["throughput_vs_batch1"] = round(
                    rows[-1]["images_iterations_per_s"] / one["images_iterations_per_s"], 3)
            print(rows[-1], file=sys.stderr, flush=True)
            if out is not None:  # partial results survive an interrupted run
                write_json(out, record)
    print(__import__("json").dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
