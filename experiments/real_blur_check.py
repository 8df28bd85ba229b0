"""Do the shipped restoration models help on real-like blur? Two held-out checks, every model side by side.

1. Real-blur check (colour): camera shake made the way real blur datasets
   make it (GoPro, REDS: average the frames of a moving camera). Each of the
   last --photos bsd68 photos (never trained on; the colour models validate
   on bsd68's first crops) is seen by a camera that moves along a random
   smooth path: --frames-range frames, each a sub-pixel translation plus a
   small in-plane rotation about the crop's centre (so the blur varies over
   the image), bilinearly resampled. The frames are averaged in linear light
   (sRGB gamma 2.2 undone, then redone), 1% Gaussian noise is added and the
   result is 8-bit quantised; the sharp reference is the middle frame (as
   GoPro's). This path generator is NOT the training kernel generator
   (`jaxdeblur.kernels.motion`).
2. set12 + motion blur + 1% noise (gray): every set12 image blurred by its own
   camera-shake kernel (`jaxdeblur.kernels.motion`, support 19, length
   U(4, 18) px), 'valid' convolution, 1% noise, 8-bit (`synthetic_set`).

Methods: the blurred input, each --models network (a gray model runs channel
by channel; a colour model sees a gray image repeated to RGB and returns its
channel mean), and the MAP pipeline (`jaxdeblur.deblur(method="map")`,
kernel size auto). Scores: PSNR / SSIM after Levin's shift alignment
(`metrics.aligned_psnr_ssim`, 15 px border), since a blind estimate is
defined up to a shift. Writes JSON + markdown to experiments/results/.

  python -m experiments.real_blur_check                      # the shipped nafnet-cpu, ufpnet-cpu and MAP
  JAXDEBLUR_CHECKPOINTS=runs/unshipped python -m experiments.real_blur_check \
      --models nafnet-cpu nafnet-shake nafnet-rgb ufpnet-cpu  # + weights exported elsewhere
  python -m experiments.real_blur_check --photos 1 --limit 1 --models nafnet-cpu --out /tmp/x   # smoke
  python -m experiments.real_blur_check --models nafnet-long --no-map --merge   # add a model to the result

--merge adds the columns of the methods run now to the existing result of
the same setup (refused when any setting but the methods differs, or when
the blurred inputs do not score the same), replacing a column of the same
name; the figure is redrawn with every column (the earlier methods rerun on
the first image of each set only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from scipy import ndimage

from experiments._common import RESULTS, device_tag, machine, write_json
from jaxdeblur import deblur, kernels
from jaxdeblur.data import default_root, synthetic_set
from jaxdeblur.data.sources import ImageFolder
from jaxdeblur.metrics import aligned_psnr_ssim
from jaxdeblur.models import load

GAMMA = 2.2


def camera_path(rng: np.random.Generator, frames: int, *, speed: tuple[float, float],
                jitter: float, spin: float) -> np.ndarray:
    """(frames, 3) camera poses (dy px, dx px, angle rad), centred on the middle frame.

    A constant-velocity drift (speed U(speed) px per frame, random direction)
    plus a random walk of accelerations (std `jitter` px / frame^2) and a
    rotation rate U(-spin, spin) rad per frame.
    """
    direction = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(*speed) * np.array([np.sin(direction), np.cos(direction)])
    accel = rng.normal(0, jitter, (frames, 2)).cumsum(0)
    shifts = (velocity + accel).cumsum(0)
    angles = rng.uniform(-spin, spin) * np.arange(frames)
    poses = np.concatenate([shifts, angles[:, None]], 1)
    return poses - poses[frames // 2]


def frame(image: np.ndarray, pose: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """The (size, size, C) crop at (top, left) of `image` moved by `pose` (bilinear; rotation about the crop centre)."""
    dy, dx, angle = pose
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cy = cx = (size - 1) / 2
    c, s = np.cos(angle), np.sin(angle)
    sy = c * (yy - cy) - s * (xx - cx) + cy + top + dy
    sx = s * (yy - cy) + c * (xx - cx) + cx + left + dx
    return np.stack([ndimage.map_coordinates(image[..., ch], [sy, sx], order=1, mode="reflect")
                     for ch in range(image.shape[-1])], -1)


def shaken(image: np.ndarray, rng: np.random.Generator, *, size: int, frames_range: tuple[int, int],
           noise: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """(blurred, sharp, info): frame-averaged centre crop of `image` along a random camera path."""
    frames = int(rng.integers(frames_range[0], frames_range[1] + 1))
    poses = camera_path(rng, frames, speed=(0.15, 0.7), jitter=0.1, spin=np.deg2rad(0.1))
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    linear = np.stack([frame(image ** GAMMA, p, top, left, size) for p in poses])
    blurred = np.clip(linear.mean(0), 0, 1) ** (1 / GAMMA)
    blurred = blurred + noise * rng.standard_normal(blurred.shape)
    blurred = np.round(np.clip(blurred, 0, 1) * 255) / 255
    sharp = np.clip(linear[frames // 2], 0, 1) ** (1 / GAMMA)
    extent = float(np.ptp(poses[:, 0]) + np.ptp(poses[:, 1]))
    return blurred.astype(np.float32), sharp.astype(np.float32), {
        "frames": frames, "path_extent_px": round(extent, 2),
        "corner_rotation_px": round(float(abs(poses[:, 2]).max() * size / np.sqrt(2)), 2)}


def real_blur_items(root: Path, count: int, seed: int, size: int, frames_range) -> list[dict]:
    """The last `count` bsd68 photos, each shaken along its own path (deterministic by seed)."""
    folder = ImageFolder(root / "bsd68", mode="rgb")
    items = []
    for i in range(len(folder) - count, len(folder)):
        rng = np.random.default_rng([seed, i])
        blurred, sharp, info = shaken(folder[i]["sharp"], rng, size=size, frames_range=frames_range, noise=0.01)
        items.append({"name": Path(folder.name(i)).stem, "blurred": blurred, "sharp": sharp, **info})
    return items


def set12_items(root: Path, limit: int | None, seed: int) -> list[dict]:
    """set12, each image blurred by its own camera-shake kernel (length U(4, 18) px, support 19) + 1% noise."""
    folder = ImageFolder(root / "set12", mode="gray")
    count = len(folder) if limit is None else min(limit, len(folder))
    items = []
    for i in range(count):
        key = jax.random.fold_in(jax.random.key(seed), i)
        length = 4.0 + 14.0 * float(jax.random.uniform(jax.random.fold_in(key, 1)))
        k = np.asarray(kernels.motion(key, 19, length=length))
        (item,) = synthetic_set({Path(folder.name(i)).stem: folder[i]["sharp"][..., 0]}, {"k": k},
                                noise_sigma=0.01, seed=seed * 1000 + i)
        items.append({"name": item.name, "blurred": np.asarray(item.blurred), "sharp": np.asarray(item.sharp),
                      "length_px": round(length, 2)})
    return items


def network(name: str):
    """blurred (H, W) or (H, W, 3) -> restoration of the same shape, with `name`'s shipped weights."""
    model = load(name)
    rgb_model = model.manifest["config"].get("channels", 1) == 3

    def run(blurred: np.ndarray) -> np.ndarray:
        gray_in = blurred.ndim == 2
        x = np.repeat(blurred[..., None], 3, -1) if gray_in and rgb_model else blurred
        out = model(x)
        out = np.asarray(getattr(out, "restored", out))  # UFPNet returns a result with .restored
        return out.mean(-1) if gray_in and out.ndim == 3 else out

    return run


