"""NAFNet against the blurred input and non-blind deconvolution with the TRUE kernel, on set12 and bsd68.

Test set (never trained on): every image of ../shared/data/set12 (gray) and
../shared/data/bsd68 (converted to gray, BT.601 luma, for a gray model) is
blurred by its own camera-shake kernel (`jaxdeblur.kernels.motion`, support
19, trajectory length drawn in [4, 18] px: the training distribution of the
"cpu" preset) with 'valid' convolution, plus 1% Gaussian noise, 8-bit
quantised (`jaxdeblur.data.synthetic_set`), all from --seed. Scores: PSNR /
SSIM (Wang et al.'s SSIM) of the blurred input, the shipped NAFNet, the
hyper-Laplacian deconvolution and Wiener deconvolution with the true kernel
(references the network should approach: they know the kernel), on the
image minus a 10 px border. Writes JSON + a markdown table + a figure to
experiments/results/.

  python -m experiments.nafnet_eval --model nafnet-cpu
  python -m experiments.nafnet_eval --model nafnet-cpu --limit 4 --out /tmp/x   # smoke
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json

from jaxdeblur import kernels
from jaxdeblur.data import default_root, synthetic_set
from jaxdeblur.data.sources import ImageFolder
from jaxdeblur.deconv import hyper_laplacian, wiener
from jaxdeblur.metrics import psnr, ssim
from jaxdeblur.models import load

BORDER = 10
SET_TAGS = {"set12": 1, "bsd68": 2}


def test_set(root: Path, name: str, seed: int, limit: int | None) -> list:
    """The DeblurItems of one folder, each image blurred by its own kernel (deterministic by seed)."""
    folder = ImageFolder(root / name, mode="gray")
    count = len(folder) if limit is None else min(limit, len(folder))
    items = []
    for i in range(count):
        sharp = folder[i]["sharp"][..., 0]
        key = jax.random.fold_in(jax.random.key(seed), SET_TAGS.get(name, 99) * 1000 + i)
        length = 4.0 + 14.0 * float(jax.random.uniform(jax.random.fold_in(key, 1)))
        k = np.asarray(kernels.motion(key, 19, length=length))
        stem = Path(folder.name(i)).stem
        items += synthetic_set({stem: sharp}, {"k": k}, noise_sigma=0.01, seed=seed * 100003 + i)
    return items


def score(estimate, sharp) -> tuple[float, float]:
    a, b = np.asarray(estimate)[BORDER:-BORDER, BORDER:-BORDER], sharp[BORDER:-BORDER, BORDER:-BORDER]
    return float(psnr(a, b)), float(ssim(a, b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="nafnet-cpu")
    parser.add_argument("--data", type=Path, default=default_root())
    parser.add_argument("--sets", nargs="+", default=["set12", "bsd68"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="images per set (smoke runs)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    model = load(args.model)
    methods = {
        "blurred": lambda it: it.blurred,
        "nafnet": lambda it: model(it.blurred),
        "hyper_laplacian_true_kernel": lambda it: hyper_laplacian(it.blurred, it.kernel),
        "wiener_true_kernel": lambda it: wiener(it.blurred, it.kernel, nsr=1e-3),
    }
    record = {"model": args.model, "manifest": model.manifest, "machine": machine(), "seed": args.seed,
              "protocol": __doc__.split("\n\n")[1], "sets": {}}
    examples = []
    for name in args.sets:
        items = test_set(args.data, name, args.seed, args.limit)
        rows, times = [], {m: 0.0 for m in methods}
        for it in items:
            row = {"image": it.name, "size": list(it.blurred.shape)}
            for m, fn in methods.items():
                t0 = time.perf_counter()
                out = np.asarray(fn(it))
                times[m] += time.perf_counter() - t0
                row[m] = dict(zip(("psnr", "ssim"), score(out, it.sharp)))
                if m == "nafnet" and len(examples) < 2 and it is items[0]:
                    examples.append((f"{name}/{it.name}", it.blurred, out, it.sharp))
            rows.append(row)
            print(f"{name}/{it.name}: " + ", ".join(f"{m} {row[m]['psnr']:.2f}" for m in methods), flush=True)
        mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in ("psnr", "ssim")} for m in methods}
        record["sets"][name] = {"images": len(rows), "mean": mean, "seconds_total": times, "per_image": rows}
    stem = f"nafnet_eval_{args.model}_{device_tag()}"
    write_json(args.out / f"{stem}.json", record)
    lines = [f"# {args.model} on synthetic motion blur + 1% noise ({device_tag()})", "",
             record["protocol"].replace("\n", " "), "",
             "| set | images | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for name, r in record["sets"].items():
        lines.append(f"| {name} | {r['images']} | " + " | ".join(
            f"{r['mean'][m]['psnr']:.2f} dB / {r['mean'][m]['ssim']:.3f}" for m in methods) + " |")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    figure(args.out / f"{stem}.png", examples)
    print("\n".join(lines))


def figure(path: Path, examples: list) -> None:
    """Blurred | NAFNet | sharp for the first image of each set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 3, figsize=(9, 3 * len(examples)), squeeze=False)
    for row, (name, blurred, restored, sharp) in zip(axes, examples):
        for ax, image, title in zip(row, (blurred, restored, sharp), ("blurred", "NAFNet", "sharp")):
            ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
            p = score(image, sharp)[0]
            ax.set_title(f"{name} {title}" + ("" if title == "sharp" else f" {p:.2f} dB"), fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
