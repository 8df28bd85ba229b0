"""One-GPU reproduction kit: SelfDeblur, Kotera et al. and Nair & Patel on Levin's 32 images, batched.

The paper setting of each method (preset "paper": 5000 iterations, the papers'
networks; SelfDeblur's kernel sizes per Levin kernel), every image of a kernel
size in one compiled program (strategy "vmap"), one seed, scored by Levin's
protocol (15 px crop, sub-pixel shift search up to 5 px: aligned PSNR / SSIM,
ISNR, error ratio against a hyper-Laplacian deconvolution with the true kernel)
beside the papers' numbers. `--lai ROOT` adds a subset of Lai et al.'s uniform
set (not shipped: the folder layout of `jaxdeblur.data.lai`) when time is left.

Time: `--budget-s` (default 600, about 10 minutes) is shared by the methods.
Each method first runs a probe (4 images, its schedule compressed to
`--probe-iterations`: a program of its own) that measures its set-up (compile,
initialisation, fitting: counted once per kernel-size group) and its time per
iteration (scaled by images x pixels); from it the script picks the largest setting that fits
the method's share of the time left, in this order: all 32 images with the
paper's 5000 iterations; all 32 with a shorter schedule (the whole schedule
scaled, `jaxdeblur.config.compress_schedule`, down to 1/5: the "fast"
presets' proportion); 16, 8 or 4 images (spread over kernels) at 1/5; else
the method is dropped. Everything dropped is printed and written to the
result file, whose numbers are then not the paper's protocol.

Results: experiments/results/reproduce_gpu_<device>.json and .md (the device
name in both), written after each method.

`--dry-run`: the same pipeline at CPU size: tiny presets, 2 images
centre-cropped to 24 px, kernel size 5 for all, chunks of 10, strategy "auto"
(map on a CPU), the probe the whole tiny schedule (20 iterations: the same
program as the run), metrics with a 2 px crop
and 1 px shift search (numbers meaningless; for testing the kit, e.g. before
a GPU session). Results go to reproduce_gpu_dryrun_<device>.*.

  python -m experiments.reproduce_gpu                         # ~10 min on one modern GPU
  python -m experiments.reproduce_gpu --budget-s 3600         # the full setting, if it fits in an hour
  python -m experiments.reproduce_gpu --lai /data/lai --budget-s 1800
  python -m experiments.reproduce_gpu --dry-run --methods selfdeblur
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from experiments._common import RESULTS, device_tag, machine, peak_memory_bytes, write_json
from experiments.levin import spread

METHODS = ("selfdeblur", "kotera", "uncertainty")
# Levin: SelfDeblur (Ren et al. 2020) and Nair & Patel (their Table 1, no non-blind step); Kotera et al. report
# mean ISNR on Levin (Table 1: original SelfDeblur 7.62 dB, theirs 8.23 dB). Lai: Ren et al. / Nair & Patel.
PAPER = {
    "levin": {"selfdeblur": {"psnr": 33.07, "ssim": 0.931, "isnr": 7.62}, "kotera": {"isnr": 8.23},
              "uncertainty": {"psnr": 33.65, "ssim": 0.947}},
    "lai": {"selfdeblur": {"psnr": 20.97, "ssim": 0.752}, "uncertainty": {"psnr": 21.41, "ssim": 0.777}},
}
MIN_FRACTION = 0.2  # the shortest schedule kept: 1/5 of the paper's (the "fast" presets)
IMAGE_STEPS = (32, 16, 8, 4)
RESERVE_S = 20.0  # kept back from the budget for scoring and writing
LAI_SSIM_FROM = 500  # SelfDeblur's MSE -> 1-SSIM switch on Lai (REFERENCE.md), 1000 on Levin


@dataclasses.dataclass(frozen=True)
class Probe:
    """A method's measured probe: `runs` images of `pixels` latent pixels each, `iterations` iterations.

    wall_s: the whole deblur_batch call (s); run_s: the engine's time in compiled chunks (s); the rest
    (compile, initialisation, fitting) is counted once per group of a run.
    """

    runs: int
    pixels: int
    iterations: int
    wall_s: float
    run_s: float

    @property
    def setup_s(self) -> float:
        return max(self.wall_s - self.run_s, 0.0)


def estimate_s(probe: Probe, iterations: int, groups: list[tuple[int, int]]) -> float:
    """Seconds to run `iterations` on `groups` [(runs, latent pixels per run)]: per group the probe's set-up plus
    its iteration time scaled by iterations and by runs x pixels (linear: conservative for a GPU)."""
    per_unit = probe.run_s / (probe.iterations * probe.runs * probe.pixels)
    return sum(probe.setup_s + per_unit * iterations * runs * pixels for runs, pixels in groups)


def plan(probe: Probe, full_iterations: int, groups_of, share_s: float, *, chunk: int,
         max_images: int = 32) -> tuple[int, int, list[str]] | None:
    """(images, iterations, what was dropped) of the largest setting whose estimate fits `share_s`, or None.

    groups_of(n): the (runs, pixels) groups of n images. Order: all images with the full schedule; all images
    with the longest schedule (a multiple of `chunk`) down to MIN_FRACTION of it; fewer images at MIN_FRACTION.
    """
    floor = max(chunk, int(full_iterations * MIN_FRACTION) // chunk * chunk)
    steps = [max_images] + [n for n in IMAGE_STEPS if n < max_images]
    top = max_images
    if estimate_s(probe, full_iterations, groups_of(top)) <= share_s:
        return top, full_iterations, []
    fixed = estimate_s(probe, 0, groups_of(top))
    per_iteration = (estimate_s(probe, chunk, groups_of(top)) - fixed) / chunk
    fits = int((share_s - fixed) / per_iteration) // chunk * chunk if per_iteration > 0 else 0
    if fits >= floor:
        return top, fits, [f"iterations {full_iterations} -> {fits} (whole schedule compressed)"]
    for n in steps[1:]:
        if estimate_s(probe, floor, groups_of(n)) <= share_s:
            return n, floor, [f"iterations {full_iterations} -> {floor} (whole schedule compressed)",
                              f"images {top} -> {n} (spread over the kernels)"]
    return None


def _levin_items(args):
    from jaxdeblur.data import levin, levin_kernel_size
    items = list(levin())
    if args.dry_run:
        c = args.crop
        def crop(x):
            top, left = (x.shape[0] - c) // 2, (x.shape[1] - c) // 2
            return np.ascontiguousarray(x[top:top + c, left:left + c])
        items = [dataclasses.replace(it, blurred=crop(it.blurred), sharp=crop(it.sharp)) for it in items]
        return items, {it.name: args.kernel_size for it in items}
    return items, {it.name: levin_kernel_size(it.name) for it in items}


def _lai_items(root: Path, count: int):
    """`count` Lai items with the smallest kernels, spread over the categories (one image each in turn)."""
    from jaxdeblur.data import lai
    items = sorted(lai(root), key=lambda it: (it.kernel.shape[0], it.name))
    chosen, seen = [], set()
    for rounds in range(len(items)):
        for it in items:
            category = it.name.split("_")[0]
            if it not in chosen and (category, rounds) not in seen and len(chosen) < count:
                chosen.append(it)
                seen.add((category, rounds))
    return chosen[:count], {it.name: int(it.kernel.shape[0]) for it in chosen[:count]}


def _groups(items, sizes) -> list[tuple[int, int]]:
    """[(runs, latent pixels)] of the kernel-size groups deblur_batch makes of `items`."""
    groups: dict = {}
    for it in items:
        k = sizes[it.name]
        key = (it.blurred.shape[:2], k)
        groups[key] = groups.get(key, 0) + 1
    return [(runs, (h + k - 1) * (w + k - 1)) for ((h, w), k), runs in groups.items()]


def _config(method: str, preset: str, iterations: int | None, overrides: dict | None):
    from jaxdeblur.config import compress_schedule
    from jaxdeblur.methods import METHODS as REGISTRY, resolve
    config = resolve(REGISTRY[method].presets, preset, overrides)
    return config if iterations is None or iterations == config.iterations else compress_schedule(config,
                                                                                                 iterations)


def _deblur(items, sizes, method, config, seed, args):
    """deblur_batch of `items` (seed * 1000 + i for item i), no finishing step; a batch that does not fit the
    device's memory with args.strategy is rerun with "map" (one run at a time per device), and noted."""
    from jaxdeblur.api import deblur_batch
    from jaxdeblur.engine.memory import NotEnoughMemoryError
    from jaxdeblur.engine.runner import EngineOptions

    def run(strategy):
        options = EngineOptions(strategy=strategy, chunk=args.chunk, progress=args.progress,
                                description=f"{method} ({len(items)} images)")
        return deblur_batch([it.blurred for it in items], [sizes[it.name] for it in items], method, config=config,
                            seeds=[seed * 1000 + i for i in range(len(items))], finish=False,
                            labels=[it.name for it in items], options=options)

    try:
        return run(args.strategy)
    except NotEnoughMemoryError as err:
        if args.strategy == "map":
            raise
        note = f"{method}: strategy {args.strategy} did not fit the device memory, ran with map ({err})"
        print(note, flush=True)
        args.notes.append(note)
        return run("map")


