"""A 12-megapixel colour photo through `jaxdeblur deblur --region auto`: wall time and peak memory.

The photo is a synthetic 4000 x 3000 RGB mosaic of scikit-image's colour photos at their native scale
(astronaut, coffee, chelsea, rocket, tiled), blurred by a motion kernel ('valid' blur, as a camera
records it) plus 1% Gaussian noise, and saved as PNG. The command line a user would type then runs in
a child process:

    jaxdeblur deblur big.png -o OUT -k K --region auto --iterations N --overwrite

(preset "auto": the fast preset on a CPU). It estimates the kernel on the most textured 256 x 256
window and deconvolves the whole image non-blind with it (every colour channel). Measured: the
child's wall time and peak resident memory (getrusage of the waited child), and the aligned PSNR of
a central 512 x 512 crop of the luma against the sharp photo, for the blurred input and both results.

    python -m experiments.large_photo --kernel-size 13 --iterations 1000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from experiments._common import RESULTS, device_tag, machine, write_json

from jaxdeblur.color import rgb_to_gray
from jaxdeblur.data import sample_photos
from jaxdeblur.forward import blur
from jaxdeblur.io import load_image, save_image
from jaxdeblur.kernels import motion
from jaxdeblur.metrics import aligned_psnr_ssim

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
WIDTH, HEIGHT = 4000, 3000


def mosaic(width: int, height: int, tile: int = 500) -> np.ndarray:
    """(height, width, 3) float32: colour photos at about native scale, tiled (mirrored every other tile)."""
    photos = list(sample_photos(PHOTOS, size=tile, gray=False).values())
    rows = []
    for r in range(-(-height // tile)):
        row = [photos[(r + c) % len(photos)][:, ::(-1 if (r + c) % 2 else 1)] for c in range(-(-width // tile))]
        rows.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:height, :width], np.float32)


def make_problem(folder: Path, kernel_size: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """Writes the blurred photo as PNG; returns its path and the sharp photo cropped to match it."""
    k = kernel_size
    sharp_full = mosaic(WIDTH + k - 1, HEIGHT + k - 1)
    kernel = np.asarray(motion(jax.random.key(seed), k))
    blurred = np.stack([np.asarray(blur(sharp_full[..., c], kernel, "valid")) for c in range(3)], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 0.01, blurred.shape).astype(np.float32)
    path = save_image(folder / "big.png", np.clip(blurred + noise, 0, 1))
    o = (k - 1) // 2
    return path, sharp_full[o:o + HEIGHT, o:o + WIDTH]


def centre_score(image: np.ndarray, sharp: np.ndarray, side: int = 512) -> float:
    h, w = sharp.shape[:2]
    y, x = (h - side) // 2, (w - side) // 2
    crop = (slice(y, y + side), slice(x, x + side))
    psnr, _, _ = aligned_psnr_ssim(np.asarray(rgb_to_gray(image[crop])), np.asarray(rgb_to_gray(sharp[crop])))
    return float(psnr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel-size", type=int, default=13)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--work", type=Path, default=Path("large_photo_run"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    path, sharp = make_problem(args.work, args.kernel_size)
    out = args.work / "out"
    command = [str(Path(sys.executable).with_name("jaxdeblur")), "deblur", str(path), "-o", str(out),
               "-k", str(args.kernel_size), "--region", "auto", "--iterations", str(args.iterations), "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if proc.returncode != 0:
        sys.exit(f"the command failed ({proc.returncode}): {proc.stderr[-2000:]}")
    record = json.loads((out / "big.json").read_text())
    scores = {"blurred": centre_score(load_image(path, mode="rgb"), sharp),
              "deconvolved": centre_score(load_image(out / "big_deconvolved.png", mode="rgb"), sharp)}
    result = {
        "what": "12-megapixel colour photo, kernel estimated on a window (--region auto), whole image "
                "deconvolved; the machine is shared with other jobs, so times are upper bounds",
        "command": " ".join(["jaxdeblur"] + command[1:]), "image": [HEIGHT, WIDTH, 3],
        "kernel_size": args.kernel_size, "iterations": args.iterations, "preset": record["preset"],
        "region": record["region"], "wall_s": round(wall, 1), "peak_rss_gb": round(peak_rss / 1e9, 2),
        "timings": record["timings"], "centre_512_aligned_psnr_db": scores,
        "machine": machine(),
    }
    print(json.dumps(result, indent=1))
    write_json(RESULTS / f"large_photo_k{args.kernel_size}_{args.iterations}it_{device_tag()}.json", result)


if __name__ == "__main__":
    main()
