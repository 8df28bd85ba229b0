"""The CPU blind pipeline on Levin et al.'s benchmark and on set12 crops: MAP kernel -> non-blind step.

Per image (SelfDeblur's scoring, `jaxdeblur.metrics`: estimates rounded to 8 bits as the PNGs its statistic
scripts read, 15 px border crop, best shift in 0.25 px steps up to 5 px with bilinear interpolation, PSNR at
peak 255 and Wang et al.'s SSIM on the aligned crop; error ratio as in SelfDeblur's statistic_levin.m, the
NORM ratio ||aligned estimate - gt|| / ||aligned true-kernel result - gt|| with the same non-blind step, i.e.
the square root of Levin et al.'s SSD ratio):

- blurred: the input;
- map_hl: the MAP kernel (`jaxdeblur.estimate`, tuned "default" preset) + hyper-Laplacian;
- map_learned: the MAP kernel + the learned step (plug-and-play HQS with the shipped denoiser);
- true_hl / true_learned: the TRUE kernel + either step (the references of the error ratios);
- true_learned_fine: the TRUE kernel + the learned step with a noise floor of FINE_FLOOR instead of the
  default's (the non-blind step's own ability, when the kernel is exact; the blind default keeps 1 %).
(MAP-initialised DIP, `deblur(..., init="map")`, is measured apart: experiments/map_init_levin.py.)

Seconds: kernel estimation per image (batched per kernel size) and the learned step per image, compile
excluded (each program is run once before it is timed) and reported apart.

  python -m experiments.levin_pipeline                    # Levin 32 + set12 x 8 kernels -> results/levin_pipeline_cpu.{json,md}
  python -m experiments.levin_pipeline --subset tuning --no-set12 --set pnp_iterations=8 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from experiments.levin_map import TUNING_ITEMS, in_subset

from jaxdeblur.config import parse_overrides
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.data.benchmarks import synthetic_set
from jaxdeblur.data.sources import ImageFolder
from jaxdeblur.estimate import deconvolve, estimate_kernels, resolve_config
from jaxdeblur.metrics import align, aligned_psnr_ssim, kernel_similarity
from jaxdeblur.methods.map_estimation import denoiser_for

SET12 = Path(__file__).resolve().parents[2] / "shared" / "data" / "set12"
COLUMNS = ("blurred", "map_hl", "map_learned", "true_hl", "true_learned", "true_learned_fine")
FINE_FLOOR = 0.005  # true_learned_fine: the learned step with the true kernel and a noise floor of 0.5 %


def quantize(x: np.ndarray) -> np.ndarray:
    """What an 8-bit PNG keeps of an image in [0, 1]."""
    return np.round(np.clip(x, 0, 1) * 255) / 255


def score(image: np.ndarray, sharp: np.ndarray) -> dict:
    p, s, _ = aligned_psnr_ssim(quantize(image), sharp, max_shift=5, crop=15)
    return {"psnr": round(float(p), 3), "ssim": round(float(s), 4)}


def norm_error_ratio(estimate: np.ndarray, reference: np.ndarray, sharp: np.ndarray) -> float:
    """SelfDeblur's error ratio: ||aligned estimate - gt|| / ||aligned reference - gt|| on the 15 px crop."""
    gt = sharp[15:-15, 15:-15]
    a, _ = align(quantize(estimate), sharp, max_shift=5, crop=15)
    b, _ = align(quantize(reference), sharp, max_shift=5, crop=15)
    return float(np.linalg.norm(np.asarray(a) - gt) / np.linalg.norm(np.asarray(b) - gt))