def map_pipeline(blurred: np.ndarray) -> np.ndarray:
    return np.asarray(deblur(blurred, "auto", method="map").image)


def score(image: np.ndarray, sharp: np.ndarray) -> dict:
    p, s, _ = aligned_psnr_ssim(np.clip(image, 0, 1), sharp, max_shift=5, crop=15)
    return {"psnr": round(float(p), 3), "ssim": round(float(s), 4)}


def evaluate(items: list[dict], methods: dict) -> tuple[list[dict], dict, dict]:
    """Rows {name, info..., method: {psnr, ssim}}, the seconds per image of each method (first call excluded)
    and the first item's images {"sharp", "blurred", method: output} (for the figure)."""
    rows, seconds, first = [], {m: [] for m in methods}, {}
    for n, item in enumerate(items):
        row = {k: v for k, v in item.items() if k not in ("blurred", "sharp")}
        row["blurred"] = score(item["blurred"], item["sharp"])
        outputs = {}
        for name, fn in methods.items():
            t0 = time.perf_counter()
            outputs[name] = fn(item["blurred"])
            if n:
                seconds[name].append(time.perf_counter() - t0)
            row[name] = score(outputs[name], item["sharp"])
        if not n:
            first = {"sharp": item["sharp"], "blurred": item["blurred"], **outputs}
        rows.append(row)
        print(f"{item['name']}: " + ", ".join(f"{m} {row[m]['psnr']:.2f}" for m in ["blurred", *methods]),
              file=sys.stderr, flush=True)
    return rows, {m: round(float(np.mean(s)), 2) if s else None for m, s in seconds.items()}, first


