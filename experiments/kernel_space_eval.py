"""Blur kernel space study: kernel-space DIP vs SelfDeblur, Kotera (and NAFNet) on set12; blur transfer PSNR.

Inputs (fixed by --seed): centre crops (--size px, REDUCED for CPUs) of the
first --images set12 images, each blurred twice by the shared degradation
pipeline (`jaxdeblur.data.degrade`, 'valid' blur, no noise, 8-bit
quantised): once by ONE camera-shake kernel ("uniform"), once by a 2 x 2
field of independent camera-shake kernels bilinearly interpolated over the
crop ("varying"); support 13, trajectory length in [--min-length, 9] px
(the shipped kernel_space-cpu operator's training range).

Deblurring at the SAME iteration budget (--iterations, each preset's
schedule compressed to it, `jaxdeblur.config.compress_schedule`; the
kernel-space warm-up counts in the budget; Kotera's coarse scales add their
compressed coarse iterations): kernel_space (fast preset, the shipped
kernel_space-cpu operator), selfdeblur (fast), kotera (fast), all with the
true support 13 and one seed, run through the engine directly (each
method's own image crop); nafnet-cpu and ufpnet-cpu when their weights are
shipped (trained restorers: no iterations; both were trained on train400
with motion blur and 1% noise, these inputs are noise-free). Scores:
Levin-style aligned PSNR / SSIM (`jaxdeblur.metrics.aligned_psnr_ssim`,
4 px crop, shifts up to 3 px) and time per method (all inputs batched
together: compile s, run s, ms per iteration; wall s includes both).

On a CPU the run is REDUCED (the record says how, under "reduced", and
which machine, under "machine"): 64 px crops of 3 of the 12 images instead
of whole images, kernel support 13 instead of the paper's 31 (the shipped
operator was trained with support 13), no noise, the fast presets'
networks and an iteration budget of --iterations instead of the papers'
5000 (kernel-space) / 5000 (SelfDeblur) / 5000 + coarse scales (Kotera).

Blur transfer (`jaxdeblur.models.kernel_space.transfer`): pair a = crop i
with its blur, b = crop i + 1 blurred by the SAME true kernel(s); PSNR of
transfer_blur(sharp_a, blurred_a, sharp_b) and of the naive baseline (the
least-squares uniform kernel of pair a) against the true blurred b.

Writes experiments/results/kernel_space_eval_<device>.{json,md,png}.

  nice -n 5 python -m experiments.kernel_space_eval             # CPU, reduced (the shipped result)
  python -m experiments.kernel_space_eval --images 2 --iterations 20 --size 48 --out /tmp/ks   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json  # noqa: E402

from jaxdeblur import models  # noqa: E402
from jaxdeblur.config import compress_schedule  # noqa: E402
from jaxdeblur.data import default_root  # noqa: E402
from jaxdeblur.data.degrade import DegradeConfig, tile_size  # noqa: E402
from jaxdeblur.data.pipeline import eval_batches  # noqa: E402
from jaxdeblur.data.sources import ImageFolder  # noqa: E402
from jaxdeblur.engine.runner import EngineOptions, image_offset  # noqa: E402
from jaxdeblur.methods import METHODS  # noqa: E402
from jaxdeblur.metrics import aligned_psnr_ssim  # noqa: E402
from jaxdeblur.metrics import psnr_per_image  # noqa: E402
from jaxdeblur.models.kernel_space import naive_transfer, same_blur_pairs, transfer_blur  # noqa: E402

KERNEL = 13
CROP, MAX_SHIFT = 4, 3.0  # px cropped and largest shift searched by the aligned scores
DIP_METHODS = ("kernel_space", "selfdeblur", "kotera")
TRAINED = ("nafnet-cpu", "ufpnet-cpu")  # shipped restorers, run when their weights are found
PAPER_SETTING = "whole set12 images (256 / 512 px), kernels up to 31 px, 5000+ iterations per DIP method"
NOTES = ("Starts differ: kernel_space's image generator is first fitted to the blurred input (its warm-up, "
         "part of the budget), so it starts at the input; SelfDeblur's and Kotera's start from noise and need "
         "far more iterations than a reduced budget gives (their images here are not converged). The trained "
         "restorers saw motion blur + 1% noise in training; these inputs are noise-free.")


def blur_sets(args) -> dict:
    """{"uniform" / "varying": same_blur_pairs of the crops} (host arrays, (N, size, size, 1))."""
    cfg = DegradeConfig(crop=args.size, kernel_size=KERNEL, kind_probs=(1.0, 0.0, 0.0),
                        motion_length=(args.min_length, 9.0), grid=(2, 2), noise_sigma=(0.0, 0.0), augment=False)
    folder = ImageFolder(args.data / "set12", mode="gray")
    (tiles,) = eval_batches(folder, batch_size=len(folder), tile=tile_size(cfg))
    tiles = tiles["sharp"][:args.images + 1]
    sets = {}
    for tag, varying in (("uniform", 0.0), ("varying", 1.0)):
        key = jax.random.fold_in(jax.random.key(args.seed), int(varying))
        pairs = same_blur_pairs(key, tiles[:-1], tiles[1:], dataclasses.replace(cfg, spatially_varying=varying))
        sets[tag] = {k: np.asarray(v) for k, v in pairs.items()}
    return sets


def score(estimate, sharp) -> tuple[float, float]:
    psnr, ssim, _ = aligned_psnr_ssim(estimate, sharp, max_shift=MAX_SHIFT, crop=CROP)
    return float(psnr), float(ssim)


def run_dip(name: str, ys: np.ndarray, args) -> tuple[np.ndarray, dict]:
    """(images (N, H, W, 1), timings) of one DIP method on all inputs at the iteration budget."""
    method = METHODS[name]
    cfg = compress_schedule(method.presets[args.preset], args.iterations)
    keys = jnp.stack([jax.random.key(args.seed * 1000 + i) for i in range(len(ys))])
    t0 = time.perf_counter()
    out = method.run(cfg, ys, (KERNEL, KERNEL), keys, EngineOptions(progress=False, chunk=args.chunk))
    wall = time.perf_counter() - t0
    oy, ox = image_offset(method, cfg, (KERNEL, KERNEL))
    h, w = ys.shape[1:3]
    timings = {k: float(v) for k, v in out.timings.items() if isinstance(v, (int, float))}
    return out.latents[:, oy:oy + h, ox:ox + w], {**timings, "wall_s": wall, "iterations": cfg.iterations}


def figure(sets: dict, images: dict, path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("uniform", 0), ("varying", 0)]
    cols = ["sharp_a", "blurred_a", "sharp_b", "blurred_b", "transfer", "naive"]
    dip_cols = ["blurred"] + [m for m in images["uniform"] if m != "blurred"]
    fig, axes = plt.subplots(2 * len(rows), max(len(cols), len(dip_cols)), figsize=(2.0 * max(len(cols),
                                                                                          len(dip_cols)), 8.4))
    for ax in axes.ravel():
        ax.axis("off")
    for r, (tag, i) in enumerate(rows):
        for c, name in enumerate(cols):
            axes[r, c].imshow(sets[tag][name][i, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"{tag}: {name}", fontsize=7)
        for c, name in enumerate(dip_cols):
            axes[len(rows) + r, c].imshow(images[tag][name][i, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[len(rows) + r, c].set_title(f"{tag}: {name}", fontsize=7)
    fig.suptitle(f"blur transfer (top) and deblurring (bottom), set12 crops -- {label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Blur kernel space on set12 ({record['label']})", "",
             f"Machine: {m['device_kind']} ({m['backend']}, {m['cpu_count']} CPUs, shared: load average "
             f"{record['load_average']['start'][0]:.1f} at the start, {record['load_average']['end'][0]:.1f} at the "
             f"end); jax {m['jax']}. Total {record['total_wall_s'] / 60:.1f} min.", "",
             f"Reduced: {record['reduced']['here']} (the papers: {record['reduced']['paper']}).", "",
             f"Deblurring: aligned PSNR (dB) / SSIM against the sharp crop ({CROP} px border, shifts up to "
             f"{MAX_SHIFT:g} px), mean over {record['images']} crops; time for all {2 * record['images']} inputs "
             "batched (compile + run; ms per iteration of the batch).", "",
             "| method | iterations | uniform PSNR | uniform SSIM | varying PSNR | varying SSIM | compile s | "
             "run s | ms / it | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in record["deblur"].items():
        u, v = row["uniform"], row["varying"]
        it = row.get("iterations_run", row.get("iterations", 0))
        cells = [f"{row[k]:.0f}" if k in row else "-" for k in ("compile_s", "run_s", "ms_per_iteration")]
        lines.append(f"| {name} | {it:.0f} | {u['psnr']:.2f} | {u['ssim']:.3f} | {v['psnr']:.2f} | {v['ssim']:.3f} | "
                     f"{' | '.join(cells)} | {row.get('wall_s', 0.0):.0f} |")
    lines += ["", "Blur transfer: PSNR (dB) of sharp_b re-blurred, against sharp_b blurred by the TRUE kernel(s) of "
              "pair a (mean over pairs; per pair in the JSON). transfer_blur: F(sharp_b, G(sharp_a, blurred_a)) with "
              f"{record['operator']}; naive: sharp_b convolved with the one least-squares uniform {KERNEL} px "
              "kernel of pair a.", "",
              "| blur | transfer_blur | naive uniform LS kernel |", "|---|---|---|"]
    for tag, row in record["transfer"].items():
        lines.append(f"| {tag} | {row['transfer_psnr']:.2f} | {row['naive_psnr']:.2f} |")
    if record.get("notes"):
        lines += ["", f"Notes: {record['notes']}"]
    if record["skipped"]:
        lines += ["", "Skipped: " + "; ".join(record["skipped"])]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_root())
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--min-length", type=float, default=5.0)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--operator", default="kernel_space-cpu")
    parser.add_argument("--methods", default=",".join(DIP_METHODS), help="DIP methods to run (comma-separated)")
    parser.add_argument("--trained", default=",".join(TRAINED), help="shipped restorers to run (comma-separated)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    sets = blur_sets(args)
    operator = models.load(args.operator)
    cpu = jax.default_backend() == "cpu"
    label = (f"CPU ({os.cpu_count()} cores, shared with other sessions), no GPU, reduced" if cpu
             else f"{jax.devices()[0].device_kind}, reduced")
    record = {"label": label, "machine": machine(), "seed": args.seed, "images": args.images, "size": args.size,
              "iterations": args.iterations, "preset": args.preset, "kernel_size": KERNEL,
              "reduced": {"paper": PAPER_SETTING,
                          "here": f"{args.images} set12 images (the first, 0-based pairs i -> i + 1 for transfer), "
                                  f"centre crops of {args.size} px, one {KERNEL} px support, motion length "
                                  f"{args.min_length:g}-9 px, no noise, the '{args.preset}' presets compressed to "
                                  f"{args.iterations} iterations, one seed"},
              "motion_length": [args.min_length, 9.0], "operator": args.operator,
              "operator_metrics": operator.manifest["metrics"], "transfer": {}, "deblur": {}, "skipped": [],
              "notes": NOTES}

    for tag, p in sets.items():
        transferred = transfer_blur(p["sharp_a"], p["blurred_a"], p["sharp_b"], weights=operator)
        naive = naive_transfer(p["sharp_a"], p["blurred_a"], p["sharp_b"], kernel_size=KERNEL)
        p["transfer"], p["naive"] = transferred, naive
        record["transfer"][tag] = {
            "transfer_psnr": float(np.mean(psnr_per_image(transferred, p["blurred_b"]))),
            "naive_psnr": float(np.mean(psnr_per_image(naive, p["blurred_b"]))),
            "per_image_transfer": [float(v) for v in psnr_per_image(transferred, p["blurred_b"])],
            "per_image_naive": [float(v) for v in psnr_per_image(naive, p["blurred_b"])]}
        print(tag, record["transfer"][tag], flush=True)

    ys = np.concatenate([sets[t]["blurred_a"] for t in sets])  # all inputs in one batch per method
    n = args.images
    images = {tag: {"blurred": sets[tag]["blurred_a"]} for tag in sets}
    for name in filter(None, args.methods.split(",")):
        estimates, timings = run_dip(name, ys, args)
        for j, tag in enumerate(sets):
            images[tag][name] = estimates[j * n:(j + 1) * n]
        record["deblur"][name] = {**timings}
        print(name, timings, flush=True)
    for name in filter(None, args.trained.split(",")):
        if name not in models.available():
            record["skipped"].append(f"{name}: weights not shipped")
            continue
        restorer = models.load(name)
        t0 = time.perf_counter()
        out = restorer(ys)
        restored = np.asarray(getattr(out, "restored", out))  # UFPNet also returns its kernel field
        record["deblur"][name] = {"wall_s": time.perf_counter() - t0, "iterations": 0,
                                  "trained_on": restorer.manifest.get("data"), "steps": restorer.manifest.get("steps")}
        for j, tag in enumerate(sets):
            images[tag][name] = restored[j * n:(j + 1) * n]
        print(name, record["deblur"][name], flush=True)
    record["deblur"] = {"blurred": {"wall_s": 0.0}, **record["deblur"]}
    for name in record["deblur"]:
        for tag in sets:
            scores = [score(images[tag][name][i, ..., 0], sets[tag]["sharp_a"][i, ..., 0]) for i in range(n)]
            record["deblur"][name][tag] = {"psnr": float(np.mean([s[0] for s in scores])),
                                           "ssim": float(np.mean([s[1] for s in scores])),
                                           "per_image_psnr": [s[0] for s in scores]}
    record["total_wall_s"] = time.perf_counter() - t_start
    record["load_average"] = {"start": load_start, "end": os.getloadavg()}
    stem = f"kernel_space_eval_{device_tag()}"
    write_json(args.out / f"{stem}.json", record)
    (args.out / f"{stem}.md").write_text(markdown(record))
    figure(sets, images, args.out / f"{stem}.png", record["label"])
    print(markdown(record))


if __name__ == "__main__":
    main()
