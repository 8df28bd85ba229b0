"""Benchmark of the DIP engine: compile time, ms per iteration, throughput, memory; PyTorch side by side.

Compares, in one run, batches of N images with the "map" and "vmap" batch
strategies (per-image throughput against N = 1). When torch is importable
(it is never a dependency of jaxdeblur) and the method is SelfDeblur, it also
times the original PyTorch networks and optimiser (experiments/torch_reference.py,
built from ../shared/REFERENCE.md: same widths, non-local blocks, Adam with
the same learning rates) on the same image size, INTERLEAVED with the JAX
runs (round r: JAX, then PyTorch), because the machine may be shared: both
see the same load, which is recorded per round. Prints JSON; --out writes it.

  python -m experiments.bench_dip --preset paper --kernel-size 17 --batch 1 --strategy auto \
      --iterations 3 --rounds 5 [--one-core]

--one-core pins the process to one core and PyTorch to one thread: the work
per iteration, which other jobs on a shared machine disturb less than two
threads that wait for each other.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from experiments._common import RESULTS, device_tag, machine, peak_memory_bytes, write_json

from jaxdeblur.engine.runner import EngineOptions, run_batch
from jaxdeblur.methods import get_method


def blurred_inputs(n, size):
    return np.random.default_rng(0).uniform(0, 1, (n, size, size, 1)).astype(np.float32)


def bench(method, cfg, n, size, kernel_size, iterations, strategy):
    ys = blurred_inputs(n, size)
    keys = jax.numpy.stack([jax.random.key(i) for i in range(n)])
    options = EngineOptions(chunk=iterations, strategy=strategy, progress=False, check_memory=False)
    t0 = time.perf_counter()
    out = run_batch(method, cfg, ys, (kernel_size, kernel_size), keys, iterations=iterations, options=options)
    wall = time.perf_counter() - t0
    ms = out.timings["ms_per_iteration"]
    return {"batch": n, "strategy": out.strategy, "compile_s": round(out.timings["compile_s"], 2),
            "ms_per_iteration": round(ms, 2), "ms_per_image_iteration": round(ms / n, 2),
            "images_iterations_per_s": round(1e3 * n / ms, 2), "wall_s": round(wall, 2), **peak_memory_bytes()}


def torch_reference(cfg, size, kernel_size, threads=None):
    """SelfDeblur's PyTorch networks for one image, or None when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    from experiments.torch_reference import SelfDeblurReference

    if threads is not None:
        torch.set_num_threads(threads)

    return SelfDeblurReference(cfg, blurred_inputs(1, size)[0, :, :, 0], (kernel_size, kernel_size))


