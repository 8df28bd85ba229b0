"""Where to estimate the kernel? Whole image vs random / most-gradient / CNN window (Yang, Wu & Sun's study).

Synthetic set: photos of --data (default bsd68) in gray (--images of them in
sorted order from index --first),
each blurred by the 8 Levin kernels (blur convention, `jaxdeblur.data.levin`)
with 1% Gaussian noise (8-bit quantised; fixed seed), blurred "valid" from a
crop of side (--side + k - 1) around the photo's centre so that every blurred
image is --side x --side and aligned with its sharp centre. The MAP estimator
(`jaxdeblur.estimate`, "default" preset, support 27 = the largest Levin
kernel, for every image) estimates the kernel from

  whole:    the whole blurred image;
  random:   a window of --window px at a uniformly random position (seeded);
  gradient: the window with the most gradient energy (`regions.most_textured_window`);
  cnn:      the window the trained classifier rates best
            (`jaxdeblur.select_region`, stride --stride, weights --weights);

every window of the same size. Each kernel deconvolves the WHOLE blurred
image (`deconv.hyper_laplacian` with the estimator's deconv_lam / alpha), as
does the true kernel (the reference). Per item: error ratio (Levin et al.,
SSD ratio, each result aligned to the sharp image: 15 px crop, shifts up to 5
px in --align-step px steps), kernel similarity (Hu & Yang), seconds
(selection + the item's share of its batched estimation). Summary per
strategy: the cumulative error-ratio curve (fraction of items with ER <= r,
r = 1..5, the paper's figure 8), mean / median ER, mean similarity, seconds.

Batches: the 8 kernels of one photo are one batched estimation per strategy
(one compiled program per shape); the first batch of each shape includes
compilation, so seconds per image are the median over the other batches.
Partial results are kept in --work (one JSON per photo and strategy), so a
run resumes, and strategies may run separately (--strategies).

  python -m experiments.region_selection --images 6            # -> results/region_selection_cpu.{json,md,png}
  python -m experiments.region_selection --data ../shared/data/set12 --first 7 --images 5 --side 480
      # the five 512 px set12 photos -> results/region_selection_set12_480px_cpu.*

Results of another data folder, side or window go to files named after them
(region_selection_<data>_<side>px[_w<window>]_<tag>), partial results to
--work/<data>_<side>px_w<window>: no run overwrites another's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json  # noqa: E402

from jaxdeblur.data import levin, synthetic_set  # noqa: E402
from jaxdeblur.data.benchmarks import default_root  # noqa: E402
from jaxdeblur.data.sources import ImageFolder  # noqa: E402
from jaxdeblur.deconv import hyper_laplacian  # noqa: E402
from jaxdeblur.estimate import PRESETS, estimate_kernels  # noqa: E402
from jaxdeblur.metrics import error_ratio, kernel_similarity  # noqa: E402
from jaxdeblur.regions import most_textured_window  # noqa: E402

STRATEGIES = ("whole", "random", "gradient", "cnn")
SUPPORT = 27
SEED = 0
NOISE = 0.01


def items_of_photo(index: int, photo: np.ndarray, kernels: dict, side: int) -> list:
    """The 8 blurred versions of one photo: DeblurItems of side x side (see the module docstring)."""
    out = []
    for j, (name, k) in enumerate(kernels.items()):
        kh, kw = k.shape
        h, w = side + kh - 1, side + kw - 1
        top, left = (photo.shape[0] - h) // 2, (photo.shape[1] - w) // 2
        crop = photo[top:top + h, left:left + w]
        (item,) = synthetic_set({f"bsd{index:02d}": crop}, {name: k}, noise_sigma=NOISE,
                                seed=SEED * 1000 + index * 8 + j, mode="valid")
        out.append(item)
    return out


def choose_windows(strategy: str, items, window: int, stride: int, scorer, rng) -> tuple[list, list, float]:
    """(boxes (x, y, w, h) or None for whole, windows (N, h, w) or the images, selection seconds per item)."""
    boxes, crops = [], []
    t0 = time.perf_counter()
    for item in items:
        y = item.blurred
        if strategy == "whole":
            box = None
        elif strategy == "random":
            r = int(rng.integers(0, y.shape[0] - window + 1))
            c = int(rng.integers(0, y.shape[1] - window + 1))
            box = (c, r, window, window)
        elif strategy == "gradient":
            box = most_textured_window(y, (window, window))
        else:
            from jaxdeblur.models.region import select_region

            box = select_region(y, window, stride=stride, scorer=scorer).box
        boxes.append(box)
        crops.append(y if box is None else y[box[1]:box[1] + box[3], box[0]:box[0] + box[2]])
    return boxes, crops, (time.perf_counter() - t0) / len(items)


def evaluate_photo(items, kernels_est, references, cfg, align_step: float) -> list[dict]:
    rows = []
    for item, k, ref in zip(items, kernels_est, references):
        estimate = np.asarray(hyper_laplacian(item.blurred, k, lam=cfg.deconv_lam, alpha=cfg.deconv_alpha))
        er = float(error_ratio(estimate, ref, item.sharp, max_shift=5, step=align_step, crop=15))
        rows.append({"name": item.name, "error_ratio": round(er, 4),
                     "kernel_similarity": round(float(kernel_similarity(k, item.kernel)), 4)})
    return rows


def run(args) -> None:
    cfg = PRESETS["default"]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    photos = ImageFolder(Path(args.data), mode="gray")
    kernels = {item.name.split("_")[1]: item.kernel for item in levin()[:8]}  # im1_kernel1..8: the 8 kernels
    scorer = None
    if "cnn" in args.strategies:
        from jaxdeblur.models import load

        scorer = load(args.weights).fn
    for i in range(args.first, args.first + args.images):
        photo = photos[i]["sharp"][..., 0]
        items = items_of_photo(i, photo, kernels, args.side)
        ref_path = work / f"photo{i:02d}_reference.npz"
        if ref_path.exists():
            references = list(np.load(ref_path)["references"])
        else:
            references = [np.asarray(hyper_laplacian(it.blurred, it.kernel, lam=cfg.deconv_lam,
                                                     alpha=cfg.deconv_alpha)) for it in items]
            np.savez(ref_path, references=np.stack(references))
        for strategy in args.strategies:
            path = work / f"photo{i:02d}_{strategy}.json"
            if path.exists():
                continue
            rng = np.random.default_rng([SEED, i])
            boxes, crops, select_s = choose_windows(strategy, items, args.window, args.stride, scorer, rng)
            t0 = time.perf_counter()
            estimate = estimate_kernels(np.stack(crops), SUPPORT, preset="default")
            estimate_s = time.perf_counter() - t0
            rows = evaluate_photo(items, estimate.kernel, references, cfg, args.align_step)
            for row, box in zip(rows, boxes):
                row["box"] = None if box is None else list(box)
            record = {"photo": photos.name(i), "strategy": strategy, "select_s_per_item": select_s,
                      "estimate_s_batch": estimate_s, "items": len(items), "rows": rows,
                      "load_average": os.getloadavg()[0]}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=1))
            os.replace(tmp, path)
            print(f"photo {i} {strategy}: ER mean {np.mean([r['error_ratio'] for r in rows]):.2f}, "
                  f"select {select_s:.2f} s/item, estimate {estimate_s:.1f} s/batch", flush=True)


def summarise(args) -> dict:
    work = Path(args.work)
    out = {}
    for strategy in STRATEGIES:
        records = [json.loads((work / f"photo{i:02d}_{strategy}.json").read_text())
                   for i in range(args.first, args.first + args.images)
                   if (work / f"photo{i:02d}_{strategy}.json").exists()]
        if not records:
            continue
        rows = [r for rec in records for r in rec["rows"]]
        ers = np.array([r["error_ratio"] for r in rows])
        per_item = [rec["select_s_per_item"] + rec["estimate_s_batch"] / rec["items"] for rec in records]
        warm = per_item[1:] or per_item
        out[strategy] = {
            "photos": len(records), "items": len(rows),
            "fraction_error_ratio_at_most": {str(r): round(float(np.mean(ers <= r)), 4) for r in (1, 2, 3, 4, 5)},
            "error_ratio_mean": round(float(ers.mean()), 3), "error_ratio_median": round(float(np.median(ers)), 3),
            "kernel_similarity_mean": round(float(np.mean([r["kernel_similarity"] for r in rows])), 4),
            "seconds_per_image": round(float(np.median(warm)), 3),
            "seconds_per_image_first_batch_incl_compile": round(float(per_item[0]), 2),
            "select_seconds_per_image": round(float(np.median([rec["select_s_per_item"] for rec in records])), 3),
            "load_average_during": [round(rec["load_average"], 1) for rec in records],
        }
    return out


def markdown(record: dict) -> str:
    s = record["summary"]
    lines = [f"# Region selection study ({record['label']})", "", record["protocol"], "",
             "| strategy | items | ER<=1 | ER<=2 | ER<=3 | ER<=4 | ER<=5 | mean ER | median ER | kernel sim. | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in s.items():
        f = v["fraction_error_ratio_at_most"]
        lines.append(f"| {name} | {v['items']} | " + " | ".join(f"{f[str(r)]:.2f}" for r in range(1, 6))
                     + f" | {v['error_ratio_mean']:.2f} | {v['error_ratio_median']:.2f} | "
                       f"{v['kernel_similarity_mean']:.3f} | {v['seconds_per_image']:.2f} |")
    lines += ["", record.get("verdict", ""), "", record.get("notes", "")]
    return "\n".join(lines) + "\n"


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, v in record["summary"].items():
        f = v["fraction_error_ratio_at_most"]
        ax.plot(range(1, 6), [f[str(r)] for r in range(1, 6)], marker="o", label=f"{name} ({v['items']})")
    ax.set_xlabel("error ratio r")
    ax.set_ylabel("fraction of images with ER <= r")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(record["label"], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def example_figure(args, path: Path) -> None:
    """The score map and the chosen boxes on the first photo blurred by Levin's kernel 1."""
    from jaxdeblur.models import load
    from jaxdeblur.models.region import select_region
    from jaxdeblur.models.region.figures import score_map_figure

    photos = ImageFolder(Path(args.data), mode="gray")
    kernels = {item.name.split("_")[1]: item.kernel for item in levin()[:8]}
    item = items_of_photo(args.first, photos[args.first]["sharp"][..., 0], kernels, args.side)[0]
    choice = select_region(item.blurred, args.window, stride=args.stride, scorer=load(args.weights).fn)
    rec = json.loads((Path(args.work) / f"photo{args.first:02d}_gradient.json").read_text())
    score_map_figure(path, item.blurred, choice, others={"gradient": tuple(rec["rows"][0]["box"])},
                     title=item.name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(default_root() / "bsd68"))
    parser.add_argument("--images", type=int, default=68, help="photos used (N in sorted order from --first)")
    parser.add_argument("--first", type=int, default=0, help="index of the first photo used (sorted order)")
    parser.add_argument("--side", type=int, default=256, help="side of the blurred images (centre crops)")
    parser.add_argument("--window", type=int, default=128, help="window side (the cpu CNN's input size)")
    parser.add_argument("--stride", type=int, default=16, help="CNN window stride")
    parser.add_argument("--align-step", type=float, default=0.25, help="sub-pixel step of the ER alignment")
    parser.add_argument("--weights", default="region-cpu")
    parser.add_argument("--strategies", nargs="*", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--work", default=None, help="partial results (default runs/region_study/<setting>)")
    parser.add_argument("--report", action="store_true", help="only write the results from --work")
    parser.add_argument("--notes", default="")
    args = parser.parse_args(argv)
    dataset = Path(args.data).name
    setting = f"{dataset}_{args.side}px_w{args.window}"
    if args.work is None:
        args.work = str(Path("runs") / "region_study" / setting)
    if not args.report:
        run(args)
    summary = summarise(args)
    tag = device_tag()
    label = (f"{tag}: 2-core shared CPU, no GPU; {args.images} {dataset} photos x 8 Levin kernels, "
             f"{args.side} px, window {args.window}" if tag == "cpu" else f"{tag}")
    protocol = (f"Protocol: {dataset} gray, photos {args.first}-{args.first + args.images - 1} (sorted), "
                f"centre crops blurred 'valid' to "
                f"{args.side} x {args.side} by the 8 Levin kernels, 1% noise (seed {SEED}); MAP estimator "
                f"'default' preset, support {SUPPORT}; windows {args.window} x {args.window} (CNN stride "
                f"{args.stride}, weights {args.weights}); whole-image hyper-Laplacian deconvolution with each "
                f"kernel and with the true one; ER aligned with {args.align_step} px steps. Seconds per image: "
                "selection + share of the batched estimation (8 items per batch), median over batches after "
                "the first (compile); wall time on a CPU shared with other jobs (load averages in the JSON).")
    best = min(summary, key=lambda n: summary[n]["error_ratio_mean"]) if summary else None
    leads = None
    if "cnn" in summary:
        f3 = {n: v["fraction_error_ratio_at_most"]["3"] for n, v in summary.items()}
        others = {n: f3[n] for n in f3 if n != "cnn"}
        leads = all(f3["cnn"] > v for v in others.values())
        verdict = ("Success rate (ER <= 3): " + ", ".join(f"{n} {v:.2f}" for n, v in f3.items())
                   + f". The CNN window {'leads' if leads else 'does NOT lead'} every other strategy at r = 3; "
                   f"lowest mean ER: {best}.")
    else:
        verdict = "The CNN strategy has not run yet."
    record = {"experiment": "region_selection", "label": label, "machine": machine(), "protocol": protocol,
              "args": vars(args), "summary": summary, "cnn_leads_at_r3": leads, "verdict": verdict,
              "notes": args.notes}
    default = (dataset, args.side, args.window) == ("bsd68", 256, 128)  # the first study's file names
    window = "" if args.window == 128 else f"_w{args.window}"
    stem = RESULTS / (f"region_selection_{tag}" if default else f"region_selection_{dataset}_{args.side}px{window}_{tag}")
    write_json(stem.with_suffix(".json"), record)
    stem.with_suffix(".md").write_text(markdown(record))
    plot(record, stem.with_suffix(".png"))
    if "cnn" in summary and (Path(args.work) / f"photo{args.first:02d}_gradient.json").exists():
        example_figure(args, stem.parent / f"{stem.name}_scoremap.png")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
