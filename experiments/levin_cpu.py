"""Levin within a CPU budget: 8 images, SelfDeblur / Kotera / Nair & Patel and the MAP estimator side by side.

The 8 items of `levin.spread(items, 8)` (every kernel once, every sharp image
twice). Each DIP method runs through `jaxdeblur.deblur_batch` (finishing step
on: the input deconvolved with the estimated kernel, `result.deconvolved`),
one batched call per kernel size (or per `--chunk` images of one size), so a
killed run loses at most one call; the JSON and markdown are rewritten after every call and a rerun with the
same settings skips the items already in the file. Per item, for the
generator's image ("image") and the finishing step ("deconvolved"): aligned
PSNR / SSIM (Levin's protocol, `levin.evaluate`), ISNR against the blurred
input aligned the same way (`metrics.aligned_isnr`'s definition) and the
error ratio; the kernel's similarity to the true one; wall seconds per image
(the call's wall time divided by its images; the first call of a shape
includes the compile, later calls of that shape reuse the compiled program). The MAP
estimator (`jaxdeblur.estimate`, preset "default", `levin_map.estimate_all` /
`levin_map.evaluate`) is scored on the same items with `--map`.

  python -m experiments.levin_cpu --methods selfdeblur kotera uncertainty --iterations 300 --map
  python -m experiments.levin_cpu --methods selfdeblur --images 2 --iterations 100 --out /tmp/pilot   # pilot
  python -m experiments.levin_cpu --methods kotera --iterations 300 kotera=200 --set kotera:coarse_iterations=50
"""

from __future__ import annotations

import argparse
import json
import time
import types
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json
from experiments.levin import evaluate, load_record, spread

from jaxdeblur.api import deblur_batch
from jaxdeblur.config import parse_overrides
from jaxdeblur.data import levin, levin_kernel_size
from jaxdeblur.deconv import hyper_laplacian
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.metrics import aligned_psnr_ssim, kernel_similarity
from jaxdeblur.regions import most_textured_window, register_region_selector

METHODS = ("selfdeblur", "kotera", "uncertainty")
OUTPUTS = ("image", "deconvolved")
METRICS = ("psnr", "ssim", "isnr", "error_ratio")


def per_method(values: list[str], cast, what: str) -> dict:
    """["300", "kotera=200"] -> {None: 300, "kotera": 200} (None: every method)."""
    out = {}
    for v in values:
        name, sep, value = v.rpartition("=")
        if sep and name not in METHODS:
            raise SystemExit(f"{what}: unknown method {name!r} in {v!r}")
        out[name or None] = cast(value)
    return out


def method_overrides(entries: list[str]) -> dict:
    """["kotera:coarse_iterations=50", "lr_image=0.02"] -> {method or None: {field: value}}."""
    grouped = defaultdict(list)
    for e in entries:
        head, sep, rest = e.partition(":")
        if sep and head in METHODS:
            grouped[head].append(rest)
        else:
            grouped[None].append(e)
    return {m: parse_overrides(v) for m, v in grouped.items()}


def score(items, results, references, blurred_psnr) -> list[dict]:
    """One row per item: generator's image and finishing step (PSNR, SSIM, ISNR, ER), kernel similarity."""
    deconvolved = [types.SimpleNamespace(image=np.clip(r.deconvolved, 0, 1), history=r.history) for r in results]
    rows = []
    for i, (item, r) in enumerate(zip(items, results)):
        row = {"name": item.name, "kernel_size": int(r.kernel.shape[0]), "blurred_psnr": blurred_psnr[i],
               "kernel_similarity": round(float(kernel_similarity(r.kernel, item.kernel)), 4),
               "timings": {k: round(float(v), 3) for k, v in r.timings.items() if np.isscalar(v)}}
        for output, results_like in (("image", [r]), ("deconvolved", [deconvolved[i]])):
            if results_like[0].image.shape != item.sharp.shape:  # a window's image (--window): not scored
                row[output] = None
                continue
            m = evaluate([item], results_like, [references[i]])[0]
            row[output] = {"psnr": round(m["psnr"], 3), "ssim": round(m["ssim"], 4),
                           "isnr": round(m["psnr"] - blurred_psnr[i], 3), "error_ratio": round(m["error_ratio"], 3)}
        rows.append(row)
    return rows


