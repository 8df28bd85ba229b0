"""Levin et al. benchmark: all 32 images in one batched run per seed.

Per image: aligned PSNR / SSIM (Levin's protocol: 15 px crop, sub-pixel
shift search) and the error ratio against a non-blind deconvolution with the
true kernel (`jaxdeblur.deconv.hyper_laplacian`), then mean +/- std over
seeds. Kernel sizes per image are SelfDeblur's (REFERENCE.md). Results are
written after every seed (a rerun skips the seeds already in the file), as
JSON and a markdown table beside the paper's numbers.

  python -m experiments.levin --method selfdeblur --preset paper --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from jaxdeblur.config import parse_overrides

from jaxdeblur.api import deblur_batch
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.metrics import aligned_psnr_ssim, error_ratio

PAPER = {"selfdeblur": {"psnr": 33.07, "ssim": 0.931}, "uncertainty": {"psnr": 33.65, "ssim": 0.947},
         "kotera": {}}


def spread(items: list, n: int) -> list:
    """n distinct Levin items of the 32, spread over images and kernels: item k is (image (k + k // 8) % 4, kernel k % 8).

    n = 8 gives each kernel once and each image twice; every further 8 give each kernel once more, on the
    next image (image k % 4 alone would repeat the first 8 items from n = 9 on); n = 32 gives all items.
    """
    if not 1 <= n <= len(items):
        raise SystemExit(f"--images must be in 1..{len(items)}, got {n}")
    if n == len(items):
        return items
    return [items[((k + k // 8) % 4) * 8 + k % 8] for k in range(n)]


def load_record(path: Path, header: dict) -> dict:
    if path.exists():
        import json
        record = json.loads(path.read_text())
        if {k: record.get(k) for k in header} == header:
            return record
    return {**header, "seeds": {}}


def evaluate(items, results, references) -> list[dict]:
    rows = []
    for item, result, reference in zip(items, results, references):
        p, s, _ = aligned_psnr_ssim(result.image, item.sharp, max_shift=5, crop=15)
        er = error_ratio(result.image, reference, item.sharp, max_shift=5, crop=15)
        rows.append({"name": item.name, "psnr": float(p), "ssim": float(s), "error_ratio": float(er),
                     "final_loss": float(result.history["loss"][-1])})
    return rows


def summary(record: dict) -> dict:
    per_seed = {seed: rows for seed, rows in record["seeds"].items()}
    if not per_seed:
        return {}
    means = {m: [np.mean([r[m] for r in rows]) for rows in per_seed.values()] for m in ("psnr", "ssim", "error_ratio")}
    out = {m: {"mean": float(np.mean(v)), "std_over_seeds": float(np.std(v))} for m, v in means.items()}
    ers = np.array([[r["error_ratio"] for r in rows] for rows in per_seed.values()])
    out["fraction_error_ratio_below"] = {str(t): float(np.mean(ers < t)) for t in (1.5, 2, 3, 4, 5)}
    return out


def markdown(record: dict) -> str:
    s, paper = record["summary"], PAPER.get(record["method"], {})
    lines = [f"# Levin benchmark: {record['method']} ({record['preset']} preset{record.get('label', '')})", "",
             f"Machine: {record['machine']['device_kind']} ({record['machine']['backend']}), "
             f"{len(record['seeds'])} seed(s), iterations {record['iterations']}.", "",
             "| | PSNR (dB) | SSIM | error ratio |", "|---|---|---|---|",
             f"| jaxdeblur (mean +/- std over seeds) | {s['psnr']['mean']:.2f} +/- {s['psnr']['std_over_seeds']:.2f} "
             f"| {s['ssim']['mean']:.3f} +/- {s['ssim']['std_over_seeds']:.3f} "
             f"| {s['error_ratio']['mean']:.2f} +/- {s['error_ratio']['std_over_seeds']:.2f} |"]
    if paper:
        lines.append(f"| paper (full setting) | {paper['psnr']:.2f} | {paper['ssim']:.3f} | |")
    lines += ["", "| image | " + " | ".join(f"seed {k}" for k in record["seeds"]) + " |",
              "|---|" + "---|" * len(record["seeds"])]
    names = [r["name"] for r in next(iter(record["seeds"].values()))]
    for i, name in enumerate(names):
        cells = [f"{rows[i]['psnr']:.2f} / {rows[i]['ssim']:.3f}" for rows in record["seeds"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="selfdeblur")
    parser.add_argument("--preset", default="paper", choices=["paper", "fast", "tiny"])
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--images", type=int, default=32, help="N of the 32 items, spread over images and kernels")
    parser.add_argument("--label", default="", help="appended to the title, e.g. ', reduced for CPU'")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides NAME=VALUE")
    parser.add_argument("--checkpoints", type=Path, default=None, help="engine checkpoints (resumable runs)")
    args = parser.parse_args(argv)

    import json
    overrides = parse_overrides(args.set) or None
    items = spread(list(levin()), args.images)
    sizes = [levin_kernel_size(item.name) for item in items]
    references = [np.asarray(hyper_laplacian(item.blurred, item.kernel)) for item in items]

    stem = f"levin_{args.method}_{args.preset}_{device_tag()}"
    json_path, md_path = RESULTS / f"{stem}.json", RESULTS / f"{stem}.md"
    header = {"method": args.method, "preset": args.preset, "iterations": args.iterations, "overrides": overrides,
              "images": len(items)}
    record = load_record(json_path, header)
    record.update(machine=machine(), label=args.label, kernel_sizes=sizes)
    for seed in args.seeds:
        if str(seed) in record["seeds"]:
            print(f"seed {seed}: already in {json_path}, skipped", file=sys.stderr)
            continue
        options = EngineOptions(description=f"levin seed {seed}",
                                checkpoint_dir=str(args.checkpoints / f"seed{seed}") if args.checkpoints else None,
                                resume=args.checkpoints is not None)
        t0 = time.perf_counter()
        results = deblur_batch([it.blurred for it in items], sizes, args.method, preset=args.preset,
                               iterations=args.iterations, seeds=[seed * 1000 + i for i in range(len(items))],
                               config=overrides, options=options)
        record.setdefault("wall_s", {})[str(seed)] = round(time.perf_counter() - t0, 1)
        record["iterations_run"] = len(results[0].history["loss"])
        record["seeds"][str(seed)] = evaluate(items, results, references)
        record["summary"] = summary(record)
        write_json(json_path, record)
        md_path.write_text(markdown(record))
        print(json.dumps({"seed": seed, **record["summary"]}), flush=True)
    print(md_path.read_text() if md_path.exists() else "no results")


if __name__ == "__main__":
    main()