def probe_method(method: str, items, sizes, args) -> Probe:
    """Runs up to 4 images of the first kernel-size group of `items` for the probe's iterations; measures it."""
    first = sizes[items[0].name]
    batch = [it for it in items if sizes[it.name] == first and it.blurred.shape == items[0].blurred.shape][:4]
    # the whole schedule compressed to the probe's length (what `iterations=` does in the API; for Kotera it also
    # shortens the coarse scales), so the probe is a program of its own unless that length is the preset's
    config = _config(method, args.preset, args.probe_iterations, None)
    t0 = time.perf_counter()
    results = _deblur(batch, sizes, method, config, args.seed, args)
    wall = time.perf_counter() - t0
    (runs, pixels), = _groups(batch, sizes)
    # Kotera: run_s covers its coarse scales too, which the compressed schedule keeps in proportion
    return Probe(runs=runs, pixels=pixels, iterations=config.iterations, wall_s=wall,
                 run_s=float(results[0].timings.get("run_s", 0.0)))


def score_levin(items, results, args) -> list[dict]:
    """Per image: aligned PSNR (dB) / SSIM, ISNR (dB), error ratio (against a hyper-Laplacian deconvolution with
    the true kernel), final loss; Levin's protocol (args.crop_px px crop, shifts up to args.max_shift px)."""
    from jaxdeblur.deconv import hyper_laplacian
    from jaxdeblur.metrics import aligned_isnr, aligned_psnr_ssim, error_ratio
    rows = []
    for it, r in zip(items, results):
        reference = np.asarray(hyper_laplacian(it.blurred, it.kernel))
        p, s, _ = aligned_psnr_ssim(r.image, it.sharp, max_shift=args.max_shift, crop=args.crop_px)
        rows.append({"name": it.name, "psnr": float(p), "ssim": float(s),
                     "isnr": float(aligned_isnr(r.image, it.blurred, it.sharp, max_shift=args.max_shift,
                                                crop=args.crop_px)),
                     "error_ratio": float(error_ratio(r.image, reference, it.sharp, max_shift=args.max_shift,
                                                      crop=args.crop_px)),
                     "final_loss": float(r.history["loss"][-1])})
    return rows


