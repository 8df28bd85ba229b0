"""Nair & Patel's ablation (Table 3) on the 32 Levin images, blind and with a non-blind step.

Four variants of `method="uncertainty"` (same loss and optimiser, modules
switched by the config booleans `attention` / `uncertainty`):

  selfdeblur (no module) | +image (attention) | +kernel (uncertainty) | full

Each variant runs all images in one batched call per seed. Every image is
scored twice with Levin's protocol (`levin.evaluate`: aligned PSNR / SSIM,
error ratio): the generator's image ("blind") and the blurred input
deconvolved with the estimated kernel by `jaxdeblur.deconv.hyper_laplacian`
("non-blind", the paper's Delta columns). Mean +/- std over seeds
(`levin.summary`). The JSON and markdown are rewritten after every
(variant, seed), and a rerun skips the pairs already in the JSON.

  python -m experiments.uncertainty_levin --preset paper --seeds 0 1 2
  python -m experiments.uncertainty_levin --preset tiny --images 2 --seeds 0 --out /tmp/smoke   # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from jaxdeblur.config import parse_overrides
from experiments.levin import evaluate, load_record, spread, summary

from jaxdeblur.api import deblur_batch
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.methods import compress_schedule, get_method, resolve
from jaxdeblur.methods.uncertainty import ablation_config

VARIANTS = ("selfdeblur", "+image", "+kernel", "full")
# Table 3 (blind) and Table 1 (non-blind, Delta) of the paper: PSNR dB / SSIM.
PAPER = {"selfdeblur": {"blind": (33.07, 0.931), "nonblind": (33.32, 0.943)},
         "+image": {"blind": (33.31, 0.937)},
         "+kernel": {"blind": (33.50, 0.939)},
         "full": {"blind": (33.65, 0.947), "nonblind": (33.87, 0.952)}}
MODES = ("blind", "nonblind")


def nonblind(items, results) -> list:
    """Result-likes whose image is the blurred input deconvolved with the estimated kernel."""
    return [types.SimpleNamespace(image=np.clip(np.asarray(hyper_laplacian(item.blurred, r.kernel)), 0, 1),
                                  history=r.history) for item, r in zip(items, results)]


def summarise(record: dict) -> dict:
    return {variant: {mode: summary({"seeds": {s: rows[mode] for s, rows in entry["seeds"].items()}})
                      for mode in MODES}
            for variant, entry in record["variants"].items() if entry["seeds"]}


def _cell(stats: dict) -> str:
    if not stats:
        return ""
    return (f"{stats['psnr']['mean']:.2f} +/- {stats['psnr']['std_over_seeds']:.2f} / "
            f"{stats['ssim']['mean']:.3f} +/- {stats['ssim']['std_over_seeds']:.3f}")


def _names(record: dict) -> list[str]:
    rows = next(iter(next(iter(record["variants"].values()))["seeds"].values()))["blind"]
    return [row["name"] for row in rows]


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Nair & Patel ablation on Levin ({record['preset']} preset)", "",
             f"Machine: {m['device_kind']} ({m['backend']}, {m['devices']} device(s), {m['cpu_count']} CPUs), "
             f"{record['images']} image(s), iterations {record.get('iterations_run')}"
             f"{' (the schedule compressed to fit)' if record.get('schedule') else ''}, "
             f"overrides {record['overrides']}.", "",
             "Images: " + ", ".join(_names(record)) + ".", "",
             "PSNR (dB) / SSIM, mean +/- std over seeds; non-blind = hyper-Laplacian deconvolution of the input "
             "with the estimated kernel.", "",
             "| variant | seed(s) | blind | non-blind | error ratio (blind) | paper blind | paper non-blind |",
             "|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        entry = record["variants"].get(variant)
        if not entry or not entry["seeds"]:
            continue
        s, paper = record["summary"][variant], PAPER[variant]
        ratio = s["blind"]["error_ratio"]
        lines.append(f"| {variant} | {', '.join(entry['seeds'])} | {_cell(s['blind'])} | {_cell(s['nonblind'])} "
                     f"| {ratio['mean']:.2f} +/- {ratio['std_over_seeds']:.2f} "
                     + "".join(f"| {'%.2f / %.3f' % paper[k] if k in paper else ''} " for k in MODES) + "|")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=["paper", "fast", "tiny"])
    parser.add_argument("--schedule", type=int, default=None,
                        help="iterations, the preset's schedule scaled to fit (shorter CPU runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--images", type=int, default=32, help="N of the 32 items, spread over images and kernels")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides NAME=VALUE (not the switches)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON and markdown")
    args = parser.parse_args(argv)

    overrides = parse_overrides(args.set) or None
    if overrides and {"attention", "uncertainty"} & set(overrides):
        parser.error("the switches attention / uncertainty are set per variant; choose variants with --variants")
    base = resolve(get_method("uncertainty").presets, args.preset, overrides)
    base = base if args.schedule is None else compress_schedule(base, args.schedule)
    items = spread(list(levin()), args.images)
    sizes = [levin_kernel_size(item.name) for item in items]
    references = [np.asarray(hyper_laplacian(item.blurred, item.kernel)) for item in items]

    stem = f"levin_uncertainty_ablation_{args.preset}_{device_tag()}"
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    header = {"method": "uncertainty", "preset": args.preset, "schedule": args.schedule, "overrides": overrides,
              "images": len(items)}
    record = load_record(json_path, header)
    record.pop("seeds", None)
    record.setdefault("variants", {})
    record.update(machine=machine(), kernel_sizes=sizes)
    for variant in args.variants:
        entry = record["variants"].setdefault(variant, {"seeds": {}, "wall_s": {}})
        cfg = ablation_config(base, variant)
        entry["config"] = repr(cfg)
        for seed in args.seeds:
            if str(seed) in entry["seeds"]:
                print(f"{variant} seed {seed}: already in {json_path}, skipped", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            results = deblur_batch([it.blurred for it in items], sizes, "uncertainty", preset=args.preset,
                                   seeds=[seed * 1000 + i for i in range(len(items))],
                                   config=cfg, options=EngineOptions(description=f"{variant} seed {seed}"))
            entry["wall_s"][str(seed)] = round(time.perf_counter() - t0, 1)
            rows = {"blind": evaluate(items, results, references),
                    "nonblind": evaluate(items, nonblind(items, results), references)}
            if cfg.uncertainty:
                for row, r in zip(rows["blind"], results):
                    row["kernel_variance_sum"] = float(np.sum(r.extras["kernel_variance"]))
            entry["seeds"][str(seed)] = rows
            record["iterations_run"] = len(results[0].history["loss"])
            record["summary"] = summarise(record)
            write_json(json_path, record)
            md_path.write_text(markdown(record))
            print(json.dumps({"variant": variant, "seed": seed, **record["summary"][variant]["blind"]["psnr"]}),
                  flush=True)
    print(md_path.read_text() if md_path.exists() else "no results")


if __name__ == "__main__":
    main()