def compare_with_torch(method, cfg, args, reference) -> dict:
    """Interleaved rounds of one-image JAX and PyTorch timing; medians and the speed-up (torch / JAX)."""
    import torch

    reference.time(1)  # PyTorch's first iteration allocates; JAX's compile happens in the first round below
    bench(method, cfg, 1, args.size, args.kernel_size, args.iterations, "auto")
    rounds = []
    for r in range(args.rounds):
        load_before = os.getloadavg()[0]
        cpu0 = time.process_time()
        jax_ms = bench(method, cfg, 1, args.size, args.kernel_size, args.iterations, "auto")["ms_per_iteration"]
        cpu1 = time.process_time()
        torch_ms = reference.time(args.iterations)
        cpu2 = time.process_time()
        rounds.append({"round": r, "jax_ms_per_iteration": round(jax_ms, 1), "torch_ms_per_iteration": round(torch_ms, 1),
                       "speedup": round(torch_ms / jax_ms, 3),
                       "jax_cpu_ms_per_iteration": round(1e3 * (cpu1 - cpu0) / args.iterations, 1),
                       "torch_cpu_ms_per_iteration": round(1e3 * (cpu2 - cpu1) / args.iterations, 1),
                       "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        print(rounds[-1], file=sys.stderr, flush=True)
    jax_median = float(np.median([r["jax_ms_per_iteration"] for r in rounds]))
    torch_median = float(np.median([r["torch_ms_per_iteration"] for r in rounds]))
    speedup = float(np.median([r["speedup"] for r in rounds]))
    cpu = {side: round(float(np.median([r[f"{side}_cpu_ms_per_iteration"] for r in rounds])), 1)
           for side in ("jax", "torch")}
    return {
        "what": "one image, batch 1, JAX (engine, auto strategy) vs the PyTorch reference networks "
                "(experiments/torch_reference.py), interleaved rounds of `iterations_timed` iterations each; "
                "ms_per_iteration: wall clock of the iterations (JAX: the engine's own timing of its chunk); "
                "cpu_ms_per_iteration: process CPU time (all threads) over the round divided by the iterations "
                "(JAX's includes the run's initialisation and host work)",
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "rounds": rounds,
        "jax_median_ms_per_iteration": round(jax_median, 1), "torch_median_ms_per_iteration": round(torch_median, 1),
        "median_speedup_torch_over_jax": round(speedup, 3),
        "jax_median_cpu_ms_per_iteration": cpu["jax"], "torch_median_cpu_ms_per_iteration": cpu["torch"],
        "target": "JAX at least as fast as PyTorch (speed-up >= 1.0); goal 1.5",
        "target_met": bool(speedup >= 1.0), "goal_met": bool(speedup >= 1.5),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="selfdeblur")
    parser.add_argument("--preset", default="fast", choices=["paper", "fast", "tiny"])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--size", type=int, default=255, help="image side (Levin: 255)")
    parser.add_argument("--kernel-size", type=int, default=19)
    parser.add_argument("--strategy", nargs="+", default=["map", "vmap"], choices=["auto", "map", "vmap"])
    parser.add_argument("--torch", default="auto", choices=["auto", "off"],
                        help="auto: compare with the PyTorch reference when torch is installed (SelfDeblur only)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved JAX / PyTorch rounds")
    parser.add_argument("--one-core", action="store_true",
                        help="pin the process to one core and run PyTorch with one thread: compares the work per "
                             "iteration, less sensitive to other jobs than two threads that wait for each other")
    parser.add_argument("--note", default="", help="free text stored in the result (e.g. what else ran)")
    parser.add_argument("--out", default="auto",
                        help="JSON file; 'auto': results/bench_dip_<preset>_<device>.json; 'none': print only")
    args = parser.parse_args(argv)
    if args.one_core:  # before the first JAX computation, so XLA's thread pool inherits it
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    method = get_method(args.method)
    cfg = method.presets[args.preset]
    out = None if args.out == "none" else (
        RESULTS / f"bench_dip_{args.preset}_{device_tag()}{'_one_core' if args.one_core else ''}.json"
        if args.out == "auto" else Path(args.out))
    record = {"benchmark": "dip_engine", "method": args.method, "preset": args.preset, "image_size": args.size,
              "kernel_size": args.kernel_size, "iterations_timed": args.iterations, "machine": machine(),
              "note": args.note, "one_core": args.one_core, "rows": []}
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
    reference = torch_reference(cfg, args.size, args.kernel_size, 1 if args.one_core else None) if (
        args.torch == "auto" and args.method == "selfdeblur") else None
    if reference is not None:
        record["pytorch_comparison"] = compare_with_torch(method, cfg, args, reference)
        record["load_note"] = (f"The machine ({os.cpu_count()} cores) was shared with other jobs while this ran: "
                               "times are wall-clock under that load (1-minute load average per round recorded); "
                               "the JAX and PyTorch rounds alternate, so both saw the same conditions."
                               + (" Pinned to one core, PyTorch with one thread." if args.one_core else
                                  " Two threads each: PyTorch's threads wait for each other at every op, which "
                                  "a loaded machine penalises more than XLA's (compare the --one-core result)."))
    if out is not None:
        write_json(out, record)
    print(__import__("json").dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
