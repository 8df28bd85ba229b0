"""Kotera et al.'s protocol: ISNR distribution of SelfDeblur vs Kotera (+ ablation) over seeds.

Inputs: sharp photos (skimage, `jaxdeblur.data.sample_photos`, centre crop
--size) x Levin's 8 kernels (`jaxdeblur.data.levin()` kernels, convolution
convention), blurred with 'valid' convolution + 1% Gaussian noise, 8-bit
quantised (`jaxdeblur.data.synthetic_set`) -- the paper used 8 Kodak photos
x 8 kernels -- or, with --levin, the 32 real Levin images (--images N: N of
them, spread over images and kernels), also scored by Levin's aligned
PSNR / SSIM. Each input is
deblurred with each of --seeds (seed s of input i: s * 1000 + i) by every
variant at the same --preset (--schedule N: N final iterations with the
preset's whole schedule scaled to fit, `jaxdeblur.methods.compress_schedule`,
for a shorter CPU run):

  selfdeblur          SelfDeblur
  kotera              all three changes
  kotera_multiscale   multiscale only   (ablation: SelfDeblur's loss, random coarsest scale)
  kotera_init         initialisation only (one scale; G_k fitted to the Gaussian)
  kotera_reg          regularisation only (one scale, random networks; l2->SSIM at 2000, TV, kernel l2)

The ablation variants keep SelfDeblur's SSIM switch point (the preset's
SelfDeblur ssim_from) except kotera_reg. ISNR = aligned PSNR(estimate) -
aligned PSNR(blurred) (`jaxdeblur.metrics.aligned_isnr`: a blind estimate is
only defined up to a shift; crop 15 px on Levin, 8 px on the smaller
synthetic images, shifts up to 5 px). Reported: mean ISNR
and mean over inputs of the std across seeds (the paper's Tab. 1), the
per-input mean/std, and a histogram of all ISNRs per variant (Fig. 3).

One group = one (variant, seed): all inputs in one `deblur_batch` call.
Results are written after every group; a rerun skips groups already in the
JSON (same header), so the study can be resumed.

  python -m experiments.kotera_isnr --preset fast --seeds 0 1 2 --photos 8 --size 256
  python -m experiments.kotera_isnr --preset tiny --seeds 0 --photos 2 --kernels 2 --size 48 --out /tmp/k  # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from experiments.levin import spread

from jaxdeblur.api import deblur_batch
from jaxdeblur.data import SAMPLE_PHOTOS, levin, levin_kernel_size, sample_photos, synthetic_set
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.methods import METHODS, compress_schedule, resolve
from jaxdeblur.metrics import aligned_isnr, aligned_psnr_ssim

PAPER = {"kodak": {"selfdeblur": (2.48, 2.52), "kotera": (5.49, 2.12)},
         "levin": {"selfdeblur": (7.62, 1.36), "kotera": (8.23, 1.21)}}
LEVIN_CROP, SYNTHETIC_CROP = 15, 8  # px cropped before the aligned scores
MAIN = ("selfdeblur", "kotera")
ABLATION = ("kotera_multiscale", "kotera_init", "kotera_reg")


def variant(name: str, preset: str, schedule: int | None = None):
    """(method, config) of a variant: the preset's, compressed to `schedule` iterations if given."""
    sd_ssim = METHODS["selfdeblur"].presets[preset].ssim_from
    off = dict(multiscale=False, init=False, use_tv=False, use_kernel_l2=False)
    table = {
        "selfdeblur": ("selfdeblur", None),
        "kotera": ("kotera", None),
        "kotera_multiscale": ("kotera", {**off, "multiscale": True, "ssim_from": sd_ssim}),
        "kotera_init": ("kotera", {**off, "init": True, "ssim_from": sd_ssim}),
        "kotera_reg": ("kotera", {**off, "use_tv": True, "use_kernel_l2": True}),
    }
    method, overrides = table[name]
    config = resolve(METHODS[method].presets, preset, overrides)
    return method, (config if schedule is None else compress_schedule(config, schedule))


