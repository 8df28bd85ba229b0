"""Levin et al. benchmark of the classical MAP kernel estimator (`jaxdeblur.estimate`), on the CPU.

The 32 blurred images (4 images x 8 real camera-shake kernels), SelfDeblur's
kernel sizes; the images of one kernel size are estimated in one batched call.
Each estimate is deconvolved by the non-blind step of the method
(`jaxdeblur.deconv.hyper_laplacian` with the config's deconv_lam / deconv_alpha),
and so is the blurred image with the TRUE kernel (the reference of the error
ratio). Per image: aligned PSNR / SSIM (Levin's protocol: 15 px crop, shifts
up to 5 px in 0.25 px steps) of the estimate, of the true-kernel deconvolution
and of the blurred input; error ratio (SSD ratio, Levin et al.); Hu & Yang's
kernel similarity; seconds. Summary: means, the success rate (ER <= 3) and the
cumulative fractions ER <= r for r = 1..5 (the region-selection paper's curve).

  python -m experiments.levin_map                     # all 32, default preset -> results/levin_map_cpu.{json,md}
  python -m experiments.levin_map --subset tuning --set kernel_reg=8 --out /tmp/try.json   # tuning
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json

from jaxdeblur.config import parse_overrides
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.estimate import PRESETS, estimate_kernels, resolve_config
from jaxdeblur.metrics import aligned_psnr_ssim, error_ratio, kernel_similarity

SUCCESS_ER = 3.0
# The defaults were tuned on these 16 items (every kernel on two images); the other 16 are held out.
TUNING_ITEMS = tuple(f"im{i % 4 + 1}_kernel{j + 1}" for j in range(8) for i in (j, j + 2))


def in_subset(name: str, subset: str) -> bool:
    """Whether a Levin item belongs to "all", "tuning" (`TUNING_ITEMS`) or "held-out" (the others)."""
    return subset == "all" or (name in TUNING_ITEMS) == (subset == "tuning")


def estimate_all(items, preset: str, overrides) -> tuple[list[np.ndarray], dict]:
    """Kernels of all items, one batched call per kernel size; compile and run seconds per group."""
    groups = defaultdict(list)
    for i, item in enumerate(items):
        groups[levin_kernel_size(item.name)].append(i)
    kernels: list = [None] * len(items)
    timing = {}
    for size, members in sorted(groups.items()):
        batch = np.stack([items[i].blurred for i in members])
        t0 = time.perf_counter()
        estimate_kernels(batch, size, preset=preset, config=overrides)  # compile + run
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        estimate = estimate_kernels(batch, size, preset=preset, config=overrides)  # run only
        run = time.perf_counter() - t0
        timing[str(size)] = {"images": len(members), "compile_s": round(first - run, 2), "run_s": round(run, 3),
                             "run_s_per_image": round(run / len(members), 3)}
        print(f"kernel size {size}: {timing[str(size)]}", file=sys.stderr, flush=True)
        for j, i in enumerate(members):
            kernels[i] = estimate.kernel[j]
    return kernels, timing


def evaluate(items, kernels, cfg) -> list[dict]:
    rows = []
    for item, k in zip(items, kernels):
        deconv = dict(lam=cfg.deconv_lam, alpha=cfg.deconv_alpha)
        estimate = np.asarray(hyper_laplacian(item.blurred, k, **deconv))
        reference = np.asarray(hyper_laplacian(item.blurred, item.kernel, **deconv))
        metrics = {}
        for name, image in (("map", estimate), ("true_kernel", reference), ("blurred", item.blurred)):
            p, s, _ = aligned_psnr_ssim(image, item.sharp, max_shift=5, crop=15)
            metrics[name] = {"psnr": round(float(p), 3), "ssim": round(float(s), 4)}
        er = float(error_ratio(estimate, reference, item.sharp, max_shift=5, crop=15))
        similarity = float(kernel_similarity(k, item.kernel))
        rows.append({"name": item.name, "kernel_size": levin_kernel_size(item.name), **metrics,
                     "error_ratio": round(er, 3), "kernel_similarity": round(similarity, 4)})
    return rows


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {}
    ers = np.array([r["error_ratio"] for r in rows])
    out = {"images": len(rows)}
    out.update({name: {m: round(float(np.mean([r[name][m] for r in rows])), 4) for m in ("psnr", "ssim")}
                for name in ("map", "true_kernel", "blurred")})
    out.update(error_ratio_mean=round(float(ers.mean()), 3), error_ratio_median=round(float(np.median(ers)), 3),
               success_rate=round(float(np.mean(ers <= SUCCESS_ER)), 4),
               fraction_error_ratio_at_most={str(r): round(float(np.mean(ers <= r)), 4) for r in (1, 2, 3, 4, 5)},
               kernel_similarity_mean=round(float(np.mean([r["kernel_similarity"] for r in rows])), 4))
    return out


def markdown(record: dict) -> str:
    s = record["summary"]
    m = record["machine"]
    per_image = np.mean([g["run_s_per_image"] for g in record["timing"].values()])
    lines = [f"# Levin benchmark: classical MAP kernel estimation ({record['preset']} preset)", "",
             f"Machine: {m['processor']}, {m['cpu_count']} CPU cores ({m['backend']}, jax {m['jax']}), shared with "
             f"other jobs. {record['images']} images, SelfDeblur's kernel sizes, overrides: {record['overrides']}. "
             f"Kernel estimation {per_image:.2f} s per image in batches of one kernel size (compile excluded; "
             f"compile {np.mean([g['compile_s'] for g in record['timing'].values()]):.0f} s per kernel size). "
             "Non-blind step: hyper-Laplacian (Krishnan & Fergus) with the same settings for the estimated and "
             "the true kernel. Error ratio = SSD ratio after Levin's alignment; success = ER <= 3.", "",
             "| images | blurred PSNR / SSIM | MAP PSNR / SSIM | true-kernel PSNR / SSIM | ER mean | ER median "
             "| success | ER <= 1, 2, 3, 4, 5 | kernel sim. |", "|---|---|---|---|---|---|---|---|---|"]
    for subset, s in record["summary"].items():
        if not s:
            continue
        fractions = ", ".join(f"{v:.2f}" for v in s["fraction_error_ratio_at_most"].values())
        lines.append(f"| {subset} ({s['images']}) | {s['blurred']['psnr']:.2f} / {s['blurred']['ssim']:.3f} "
                     f"| {s['map']['psnr']:.2f} / {s['map']['ssim']:.3f} "
                     f"| {s['true_kernel']['psnr']:.2f} / {s['true_kernel']['ssim']:.3f} "
                     f"| {s['error_ratio_mean']:.2f} | {s['error_ratio_median']:.2f} | {100 * s['success_rate']:.1f}% "
                     f"| {fractions} | {s['kernel_similarity_mean']:.3f} |")
    lines += ["", "| image | k | tuning set | MAP PSNR / SSIM | true-kernel PSNR / SSIM | blurred PSNR | ER "
              "| kernel sim. |", "|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        lines.append(f"| {r['name']} | {r['kernel_size']} | {'yes' if r['name'] in TUNING_ITEMS else 'no'} "
                     f"| {r['map']['psnr']:.2f} / {r['map']['ssim']:.3f} | "
                     f"{r['true_kernel']['psnr']:.2f} / {r['true_kernel']['ssim']:.3f} | {r['blurred']['psnr']:.2f} | "
                     f"{r['error_ratio']:.2f} | {r['kernel_similarity']:.3f} |")
    if record.get("notes"):
        lines += ["", record["notes"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--subset", default="all", choices=["all", "tuning", "held-out"],
                        help="all 32 items, or the 16 the defaults were tuned on, or the other 16")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides NAME=VALUE")
    parser.add_argument("--notes", default="", help="a paragraph appended to the markdown (e.g. the tuning done)")
    parser.add_argument("--out", default="auto",
                        help="JSON path; 'auto': results/levin_map[_<preset>]_<device>.json (+ .md)")
    args = parser.parse_args(argv)

    overrides = parse_overrides(args.set) or None
    cfg = resolve_config(args.preset, overrides)
    items = [item for item in levin() if in_subset(item.name, args.subset)]
    t0 = time.perf_counter()
    kernels, timing = estimate_all(items, args.preset, overrides)
    rows = evaluate(items, kernels, cfg)
    summaries = {subset: summary([r for r in rows if in_subset(r["name"], subset)])
                 for subset in ("all", "tuning", "held-out")}
    record = {"benchmark": "levin_map", "preset": args.preset, "overrides": overrides, "subset": args.subset,
              "images": len(items), "config": dict(vars(cfg)), "machine": machine(), "timing": timing,
              "wall_s": round(time.perf_counter() - t0, 1), "summary": summaries, "rows": rows, "notes": args.notes}
    stem = "levin_map" if args.preset == "default" else f"levin_map_{args.preset}"
    out = RESULTS / f"{stem}_{device_tag()}.json" if args.out == "auto" else Path(args.out)
    write_json(out, record)
    out.with_suffix(".md").write_text(markdown(record))
    print(json.dumps(record["summary"], indent=1))
    return record


if __name__ == "__main__":
    main()