def timed(fn, *args, **kwargs):
    """(result, seconds of a second call): the first call compiles."""
    fn(*args, **kwargs)
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run_set(items, sizes, cfg, denoiser) -> tuple[list[dict], dict]:
    """Rows of COLUMNS per item, and timings (estimation and learned step per image, compile excluded)."""
    hl_cfg = dataclasses.replace(cfg, nonblind="hyper_laplacian")
    fine_cfg = dataclasses.replace(cfg, pnp_noise_sigma=FINE_FLOOR)
    groups = defaultdict(list)
    for i, size in enumerate(sizes):
        groups[(items[i].blurred.shape, size)].append(i)
    kernels: list = [None] * len(items)
    estimate_s, learned_s, compiled = [], [], set()
    for (_, size), members in sorted(groups.items(), key=lambda g: g[0][1]):
        batch = np.stack([items[i].blurred for i in members])
        estimate, seconds = timed(estimate_kernels, batch, size, config=cfg)
        estimate_s.append(seconds / len(members))
        for j, i in enumerate(members):
            kernels[i] = np.asarray(estimate.kernel[j])
        print(f"kernel {size}: {seconds / len(members):.2f} s per image", file=sys.stderr, flush=True)
    rows = []
    for item, kernel, size in zip(items, kernels, sizes):
        key = (item.blurred.shape, size)
        if key not in compiled:  # compile the learned step for this padded shape
            deconvolve(item.blurred, kernel, cfg, denoiser=denoiser)
            compiled.add(key)
        t0 = time.perf_counter()
        images = {"map_learned": deconvolve(item.blurred, kernel, cfg, denoiser=denoiser)}
        learned_s.append(time.perf_counter() - t0)
        images["map_hl"] = deconvolve(item.blurred, kernel, hl_cfg)
        images["true_hl"] = deconvolve(item.blurred, item.kernel, hl_cfg)
        images["true_learned"] = deconvolve(item.blurred, item.kernel, cfg, denoiser=denoiser)
        images["true_learned_fine"] = deconvolve(item.blurred, item.kernel, fine_cfg, denoiser=denoiser)
        images["blurred"] = item.blurred
        row = {"name": item.name, "kernel_size": int(size), **{c: score(images[c], item.sharp) for c in COLUMNS}}
        row["map_hl"]["error_ratio"] = round(norm_error_ratio(images["map_hl"], images["true_hl"], item.sharp), 3)
        row["map_learned"]["error_ratio"] = round(
            norm_error_ratio(images["map_learned"], images["true_learned"], item.sharp), 3)
        row["kernel_similarity"] = round(float(kernel_similarity(kernel, item.kernel)), 4)
        rows.append(row)
        print(f"{item.name}: " + ", ".join(f"{c} {row[c]['psnr']:.2f}" for c in COLUMNS), file=sys.stderr,
              flush=True)
    timing = {"estimate_s_per_image": round(float(np.mean(estimate_s)), 3),
              "learned_step_s_per_image": round(float(np.mean(learned_s)), 3)}
    timing["pipeline_s_per_image"] = round(timing["estimate_s_per_image"] + timing["learned_step_s_per_image"], 3)
    return rows, timing


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {}
    out = {"images": len(rows)}
    for c in COLUMNS:
        out[c] = {m: round(float(np.mean([r[c][m] for r in rows])), 4) for m in ("psnr", "ssim")}
    for c in ("map_hl", "map_learned"):
        ers = np.array([r[c]["error_ratio"] for r in rows])
        out[c].update(error_ratio=round(float(ers.mean()), 3), success_rate=round(float(np.mean(ers <= 3 ** 0.5)), 4))
    out["kernel_similarity"] = round(float(np.mean([r["kernel_similarity"] for r in rows])), 4)
    return out