def inputs(args):
    """(items, kernel sizes, dataset name)."""
    if args.levin:
        items = spread(list(levin()), args.images)
        return items, [levin_kernel_size(it.name) for it in items], "levin"
    kernels = {}
    for item in levin():
        name = item.name.rsplit("_", 1)[-1]
        kernels.setdefault(name, item.kernel)
    kernels = dict(list(kernels.items())[:args.kernels])
    photos = sample_photos(SAMPLE_PHOTOS[:args.photos], size=args.size)
    items = synthetic_set(photos, kernels, noise_sigma=args.noise, seed=0)
    return items, [levin_kernel_size(it.name.rsplit("_", 1)[-1]) for it in items], "synthetic"


def score(item, result, dataset: str) -> dict:
    """Aligned ISNR (and, on Levin, the aligned PSNR / SSIM) of one result."""
    crop = LEVIN_CROP if dataset == "levin" else SYNTHETIC_CROP
    row = {"name": item.name, "isnr": float(aligned_isnr(result.image, item.blurred, item.sharp, crop=crop)),
           "final_loss": float(result.history["loss"][-1])}
    if dataset == "levin":
        psnr, ssim, _ = aligned_psnr_ssim(result.image, item.sharp, max_shift=5, crop=LEVIN_CROP)
        row.update(aligned_psnr=float(psnr), aligned_ssim=float(ssim))
    return row


def summarise(rows_by_seed: dict) -> dict:
    """rows_by_seed {seed: [{"name", "isnr"}...]} -> mean, mean std over seeds, per input."""
    names = [r["name"] for r in next(iter(rows_by_seed.values()))]
    table = np.array([[r["isnr"] for r in rows] for rows in rows_by_seed.values()])  # (seeds, inputs)
    per_input = {n: {"mean": float(table[:, i].mean()), "std": float(table[:, i].std())} for i, n in enumerate(names)}
    out = {"mean_isnr": float(table.mean()), "mean_std_over_seeds": float(table.std(axis=0).mean()),
           "median_isnr": float(np.median(table)), "fraction_below_1db": float(np.mean(table < 1)),
           "fraction_above_5db": float(np.mean(table > 5)), "seeds": len(rows_by_seed), "per_input": per_input}
    for metric in ("aligned_psnr", "aligned_ssim"):  # Levin only
        if metric in next(iter(rows_by_seed.values()))[0]:
            out[metric] = float(np.mean([r[metric] for rows in rows_by_seed.values() for r in rows]))
    return out