def figure(path: Path, examples: dict, record: dict) -> Path:
    """One row per set: the first image's sharp reference, input and every method (centre 128 px, PSNR in titles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(next(iter(examples.values())))
    fig, axes = plt.subplots(len(examples), len(columns), figsize=(2.6 * len(columns), 2.8 * len(examples)),
                             squeeze=False)
    for ax_row, (name, images) in zip(axes, examples.items()):
        row = record["sets"][name]["rows"][0]
        for ax, col in zip(ax_row, columns):
            img = np.clip(np.asarray(images[col]), 0, 1)
            h, w = img.shape[:2]
            img = img[h // 2 - 64: h // 2 + 64, w // 2 - 64: w // 2 + 64]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_title(col if col == "sharp" else f"{col}\n{row[col]['psnr']:.2f} dB", fontsize=8)
            ax.axis("off")
        ax_row[0].set_ylabel(name)
    fig.suptitle("Centre crops of the first image of each set (aligned PSNR of the whole image)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary(rows: list[dict], columns: list[str]) -> dict:
    return {c: {"psnr": round(float(np.mean([r[c]["psnr"] for r in rows])), 3),
                "ssim": round(float(np.mean([r[c]["ssim"] for r in rows])), 4),
                "gain_db": round(float(np.mean([r[c]["psnr"] - r["blurred"]["psnr"] for r in rows])), 3)}
            for c in columns}


def markdown(record: dict) -> str:
    lines = [f"# Restoration on real-like blur ({record['machine']['backend']}, "
             f"{record['machine']['cpu_count']} CPUs)", "",
             "Aligned PSNR (dB) / SSIM, mean gain over the blurred input. Setup: experiments/real_blur_check.py.", ""]
    if record.get("note"):
        lines += [record["note"], ""]
    for name, part in record["sets"].items():
        lines += [f"## {name} ({len(part['rows'])} images)", "", "| method | PSNR | SSIM | gain | s / image |",
                  "|---|---|---|---|---|"]
        for col, s in part["summary"].items():
            t = part["seconds_per_image"].get(col)
            lines.append(f"| {col} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['gain_db']:+.2f} | "
                         f"{'' if t is None else t} |")
        lines.append("")
    return "\n".join(lines)


MERGE_FREE = ("models", "note", "no_map", "out", "merge")  # the settings a merged result may differ in


def merge(old: dict, new: dict) -> dict:
    """`old` with `new`'s method columns added (same setup; see the module docstring).

    Raises:
      SystemExit: a setting or an input differs (one line).
    """
    differ = [k for k in new["args"] if k not in MERGE_FREE and old["args"].get(k) != new["args"][k]]
    if differ:
        raise SystemExit(f"--merge: the existing result was made with other settings ({', '.join(differ)}); "
                         "run without --merge (or with --out elsewhere)")
    for name, part in new["sets"].items():
        rows = old["sets"][name]["rows"]
        if [(r["name"], r["blurred"]) for r in rows] != [(r["name"], r["blurred"]) for r in part["rows"]]:
            raise SystemExit(f"--merge: the {name} inputs differ from the existing result's")
        methods = [c for c in part["summary"] if c != "blurred"]
        for row, added in zip(rows, part["rows"]):
            row.update({m: added[m] for m in methods})
        earlier = [c for c in old["sets"][name]["summary"] if c != "blurred"]  # a rerun column keeps its place
        columns = ["blurred", *earlier, *[m for m in methods if m not in earlier]]
        old["sets"][name]["summary"] = summary(rows, columns)
        old["sets"][name]["seconds_per_image"].update(part["seconds_per_image"])
    old["merged"] = old.get("merged", []) + [{"args": new["args"], "machine": new["machine"], "note": new["note"]}]
    old["note"] = " ".join(n for n in (old.get("note", ""), new["note"]) if n)
    return old


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nafnet-cpu", "ufpnet-cpu"],
                        help="Weights to compare (shipped names; JAXDEBLUR_CHECKPOINTS=DIR adds exported ones).")
    parser.add_argument("--note", default="", help="A sentence stored with the result (e.g. where weights came from).")
    parser.add_argument("--no-map", action="store_true", help="Leave the MAP pipeline out.")
    parser.add_argument("--photos", type=int, default=8, help="bsd68 photos of the real-blur check (the last ones).")
    parser.add_argument("--size", type=int, default=256, help="Crop side of the real-blur check (px).")
    parser.add_argument("--frames-range", type=int, nargs=2, default=(7, 15))
    parser.add_argument("--limit", type=int, default=None, help="set12 images (default all 12).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="Data root (default ../shared/data).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true", help="Add the methods run now to the existing result.")
    args = parser.parse_args(argv)
    root = args.data or default_root()
    if root is None or not (Path(root) / "bsd68").is_dir():
        parser.error("needs ../shared/data (bsd68, set12) or --data")
    root = Path(root)
    methods = {m: network(m) for m in args.models}
    if not args.no_map:
        methods["map_pipeline"] = map_pipeline
    columns = ["blurred", *methods]
    sets = {"real_blur_bsd68": real_blur_items(root, args.photos, args.seed, args.size, args.frames_range),
            "set12_motion": set12_items(root, args.limit, args.seed)}
    record = {"experiment": "real_blur_check", "machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "note": args.note, "sets": {}}
    examples = {}
    for name, items in sets.items():
        rows, seconds, examples[name] = evaluate(items, methods)
        record["sets"][name] = {"summary": summary(rows, columns), "seconds_per_image": seconds, "rows": rows}
    stem = f"real_blur_check_{device_tag()}"
    existing = args.out / f"{stem}.json"
    if args.merge:
        if not existing.is_file():
            raise SystemExit(f"--merge: no result to add to at {existing}")
        record = merge(json.loads(existing.read_text()), record)
        for name, items in sets.items():  # the figure's first images of the earlier columns
            earlier = {m: (map_pipeline if m == "map_pipeline" else network(m))
                       for m in record["sets"][name]["summary"] if m not in ("blurred", *examples[name])}
            examples[name].update({m: fn(items[0]["blurred"]) for m, fn in earlier.items()})
            order = ["sharp", *record["sets"][name]["summary"]]
            examples[name] = {c: examples[name][c] for c in order}
    write_json(existing, record)
    (args.out / f"{stem}.md").write_text(markdown(record))
    figure(args.out / f"{stem}.png", examples, record)
    print(markdown(record))


if __name__ == "__main__":
    main()