def set12_items(folder: Path) -> tuple[list, list[int]]:
    """set12's 12 images (centre 256 px crops) x the 8 Levin kernels, 'valid' blur + 1% noise, 8-bit."""
    source = ImageFolder(folder, mode="gray")
    images = {}
    for i in range(len(source)):
        record = source[i]
        x = np.asarray(record["sharp"])[..., 0]
        top, left = (x.shape[0] - 256) // 2, (x.shape[1] - 256) // 2
        images[f"set12_{i + 1:02d}"] = x[top:top + 256, left:left + 256]
    kernels = {f"kernel{j + 1}": item.kernel for j, item in enumerate(levin()[:8])}
    items = synthetic_set(images, kernels, noise_sigma=0.01, seed=0, mode="valid")
    return items, [levin_kernel_size(f"im1_{item.name.rsplit('_', 1)[1]}") for item in items]


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# CPU blind pipeline: MAP kernel -> non-blind step ({record['preset']} preset)", "",
             f"Machine: {m['processor']}, {m['cpu_count']} CPU cores ({m['backend']}, jax {m['jax']}). "
             f"Denoiser: {record['denoiser']}. Scoring: SelfDeblur's statistic scripts (8-bit estimates, 15 px "
             "crop, shifts up to 5 px in 0.25 px steps, bilinear; error ratio = norm ratio against the true kernel "
             "with the same non-blind step; success = ER <= sqrt(3), i.e. Levin's SSD ratio <= 3).", ""]
    for name, part in record["sets"].items():
        t = part["timing"]
        lines += [f"## {name}", "", f"Seconds per image, compile excluded: kernel estimation "
                  f"{t['estimate_s_per_image']:.2f}, learned step {t['learned_step_s_per_image']:.2f}, pipeline "
                  f"{t['pipeline_s_per_image']:.2f}.", "",
                  "| images | blurred | MAP + HL | MAP + learned | true k + HL | true k + learned | true k + learned, "
                  f"noise floor {FINE_FLOOR} | ER HL / learned | success HL / learned | kernel sim. |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for subset, s in part["summary"].items():
            if s:
                cells = " | ".join(f"{s[c]['psnr']:.2f} / {s[c]['ssim']:.3f}" for c in COLUMNS)
                lines.append(f"| {subset} ({s['images']}) | {cells} | {s['map_hl']['error_ratio']:.2f} / "
                             f"{s['map_learned']['error_ratio']:.2f} | {100 * s['map_hl']['success_rate']:.0f}% / "
                             f"{100 * s['map_learned']['success_rate']:.0f}% | {s['kernel_similarity']:.3f} |")
        lines += ["", "| image | k | " + " | ".join(COLUMNS) + " | ER learned |", "|---|---|" + "---|" * (len(COLUMNS) + 1)]
        for r in part["rows"]:
            lines.append(f"| {r['name']} | {r['kernel_size']} | " + " | ".join(
                f"{r[c]['psnr']:.2f} / {r[c]['ssim']:.3f}" for c in COLUMNS) + f" | {r['map_learned']['error_ratio']:.2f} |")
        lines.append("")
    if record.get("notes"):
        lines += [record["notes"], ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--subset", default="all", choices=["all", "tuning", "held-out"])
    parser.add_argument("--set", nargs="*", default=[], help="MapConfig overrides NAME=VALUE")
    parser.add_argument("--no-set12", action="store_true", help="Levin only")
    parser.add_argument("--set12", type=Path, default=SET12)
    parser.add_argument("--notes", default="")
    parser.add_argument("--out", default="auto", help="JSON path; 'auto': results/levin_pipeline_<device>.json (+ .md)")
    args = parser.parse_args(argv)

    cfg = resolve_config(args.preset, parse_overrides(args.set) or None)
    cfg = dataclasses.replace(cfg, nonblind="learned")
    denoiser = denoiser_for(cfg)
    sets = {}
    items = [item for item in levin() if in_subset(item.name, args.subset)]
    rows, timing = run_set(items, [levin_kernel_size(item.name) for item in items], cfg, denoiser)
    sets["levin"] = {"timing": timing, "rows": rows, "summary": {
        s: summary([r for r in rows if in_subset(r["name"], s)]) for s in ("all", "tuning", "held-out")}}
    if not args.no_set12 and args.set12.is_dir():
        items, sizes = set12_items(args.set12)
        rows, timing = run_set(items, sizes, cfg, denoiser)
        sets["set12 x 8 Levin kernels, 1% noise"] = {"timing": timing, "rows": rows, "summary": {"all": summary(rows)}}
    record = {"benchmark": "levin_pipeline", "preset": args.preset, "overrides": args.set, "denoiser": cfg.denoiser,
              "config": dict(vars(cfg)), "machine": machine(), "tuning_items": list(TUNING_ITEMS), "sets": sets,
              "notes": args.notes}
    out = RESULTS / f"levin_pipeline_{device_tag()}.json" if args.out == "auto" else Path(args.out)
    write_json(out, record)
    out.with_suffix(".md").write_text(markdown(record))
    print(json.dumps({k: v["summary"] for k, v in sets.items()}, indent=1))
    return record


if __name__ == "__main__":
    main()
