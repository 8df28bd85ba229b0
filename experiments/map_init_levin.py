"""Does a short MAP-initialised SelfDeblur add anything over the MAP pipeline? (CPU, a few Levin items.)

Per item, scored like experiments/levin_pipeline.py (8-bit rounding, 15 px crop, best shift up to 5 px:
aligned PSNR / SSIM; kernel similarity to the true kernel):

- map: the MAP estimator's kernel (tuned "default" preset) + its non-blind step (`--nonblind`);
- map_dip: `deblur(..., method="selfdeblur", preset="fast", iterations=N, init="map")`: MAP as above, the
  generators fitted to its kernel and non-blind image, then N SelfDeblur iterations (the fast preset's
  schedule compressed to N); scored are the generator's image ("map_dip") and the whole input deconvolved
  with its final kernel by the same non-blind step as "map" ("map_dip_deconv");
- dip (with --baseline): the same N iterations from SelfDeblur's random start (the same seeds).

The items share one kernel size (one compiled program, one batch): by default kernels 7 and 8 (21 px)
on the four images.

  python -m experiments.map_init_levin --iterations 300 --baseline
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from experiments.levin_pipeline import quantize, score

from jaxdeblur.api import deblur_batch
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.estimate import PRESETS, deconvolve
from jaxdeblur.methods.map_estimation import denoiser_for
from jaxdeblur.methods.map_init import MapInitConfig
from jaxdeblur.metrics import kernel_similarity

ITEMS = ("im1_kernel7", "im2_kernel8", "im3_kernel7", "im4_kernel8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", nargs="+", default=list(ITEMS), help="Levin items, all of one kernel size")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--fit-max", type=int, default=MapInitConfig().fit_max_iterations,
                    help="MapInitConfig.fit_max_iterations (cap of the fit)")
    ap.add_argument("--nonblind", default="hyper_laplacian", choices=("hyper_laplacian", "learned"))
    ap.add_argument("--baseline", action="store_true", help="also SelfDeblur from its random start")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    by_name = {item.name: item for item in levin()}
    items = [by_name[n] for n in args.items]
    sizes = {levin_kernel_size(n) for n in args.items}
    if len(sizes) != 1:
        raise SystemExit(f"--items must share one kernel size, got {sorted(sizes)}")
    size = sizes.pop()
    map_cfg = dataclasses.replace(PRESETS["default"], nonblind=args.nonblind)
    init_cfg = MapInitConfig(map=map_cfg, fit_max_iterations=args.fit_max)
    denoiser = denoiser_for(map_cfg)
    ys = [item.blurred for item in items]
    seeds = list(range(len(items)))
    options = EngineOptions(progress=False, chunk=50, log=lambda m: print(m, file=sys.stderr, flush=True))
    runs = {}
    t0 = time.perf_counter()
    runs["map_dip"] = deblur_batch(ys, size, "selfdeblur", preset="fast", iterations=args.iterations, seeds=seeds,
                                   init="map", init_config=init_cfg, options=options)
    wall = {"map_dip": time.perf_counter() - t0}
    print(f"map_dip: {wall['map_dip']:.0f} s", file=sys.stderr, flush=True)
    if args.baseline:
        t0 = time.perf_counter()
        runs["dip"] = deblur_batch(ys, size, "selfdeblur", preset="fast", iterations=args.iterations, seeds=seeds,
                                   options=options)
        wall["dip"] = time.perf_counter() - t0
        print(f"dip: {wall['dip']:.0f} s", file=sys.stderr, flush=True)

    rows = []
    for i, item in enumerate(items):
        r = runs["map_dip"][i]
        map_kernel = r.extras["init_kernel"]
        images = {"blurred": item.blurred, "map": r.extras["init_image"][..., 0],
                  "map_dip": r.image, "map_dip_deconv": deconvolve(item.blurred, r.kernel, map_cfg, denoiser=denoiser),
                  "true_kernel": deconvolve(item.blurred, item.kernel, map_cfg, denoiser=denoiser)}
        kernels = {"map": map_kernel, "map_dip": r.kernel}
        if "dip" in runs:
            d = runs["dip"][i]
            images["dip"] = d.image
            images["dip_deconv"] = deconvolve(item.blurred, d.kernel, map_cfg, denoiser=denoiser)
            kernels["dip"] = d.kernel
        row = {"name": item.name, "kernel_size": size, **{k: score(v, item.sharp) for k, v in images.items()},
               "kernel_similarity": {k: round(float(kernel_similarity(v, item.kernel)), 4) for k, v in kernels.items()},
               "fit": {k: np.asarray(r.extras[k]).tolist() for k in r.extras if k.startswith("fit_")},
               "timings": {k: round(float(v), 2) for k, v in r.timings.items()}}
        rows.append(row)
        print(f"{item.name}: " + ", ".join(f"{k} {row[k]['psnr']:.2f}" for k in images) + " | ks "
              + ", ".join(f"{k} {v:.3f}" for k, v in row["kernel_similarity"].items()), file=sys.stderr, flush=True)

    columns = [c for c in ("blurred", "map", "map_dip", "map_dip_deconv", "dip", "dip_deconv", "true_kernel")
               if c in rows[0]]
    summary = {c: {m: round(float(np.mean([r[c][m] for r in rows])), 4) for m in ("psnr", "ssim")} for c in columns}
    summary["kernel_similarity"] = {k: round(float(np.mean([r["kernel_similarity"][k] for r in rows])), 4)
                                    for k in rows[0]["kernel_similarity"]}
    record = {"what": __doc__.split("\n")[0], "items": args.items, "kernel_size": size,
              "iterations": args.iterations, "dip_preset": "fast", "nonblind": args.nonblind,
              "init_config": dataclasses.asdict(init_cfg), "summary": summary, "rows": rows,
              "wall_s": {k: round(v, 1) for k, v in wall.items()}, "machine": machine()}
    out = args.out or RESULTS / f"map_init_levin_{device_tag()}.json"
    write_json(out, record)
    out.with_suffix(".md").write_text(markdown(record, columns))
    print(out, file=sys.stderr)


def markdown(record: dict, columns: list[str]) -> str:
    s = record["summary"]
    lines = [f"# {record['what']}", "",
             f"Levin items {', '.join(record['items'])} (kernel size {record['kernel_size']}); SelfDeblur "
             f"'{record['dip_preset']}' preset compressed to {record['iterations']} iterations; non-blind step: "
             f"{record['nonblind']}; machine: {record['machine']['processor']}, {record['machine']['cpu_count']} "
             f"CPUs ({record['machine']['backend']}, shared with other jobs); wall seconds: {record['wall_s']}.",
             "", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|",
             "| PSNR (dB) | " + " | ".join(f"{s[c]['psnr']:.2f}" for c in columns) + " |",
             "| SSIM | " + " | ".join(f"{s[c]['ssim']:.4f}" for c in columns) + " |", "",
             "Kernel similarity to the true kernel (mean): "
             + ", ".join(f"{k} {v:.4f}" for k, v in s["kernel_similarity"].items()), "",
             "| item | " + " | ".join(columns) + " | ks map | ks map_dip |", "|---" * (len(columns) + 3) + "|"]
    for r in record["rows"]:
        lines.append(f"| {r['name']} | " + " | ".join(f"{r[c]['psnr']:.2f}" for c in columns)
                     + f" | {r['kernel_similarity']['map']:.3f} | {r['kernel_similarity']['map_dip']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
