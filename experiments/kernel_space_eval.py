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
method's own image crop); nafnet-cpu when its weights exist (a trained
restorer: no iterations). Scores: Levin-style aligned PSNR / SSIM
(`jaxdeblur.metrics.aligned_psnr_ssim`, 4 px crop, shifts up to 3 px) and
wall time per method (compile included, all inputs batched together).

Blur transfer (`jaxdeblur.models.kernel_space.transfer`): pair a = crop i
with its blur, b = crop i + 1 blurred by the SAME true kernel(s); PSNR of
transfer_blur(sharp_a, blurred_a, sharp_b) and of the naive baseline (the
least-squares uniform kernel of pair a) against the true blurred b.

Writes experiments/results/kernel_space_eval_<device>.{json,md,png}.

  python experiments/kernel_space_eval.py                       # CPU, reduced (the shipped result)
  python experiments/kernel_space_eval.py --images 2 --iterations 20 --size 48 --out /tmp/ks   # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, device_tag, machine, write_json  # noqa: E402

from jaxdeblur import models  # noqa: E402
from jaxdeblur.config import compress_schedule  # noqa: E402
from jaxdeblur.data import default_root  # noqa: E402
from jaxdeblur.data.degrade import DegradeConfig, tile_size  # noqa: E402
from jaxdeblur.data.pipeline import eval_batches  # noqa: E402
from jaxdeblur.data.sources import ImageFolder  # noqa: E402
from jaxdeblur.engine.runner import EngineOptions, image_offset  # noqa: E402
from jaxdeblur.methods import METHODS  # noqa: E402
from jaxdeblur.metrics import aligned_psnr_ssim  # noqa: E402
from jaxdeblur.models.kernel_space import naive_transfer, psnr_per_image, same_blur_pairs, transfer_blur  # noqa: E402

KERNEL = 13
CROP, MAX_SHIFT = 4, 3.0  # px cropped and largest shift searched by the aligned scores
DIP_METHODS = ("kernel_space", "selfdeblur", "kotera")


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


def figure(sets: dict, images: dict, path: Path) -> None:
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
    fig.suptitle("blur transfer (top) and deblurring (bottom), set12 crops -- CPU, reduced", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(record: dict) -> str:
    lines = [f"# Blur kernel space on set12 ({record['label']})", "",
             f"Machine: {record['machine']['device_kind']} ({record['machine']['backend']}, "
             f"{record['machine']['cpu_count']} CPUs). {record['images']} crops of {record['size']} px, "
             f"kernel support {KERNEL}, {record['iterations']} iterations per DIP method, seed {record['seed']}. "
             f"Aligned PSNR (dB) / SSIM against the sharp crop ({CROP} px border, shifts up to {MAX_SHIFT:g} px).",
             "", "| method | uniform PSNR | uniform SSIM | varying PSNR | varying SSIM | wall s |",
             "|---|---|---|---|---|---|"]
    for name, row in record["deblur"].items():
        u, v = row["uniform"], row["varying"]
        lines.append(f"| {name} | {u['psnr']:.2f} | {u['ssim']:.3f} | {v['psnr']:.2f} | {v['ssim']:.3f} | "
                     f"{row.get('wall_s', float('nan')):.0f} |")
    lines += ["", "Blur transfer: PSNR (dB) against sharp_b blurred by the true kernel(s) of pair a.", "",
              "| blur | transfer_blur | naive uniform LS kernel |", "|---|---|---|"]
    for tag, row in record["transfer"].items():
        lines.append(f"| {tag} | {row['transfer_psnr']:.2f} | {row['naive_psnr']:.2f} |")
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
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t_start = time.perf_counter()
    sets = blur_sets(args)
    operator = models.load(args.operator)
    record = {"label": "CPU, reduced" if jax.default_backend() == "cpu" else jax.default_backend(),
              "machine": machine(), "seed": args.seed, "images": args.images, "size": args.size,
              "iterations": args.iterations, "preset": args.preset, "kernel_size": KERNEL,
              "motion_length": [args.min_length, 9.0], "operator": args.operator,
              "operator_metrics": operator.manifest["metrics"], "transfer": {}, "deblur": {}}

    for tag, p in sets.items():
        transferred = transfer_blur(p["sharp_a"], p["blurred_a"], p["sharp_b"], model=operator)
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
    for name in DIP_METHODS:
        estimates, timings = run_dip(name, ys, args)
        for j, tag in enumerate(sets):
            images[tag][name] = estimates[j * n:(j + 1) * n]
        record["deblur"][name] = {**timings}
        print(name, timings, flush=True)
    if "nafnet-cpu" in models.available():
        nafnet = models.load("nafnet-cpu")
        t0 = time.perf_counter()
        restored = nafnet(ys)
        record["deblur"]["nafnet-cpu"] = {"wall_s": time.perf_counter() - t0}
        for j, tag in enumerate(sets):
            images[tag]["nafnet-cpu"] = restored[j * n:(j + 1) * n]
    record["deblur"] = {"blurred": {"wall_s": 0.0}, **record["deblur"]}
    for name in record["deblur"]:
        for tag in sets:
            scores = [score(images[tag][name][i, ..., 0], sets[tag]["sharp_a"][i, ..., 0]) for i in range(n)]
            record["deblur"][name][tag] = {"psnr": float(np.mean([s[0] for s in scores])),
                                           "ssim": float(np.mean([s[1] for s in scores])),
                                           "per_image_psnr": [s[0] for s in scores]}
    record["total_wall_s"] = time.perf_counter() - t_start
    stem = f"kernel_space_eval_{device_tag()}"
    write_json(args.out / f"{stem}.json", record)
    (args.out / f"{stem}.md").write_text(markdown(record))
    figure(sets, images, args.out / f"{stem}.png")
    print(markdown(record))


if __name__ == "__main__":
    main()
