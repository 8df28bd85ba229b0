"""Benchmark of the classical MAP kernel estimator: compile time and seconds per image, on this machine.

A 255 x 255 gray image (Levin's im1 blurred by kernel 4 when the data is
there, else the blurred skimage camera crop); per preset, kernel size and
batch size: the first call (compile + run), then `--repeats` timed calls
whose median is the run time (compile = first call - median run). The
non-blind hyper-Laplacian step is timed apart (median of the repeats). The
machine is shared with other jobs: the load average before and after each
measurement is recorded, and the spread (min / max) of the repeats.

  python -m experiments.bench_map                              # -> results/bench_map_cpu.json
  python -m experiments.bench_map --presets default --kernel-sizes 27 --batch 1 --out none
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from experiments._common import RESULTS, device_tag, machine, peak_memory_bytes, write_json

from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.estimate import PRESETS, estimate_kernels, resolve_config


def test_image(size: int) -> tuple[np.ndarray, str]:
    """(size, size) blurred gray image in [0, 1] and its description."""
    try:
        from jaxdeblur.data import levin
        item = next(it for it in levin() if it.name == "im1_kernel4")
        return item.blurred[:size, :size], "Levin im1_kernel4 (blurred, camera noise)"
    except FileNotFoundError:
        from skimage import data
        from jaxdeblur import kernels
        from jaxdeblur.forward import blur
        sharp = data.camera()[:size, :size].astype(np.float32) / 255.0
        return np.asarray(blur(sharp, kernels.motion(jax.random.key(0), 27), "reflect")), "skimage camera, motion blur"


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    """(seconds of the first call, seconds of each of `repeats` later calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return first, runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=255)
    parser.add_argument("--kernel-sizes", type=int, nargs="+", default=[19, 27])
    parser.add_argument("--presets", nargs="+", default=["default", "fast"], choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="auto", help="JSON file; 'auto': results/bench_map_<device>.json; 'none'")
    args = parser.parse_args(argv)

    image, source = test_image(args.size)
    record = {"benchmark": "map_kernel_estimation", "image": source, "image_size": list(image.shape),
              "repeats": args.repeats, "timing_rule": "run_s = median of the repeats; compile_s = first call - run_s",
              "machine": machine(), "rows": []}
    out = None if args.out == "none" else (
        RESULTS / f"bench_map_{device_tag()}.json" if args.out == "auto" else Path(args.out))
    for preset in args.presets:
        cfg = resolve_config(preset)
        for kernel_size in args.kernel_sizes:
            for n in args.batch:
                batch = np.stack([image] * n)
                load_before = os.getloadavg()[0]
                first, runs = timed(lambda: estimate_kernels(batch, kernel_size, config=cfg), args.repeats)
                run = float(np.median(runs))
                row = {"preset": preset, "kernel_size": kernel_size, "batch": n, "compile_s": round(first - run, 2),
                       "run_s": round(run, 3), "run_s_min": round(min(runs), 3), "run_s_max": round(max(runs), 3),
                       "run_s_per_image": round(run / n, 3),
                       "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
                if n == 1:
                    k = estimate_kernels(image, kernel_size, config=cfg).kernel
                    first_d, runs_d = timed(lambda: np.asarray(hyper_laplacian(image, k, lam=cfg.deconv_lam,
                                                                             alpha=cfg.deconv_alpha)), args.repeats)
                    # 0 when an earlier row already compiled the same image and kernel shapes
                    row.update(deconv_s=round(float(np.median(runs_d)), 3),
                               deconv_compile_s=round(max(0.0, first_d - float(np.median(runs_d))), 2))
                record["rows"].append({**row, **peak_memory_bytes()})
                print(json.dumps(record["rows"][-1]), file=sys.stderr, flush=True)
                if out is not None:
                    write_json(out, record)
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