def figure(record: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    values = {v: [r["isnr"] for rows in seeds.values() for r in rows]
              for v, seeds in record["results"].items() if seeds}
    if values:
        lo = min(min(v) for v in values.values())
        hi = max(max(v) for v in values.values())
        bins = np.linspace(np.floor(lo) - 0.5, np.ceil(hi) + 0.5, 30)
        for name, v in values.items():
            ax.hist(v, bins=bins, histtype="step", linewidth=1.5, density=True,
                    label=f"{name} (mean {np.mean(v):+.2f} dB)")
    ax.set_xlabel("aligned ISNR (dB)")
    ax.set_ylabel("density")
    schedule = f", {record['schedule']} iterations" if record.get("schedule") else ""
    ax.set_title(f"ISNR distribution, {record['dataset']} ({record['preset']} preset{schedule}, "
                 f"{record['machine']['backend']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(record: dict) -> str:
    m = record["machine"]
    paper = PAPER["levin" if record["dataset"] == "levin" else "kodak"]
    lines = [f"# ISNR study (Kotera et al. protocol): {record['dataset']}, {record['preset']} preset", "",
             f"Machine: {m['device_kind']} ({m['backend']}). Inputs: {record['inputs']}"
             + (f" ({record['size']} px crops, noise {record['noise']})" if record.get("size") else "") + ". "
             + (f"Schedule compressed to {record['schedule']} final iterations. " if record.get("schedule") else "")
             + "ISNR: aligned PSNR gain over the blurred input. Seeds per input: see table. "
             "Paper's numbers are for Kodak/Levin at the full setting.", "",
             "| variant | seeds | mean ISNR (dB) | mean std over seeds | median | < 1 dB | > 5 dB | paper ISNR / std |",
             "|---|---|---|---|---|---|---|---|"]
    aligned = ["", "Levin's aligned scores (15 px crop, shift search), mean over inputs and seeds:", "",
               "| variant | seeds | aligned PSNR (dB) | aligned SSIM |", "|---|---|---|---|"]
    for name, s in record["summary"].items():
        p = paper.get(name)
        if "aligned_psnr" in s:
            aligned.append(f"| {name} | {s['seeds']} | {s['aligned_psnr']:.2f} | {s['aligned_ssim']:.3f} |")
        lines.append(f"| {name} | {s['seeds']} | {s['mean_isnr']:+.2f} | {s['mean_std_over_seeds']:.2f} | "
                     f"{s['median_isnr']:+.2f} | {s['fraction_below_1db']:.2f} | {s['fraction_above_5db']:.2f} | "
                     f"{f'{p[0]:.2f} / {p[1]:.2f}' if p else ''} |")
    if len(aligned) > 5:
        lines += aligned
    lines += ["", f"Figure: {record['figure']}", "", "Per input, mean +/- std over seeds:", "",
              "| input | " + " | ".join(record["summary"]) + " |", "|---|" + "---|" * len(record["summary"])]
    names = list(next(iter(record["summary"].values()))["per_input"]) if record["summary"] else []
    for n in names:
        cells = [f"{s['per_input'][n]['mean']:+.2f} +/- {s['per_input'][n]['std']:.2f}"
                 for s in record["summary"].values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="fast", choices=["paper", "fast", "tiny"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--photos", type=int, default=8, help=f"first N of {SAMPLE_PHOTOS}")
    parser.add_argument("--kernels", type=int, default=8, help="first N of Levin's 8 kernels")
    parser.add_argument("--size", type=int, default=256, help="side of the sharp photo crops (px)")
    parser.add_argument("--noise", type=float, default=0.01, help="Gaussian noise std added after blurring")
    parser.add_argument("--levin", action="store_true", help="the 32 real Levin images instead of the photos")
    parser.add_argument("--images", type=int, default=32, help="with --levin: N of the 32, spread")
    parser.add_argument("--schedule", type=int, default=None,
                        help="final iterations, the preset's schedule scaled to fit (shorter CPU runs)")
    parser.add_argument("--no-ablation", action="store_true", help="only SelfDeblur and Kotera")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    items, sizes, dataset = inputs(args)
    variants = MAIN + (() if args.no_ablation else ABLATION)
    stem = f"kotera_isnr_{dataset}_{args.preset}_{device_tag()}"
    json_path, md_path, fig_path = (args.out / f"{stem}{ext}" for ext in (".json", ".md", ".png"))
    header = {"dataset": dataset, "preset": args.preset, "inputs": len(items),
              "names": [it.name for it in items], "kernel_sizes": sizes,
              "size": None if args.levin else args.size, "noise": None if args.levin else args.noise,
              "schedule": args.schedule, "isnr": "aligned"}
    record = json.loads(json_path.read_text()) if json_path.exists() else None
    if record is not None and {k: record.get(k) for k in header} != header:
        differ = sorted(k for k in header if record.get(k) != header[k])
        raise SystemExit(f"{json_path} holds another study (differs in {differ}); use another --out")
    record = record or {**header, "results": {}, "wall_s": {}}
    record.update(machine=machine(), figure=fig_path.name)
    for name in variants:
        method, config = variant(name, args.preset, args.schedule)
        done = record["results"].setdefault(name, {})
        for seed in args.seeds:
            if str(seed) in done:
                print(f"{name} seed {seed}: done, skipped", file=sys.stderr)
                continue
            t0 = time.perf_counter()
            results = deblur_batch([it.blurred for it in items], sizes, method, preset=args.preset,
                                   seeds=[seed * 1000 + i for i in range(len(items))], config=config,
                                   options=EngineOptions(description=f"{name} seed {seed}", progress=False))
            done[str(seed)] = [score(it, r, dataset) for it, r in zip(items, results)]
            record["wall_s"][f"{name}/{seed}"] = round(time.perf_counter() - t0, 1)
            record["summary"] = {v: summarise(s) for v, s in record["results"].items() if s}
            write_json(json_path, record)
            figure(record, fig_path)
            md_path.write_text(markdown(record))
            s = record["summary"][name]
            print(f"{name} seed {seed}: mean ISNR {np.mean([r['isnr'] for r in done[str(seed)]]):+.2f} dB "
                  f"(all seeds {s['mean_isnr']:+.2f}), {record['wall_s'][f'{name}/{seed}']} s", flush=True)
    print(md_path.read_text() if md_path.exists() else "no results")


if __name__ == "__main__":
    main()