def summarise(rows: list[dict], outputs=OUTPUTS) -> dict:
    if not rows:
        return {}
    out = {"images": len(rows), "blurred_psnr": round(float(np.mean([r["blurred_psnr"] for r in rows])), 3)}
    for o in outputs:
        if any(r[o] is None for r in rows):
            out[o] = None
            continue
        out[o] = {m: round(float(np.mean([r[o][m] for r in rows])), 4) for m in METRICS}
        out[o]["success_rate"] = round(float(np.mean([r[o]["error_ratio"] <= 3 for r in rows])), 3)
    out["wall_s_per_image"] = round(float(np.mean([r["wall_s_per_image"] for r in rows])), 1)
    out["kernel_similarity"] = round(float(np.mean([r["kernel_similarity"] for r in rows])), 4)
    return out


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [f"# Levin within a CPU budget: {len(record['items'])} images, DIP methods and the MAP estimator", "",
             f"Machine: {m['processor']}, {m['cpu_count']} CPU cores ({m['backend']}, jax {m['jax']}), "
             f"SHARED with other jobs (load average, start / end of each run: "
             + ("; ".join(f"{k}: {v['load_start']} / {v['load_end']}" for k, v in record["combined_from"].items())
                if record.get("combined_from") else f"{record.get('load_start')} / {record.get('load_end')}")
             + f"); the DIP runs at nice 5. Seed {record['seed']}. Items: "
             + ", ".join(record["items"]) + ". Kernel sizes: SelfDeblur's per item unless the setting names one support for all. Time per image = wall time of its "
             "batched call (iterations and finishing step; the first call of a shape also compiles) / its images.", "",
             "Aligned PSNR (dB) / SSIM (Levin's protocol: 15 px crop, shifts up to 5 px); ISNR = aligned PSNR "
             "minus the blurred input's; ER = error ratio against the hyper-Laplacian deconvolution with the "
             "true kernel; success = ER <= 3. \"image\" is the generator's output, \"deconvolved\" the finishing "
             "step (the input deconvolved with the DIP kernel, hyper-Laplacian, lam 2e3).", "",
             "| method | setting | output | PSNR | SSIM | ISNR | ER | success | kernel sim. | s / image |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in record["methods"].items():
        s = entry.get("summary")
        if not s:
            continue
        setting = (f"{entry['preset']}, {entry['iterations']} it."
                   + (f", kernel {entry['kernel_size']}" if entry.get("kernel_size") else "")
                   + (f", {entry['window']} px window" if entry.get("window") else "")
                   + (f", {entry['overrides']}" if entry["overrides"] else ""))
        for o in (o for o in OUTPUTS if s[o]):
            lines.append(f"| {name} ({s['images']}) | {setting} | {o} | {s[o]['psnr']:.2f} | {s[o]['ssim']:.3f} "
                         f"| {s[o]['isnr']:+.2f} | {s[o]['error_ratio']:.2f} | {100 * s[o]['success_rate']:.0f}% "
                         f"| {s['kernel_similarity']:.3f} | {s['wall_s_per_image']:.0f} |")
    notes = []
    if record.get("map", {}).get("summary"):
        s = record["map"]["summary"]
        lines.append(f"| MAP (`estimate`, {record['map']['preset']}) ({s['images']}) | coarse to fine L0 | deconvolved "
                     f"| {s['map']['psnr']:.2f} | {s['map']['ssim']:.3f} | {s['map']['isnr']:+.2f} "
                     f"| {s['map']['error_ratio']:.2f} | {100 * s['map']['success_rate']:.0f}% "
                     f"| {s['kernel_similarity']:.3f} | {s['wall_s_per_image']:.1f} (compile excluded) |")
        notes.append(f"MAP rows: {record['map'].get('source')}; levin_map.py's defaults were tuned on 16 items "
                     "that include all 8 of these (levin_map_cpu.md), so its numbers here are not held out.")
    if record.get("blurred_psnr"):
        lines.append(f"| blurred input ({len(record['blurred_psnr'])}) | | | "
                     f"{np.mean(list(record['blurred_psnr'].values())):.2f} | | 0 | | | | |")
    lines += [""] + notes if notes else []
    lines += ["", "Per image, PSNR of image / deconvolved (ISNR of the deconvolved), seconds per image:", "",
              "| item | SelfDeblur's k | blurred | " + " | ".join(record["methods"]) + (" | MAP |" if record.get("map") else " |"),
              "|---|---|---|" + "---|" * (len(record["methods"]) + bool(record.get("map")))]
    for name in record["items"]:
        cells, blurred, k = [], "", ""
        for entry in record["methods"].values():
            row = next((r for r in entry["rows"] if r["name"] == name), None)
            if row is None:
                cells.append("")
                continue
            blurred, k = f"{row['blurred_psnr']:.2f}", levin_kernel_size(name)
            image = f"{row['image']['psnr']:.2f}" if row["image"] else "(window)"
            cells.append(f"{image} / {row['deconvolved']['psnr']:.2f} "
                         f"({row['deconvolved']['isnr']:+.2f}), {row['wall_s_per_image']:.0f} s")
        if record.get("map"):
            row = next((r for r in record["map"].get("rows", []) if r["name"] == name), None)
            cells.append(f"{row['map']['psnr']:.2f} ({row['map']['isnr']:+.2f})" if row else "")
        lines.append(f"| {name} | {k} | {blurred} | " + " | ".join(cells) + " |")
    if record.get("notes"):
        lines += ["", record["notes"]]
    return "\n".join(lines) + "\n"


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def map_entry(rows: list[dict], timing: dict, blurred_psnr: dict, **info) -> dict:
    """levin_map rows of our items with ISNR and seconds per image added, and their summary."""
    for row in rows:
        b = blurred_psnr[row["name"]]
        row["blurred_psnr"], row["map"]["isnr"] = b, round(row["map"]["psnr"] - b, 3)
        row["wall_s_per_image"] = timing[str(row["kernel_size"])]["run_s_per_image"]
    s = summarise([{**r, "map": {**r["map"], "error_ratio": r["error_ratio"]}} for r in rows], outputs=("map",))
    return {"preset": "default", "timing": timing, "rows": rows, "summary": s, **info}


def run_map(items, blurred_psnr: dict) -> tuple[dict, dict]:
    """The MAP estimator (preset "default") on `items`: (record entry, {name: deconvolved image})."""
    from experiments.levin_map import estimate_all, evaluate as evaluate_map
    from jaxdeblur.estimate import resolve_config

    t0 = time.perf_counter()
    kernels, timing = estimate_all(items, "default", None)
    cfg = resolve_config("default", None)
    rows = evaluate_map(items, kernels, cfg)
    wall = time.perf_counter() - t0
    images = {it.name: np.asarray(hyper_laplacian(it.blurred, k, lam=cfg.deconv_lam, alpha=cfg.deconv_alpha))
              for it, k in zip(items, kernels)}
    return map_entry(rows, timing, blurred_psnr, wall_s=round(wall, 1), source="run here"), images


def map_from(path: Path, items, blurred_psnr: dict) -> dict:
    """The MAP rows of our items from a levin_map.py result file (no rerun)."""
    other = json.loads(path.read_text())
    rows = [r for name in (it.name for it in items) for r in other["rows"] if r["name"] == name]
    if len(rows) != len(items) or other.get("preset") != "default":
        raise SystemExit(f"{path}: not a levin_map result of preset 'default' holding every item")
    return map_entry(rows, other["timing"], blurred_psnr, source=f"{path.name} (levin_map.py, not rerun)")


def figure(path: Path, items, restorations: dict, record: dict) -> None:
    """Blurred | each method's better output | MAP | sharp, one row per item."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [("blurred", {it.name: it.blurred for it in items})] + [(k, v) for k, v in restorations.items() if v]
    columns.append(("sharp", {it.name: it.sharp for it in items}))
    fig, axes = plt.subplots(len(items), len(columns), figsize=(2.2 * len(columns), 2.3 * len(items)), squeeze=False)
    for r, item in enumerate(items):
        for c, (title, images) in enumerate(columns):
            ax = axes[r][c]
            ax.axis("off")
            if item.name not in images:
                continue
            x = np.clip(np.asarray(images[item.name]), 0, 1)
            ax.imshow(x, cmap="gray", vmin=0, vmax=1)
            if title == "sharp":
                ax.set_title("sharp", fontsize=7)
                continue
            p = float(aligned_psnr_ssim(x, item.sharp, max_shift=5, crop=15)[0])
            ax.set_title(f"{title}\n{item.name} {p:.2f} dB" if c == 0 else f"{title}\n{p:.2f} dB", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--preset", nargs="+", default=["fast"], help="a preset, or METHOD=PRESET entries")
    parser.add_argument("--iterations", nargs="+", default=["300"],
                        help="iterations (the preset's schedule compressed), or METHOD=N entries")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides NAME=VALUE or METHOD:NAME=VALUE")
    parser.add_argument("--kernel-size", type=int, default=None,
                        help="one kernel support for every item (one batched call, one compile per method); "
                             "default: SelfDeblur's size per item (one call per size)")
    parser.add_argument("--window", type=int, default=None,
                        help="estimate the kernel on the most textured N x N window of each image (region=, "
                             "fewer pixels per iteration); the finishing step still deconvolves the whole image")
    parser.add_argument("--chunk", type=int, default=None,
                        help="images per batched call (results are saved after each; calls of one shape reuse the "
                             "compiled program, so the compile is paid once); default: a whole kernel-size group")
    parser.add_argument("--images", type=int, default=8, help="N of the 32 items (levin.spread)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--map", action="store_true", help="also run the MAP estimator on the same items")
    parser.add_argument("--map-from", type=Path, default=None,
                        help="take the MAP rows of the items from a levin_map.py JSON instead of rerunning it")
    parser.add_argument("--figure", action="store_true", help="write a figure of the restorations")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/levin_cpu"),
                        help="where each run's better output is kept as .npy (for --figure of a --combine run)")
    parser.add_argument("--combine", type=Path, nargs="*", default=[],
                        help="JSON files of earlier runs (e.g. one process per method) merged into this record")
    parser.add_argument("--notes", default="", help="a paragraph appended to the markdown")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON / markdown / figure")
    parser.add_argument("--name", default=None, help="file stem (default levin_cpu_<device>)")
    args = parser.parse_args(argv)

    iterations = per_method(args.iterations, int, "--iterations")
    region = None
    if args.window:
        region = f"textured{args.window}"
        register_region_selector(region, lambda image, _: most_textured_window(image, (args.window, args.window)))
    presets = per_method(args.preset, str, "--preset")
    overrides = method_overrides(args.set)
    items = spread(list(levin()), args.images)
    references = [np.asarray(hyper_laplacian(item.blurred, item.kernel)) for item in items]
    blurred_psnr = [round(float(aligned_psnr_ssim(it.blurred, it.sharp, max_shift=5, crop=15)[0]), 3) for it in items]

    stem = args.name or f"levin_cpu_{device_tag()}"
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    record = load_record(json_path, {"items": [it.name for it in items], "seed": args.seed})
    record.pop("seeds", None)
    record.setdefault("methods", {})
    record.update(machine=machine(), load_start=record.get("load_start") or load_avg(), notes=args.notes)
    restorations = {}
    named_psnr = record["blurred_psnr"] = dict(zip(record["items"], blurred_psnr))
    for path in args.combine:
        other = json.loads(path.read_text())
        if other["items"] != record["items"] or other["seed"] != record["seed"]:
            raise SystemExit(f"{path}: other items or seed")
        for method, entry in other["methods"].items():
            record["methods"][method] = entry
            restorations[method] = {n: np.load(args.scratch / method / f"{n}.npy") for n in record["items"]
                                    if (args.scratch / method / f"{n}.npy").exists()}
        record.setdefault("combined_from", {})[path.name] = {"load_start": other.get("load_start"),
                                                            "load_end": other.get("load_end")}

    def save():
        record["load_end"] = load_avg()
        write_json(json_path, record)
        md_path.write_text(markdown(record))

    for method in args.methods:
        setting = {"preset": presets.get(method, presets.get(None, "fast")), "kernel_size": args.kernel_size,
                   "window": args.window,
                   "iterations": iterations.get(method, iterations.get(None)),
                   "overrides": {**overrides.get(None, {}), **overrides.get(method, {})} or None}
        entry = record["methods"].get(method)
        if entry is None or {k: entry[k] for k in setting} != setting:
            entry = record["methods"][method] = {**setting, "rows": [], "wall_s": 0.0}
        groups = defaultdict(list)
        for i, item in enumerate(items):
            groups[args.kernel_size or levin_kernel_size(item.name)].append(i)
        calls = [(size, members[c:c + (args.chunk or len(members))]) for size, members in groups.items()
                 for c in range(0, len(members), args.chunk or len(members))]
        for size, members in calls:
            todo = [i for i in members if items[i].name not in {r["name"] for r in entry["rows"]}]
            if not todo:
                continue
            t0 = time.perf_counter()
            results = deblur_batch([items[i].blurred for i in todo], size, method, preset=setting["preset"],
                                   iterations=setting["iterations"], seeds=[args.seed * 1000 + i for i in todo],
                                   config=setting["overrides"], region=region,
                                   options=EngineOptions(description=f"{method} k{size}"))
            wall = time.perf_counter() - t0
            rows = score([items[i] for i in todo], results, [references[i] for i in todo],
                         [blurred_psnr[i] for i in todo])
            for row, r in zip(rows, results):
                row["wall_s_per_image"] = round(wall / len(todo), 1)
                row["iterations_run"] = len(r.history["loss"])
                better = "deconvolved" if not row["image"] or row["deconvolved"]["psnr"] >= row["image"]["psnr"] else "image"
                restorations.setdefault(method, {})[row["name"]] = getattr(r, better)
                (args.scratch / method).mkdir(parents=True, exist_ok=True)
                np.save(args.scratch / method / f"{row['name']}.npy", getattr(r, better))
            entry["rows"] += rows
            entry["wall_s"] = round(entry["wall_s"] + wall, 1)
            entry["summary"] = summarise(entry["rows"])
            save()
            print(json.dumps({"method": method, "kernel_size": size, "wall_s": round(wall, 1),
                              **{r["name"]: [r["image"]["psnr"], r["deconvolved"]["psnr"]] for r in rows}}),
                  flush=True)
        print(json.dumps({"method": method, **entry.get("summary", {})}), flush=True)
    if args.map_from:
        record["map"] = map_from(args.map_from, items, named_psnr)
        save()
    elif args.map:
        record["map"], restorations["MAP"] = run_map(items, named_psnr)
        save()
    if record.get("map"):
        print(json.dumps({"map": record["map"]["summary"]}), flush=True)
    if args.figure and restorations:
        figure(args.out / f"{stem}.png", items, restorations, record)
    save()
    print(md_path.read_text())
    return record


if __name__ == "__main__":
    main()