def score_lai(items, results, args) -> list[dict]:
    """Per item: PSNR (dB) / SSIM on MATLAB's Y channel after the shift search (`jaxdeblur.data.lai_psnr_ssim`)."""
    from jaxdeblur.data import lai_psnr_ssim
    rows = []
    for it, r in zip(items, results):
        p, s = lai_psnr_ssim(r.image, it.sharp, max_shift=args.max_shift, crop=args.crop_px)
        rows.append({"name": it.name, "psnr": float(p), "ssim": float(s), "final_loss": float(r.history["loss"][-1])})
    return rows


def means(rows: list[dict]) -> dict:
    keys = [k for k in ("psnr", "ssim", "isnr", "error_ratio") if rows and k in rows[0]]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def markdown(record: dict) -> str:
    lines = [f"# One-GPU reproduction{' (DRY RUN: tiny presets, 24 px crops, numbers meaningless)' if record['dry_run'] else ''}",
             "", f"Device: {record['machine']['device_kind']} ({record['machine']['backend']}); budget "
             f"{record['budget_s']:.0f} s, used {record.get('elapsed_s', 0):.0f} s; seed {record['seed']}; "
             f"strategy {record['strategy']}.", ""]
    for bench in ("levin", "lai"):
        done = {m: r for m, r in record["methods"].items() if bench in r}
        if not done:
            continue
        lines += [f"## {bench.capitalize()}", "", "| method | images | iterations | PSNR (dB) | SSIM | ISNR (dB) | "
                  "paper PSNR / SSIM / ISNR | wall (s) | dropped |", "|---|---|---|---|---|---|---|---|---|"]
        for method, result in done.items():
            part, paper = result[bench], PAPER[bench].get(method, {})
            mean = part["mean"]
            cell = lambda d, k, f: format(d[k], f) if k in d else "-"  # noqa: E731
            lines.append(f"| {method} | {part['images']} | {part['iterations']} | {cell(mean, 'psnr', '.2f')} | "
                         f"{cell(mean, 'ssim', '.3f')} | {cell(mean, 'isnr', '.2f')} | "
                         f"{cell(paper, 'psnr', '.2f')} / {cell(paper, 'ssim', '.3f')} / {cell(paper, 'isnr', '.2f')} "
                         f"| {part['wall_s']:.0f} | {'; '.join(part['dropped']) or 'nothing'} |")
        lines.append("")
    if record["dropped"]:
        lines += ["Dropped: " + "; ".join(record["dropped"]), ""]
    if record.get("notes"):
        lines += ["Notes: " + "; ".join(record["notes"]), ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=600.0, help="seconds for everything (default 600)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seed", type=int, default=0, help="run i's seed is seed * 1000 + i")
    parser.add_argument("--lai", type=Path, default=None, help="Lai et al.'s uniform set (root folder): a subset")
    parser.add_argument("--lai-images", type=int, default=10, help="how many Lai items (smallest kernels first)")
    parser.add_argument("--probe-iterations", type=int, default=None, help="default 100 (dry run: 20)")
    parser.add_argument("--chunk", type=int, default=None, help="iterations per compiled chunk (default 100; dry 10)")
    parser.add_argument("--images", type=int, default=None, help="at most this many Levin images (default 32; dry 2)")
    parser.add_argument("--strategy", default=None, choices=["vmap", "map", "auto"],
                        help="how a group's runs are batched (default vmap; dry run: auto, i.e. map on a CPU)")
    parser.add_argument("--dry-run", action="store_true", help="tiny presets on 24 px crops: the pipeline in seconds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default experiments/results)")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    dry = args.dry_run
    args.preset = "tiny" if dry else "paper"
    args.chunk = args.chunk or (10 if dry else 100)
    args.strategy = args.strategy or ("auto" if dry else "vmap")
    args.notes = []  # what ran otherwise than planned (e.g. a strategy that did not fit)
    args.probe_iterations = args.probe_iterations or (20 if dry else 100)  # dry: the tiny presets' whole run
    args.crop, args.kernel_size = 24, 5  # the dry run's image crop and kernel size
    args.crop_px, args.max_shift = (2, 1) if dry else (15, 5)
    max_images = args.images or (2 if dry else 32)
    if not 1 <= max_images <= 32:
        parser.error(f"--images must be in 1..32, got {max_images}")

    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    items, sizes = _levin_items(args)
    tag = device_tag()
    stem = f"reproduce_gpu{'_dryrun' if dry else ''}_{tag}"
    record = {"machine": machine(), "device": tag, "dry_run": dry, "budget_s": args.budget_s, "seed": args.seed,
              "preset": args.preset, "strategy": args.strategy, "paper": PAPER, "methods": {}, "dropped": [],
              "notes": args.notes}
    if args.lai is None:
        record["dropped"].append("Lai subset (no --lai folder given)")
    json_path, md_path = args.out / f"{stem}.json", args.out / f"{stem}.md"
    print(f"device: {record['machine']['device_kind']} ({record['machine']['backend']}); budget {args.budget_s:.0f} s",
          flush=True)

    for position, method in enumerate(args.methods):
        left = deadline - time.perf_counter() - RESERVE_S
        share = left / (len(args.methods) - position)
        entry = record["methods"].setdefault(method, {})
        if share <= 0:
            note = f"{method}: dropped (no time left in the budget)"
            record["dropped"].append(note)
            print(note, flush=True)
            continue
        t0 = time.perf_counter()
        probe = probe_method(method, spread(items, max_images), sizes, args)
        entry["probe"] = dataclasses.asdict(probe)
        share -= time.perf_counter() - t0
        full = _config(method, args.preset, None, None).iterations
        groups_of = lambda n: _groups(spread(items, n), sizes)  # noqa: E731
        chosen = plan(probe, full, groups_of, share, chunk=args.chunk, max_images=max_images)
        if chosen is None:
            note = (f"{method}: dropped (even {min(max_images, IMAGE_STEPS[-1])} images at {MIN_FRACTION:.0%} of the "
                    f"schedule exceed its {share:.0f} s)")
            record["dropped"].append(note)
            print(note, flush=True)
            continue
        n, iterations, dropped = chosen
        chosen_items = spread(items, n)
        estimate = estimate_s(probe, iterations, _groups(chosen_items, sizes))
        print(f"{method}: {n} images x {iterations} iterations, estimated {estimate:.0f} s of {share:.0f} s"
              f"{' (dropped: ' + '; '.join(dropped) + ')' if dropped else ''}", flush=True)
        t0 = time.perf_counter()
        results = _deblur(chosen_items, sizes, method, _config(method, args.preset, iterations, None), args.seed, args)
        rows = score_levin(chosen_items, results, args)
        entry["levin"] = {"images": n, "iterations": iterations, "estimated_s": round(estimate, 1),
                          "wall_s": round(time.perf_counter() - t0, 1), "dropped": dropped, "mean": means(rows),
                          "rows": rows, "kernel_sizes": {it.name: sizes[it.name] for it in chosen_items}}
        record["dropped"] += [f"{method}: {d}" for d in dropped]
        paper = PAPER["levin"].get(method, {})
        print(f"{method} on Levin: " + ", ".join(f"{k} {v:.3f}" for k, v in entry["levin"]["mean"].items())
              + f"  | paper: {', '.join(f'{k} {v}' for k, v in paper.items()) or '-'}", flush=True)
        record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        record["memory"] = peak_memory_bytes()
        write_json(json_path, record)
        md_path.write_text(markdown(record))

    if args.lai is not None:
        lai_items, lai_sizes = _lai_items(args.lai, args.lai_images)
        for position, method in enumerate(m for m in args.methods if "levin" in record["methods"].get(m, {})):
            entry = record["methods"][method]
            probe = Probe(**entry["probe"])
            left = deadline - time.perf_counter() - RESERVE_S
            share = left / (len([m for m in args.methods if "levin" in record["methods"].get(m, {})]) - position)
            full = _config(method, args.preset, None, None).iterations
            # SelfDeblur's switch to 1-SSIM on Lai, in proportion for a preset shorter than the paper's 5000
            overrides = {"ssim_from": max(1, round(LAI_SSIM_FROM * full / 5000))} if method == "selfdeblur" else None
            chosen = plan(probe, full, lambda n: _groups(lai_items[:n], lai_sizes), share, chunk=args.chunk,
                          max_images=len(lai_items))
            if chosen is None:
                record["dropped"].append(f"{method}: the Lai subset (no time left)")
                continue
            n, iterations, dropped = chosen
            record["dropped"] += [f"{method} on Lai: {d}" for d in dropped]
            t0 = time.perf_counter()
            results = _deblur(lai_items[:n], lai_sizes, method, _config(method, args.preset, iterations, overrides),
                              args.seed, args)
            rows = score_lai(lai_items[:n], results, args)
            entry["lai"] = {"images": n, "iterations": iterations, "wall_s": round(time.perf_counter() - t0, 1),
                            "dropped": dropped, "mean": means(rows), "rows": rows}
            print(f"{method} on Lai ({n} items): " + ", ".join(f"{k} {v:.3f}" for k, v in entry["lai"]["mean"].items())
                  + f"  | paper (100 items): {PAPER['lai'].get(method, '-')}", flush=True)
            record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
            write_json(json_path, record)
            md_path.write_text(markdown(record))

    record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    record["memory"] = peak_memory_bytes()
    write_json(json_path, record)
    md_path.write_text(markdown(record))
    print(md_path.read_text())
    print(f"written: {json_path}, {md_path}")
    return record


if __name__ == "__main__":
    main()
