"""Patch labels for the region classifier: where does the MAP estimator find the true kernel?

For image i of the training folder (gray, in sorted order) and kernel j < `kernels_per_image`,
with key = fold_in(fold_in(key(label_seed), i), j) split into (blur: (kernel, length), noise):

1. a camera-shake kernel `jaxdeblur.kernels.motion(key_kernel, kernel_size, length=L)`,
   L uniform in `motion_length` x (kernel_size - 1);
2. the image blurred "valid" by it, Gaussian noise `noise_sigma` added, clipped and
   rounded to 8 bits (`jaxdeblur.noise.add_gaussian_noise`);
3. windows of `patch` px at every `patch_stride` px (rows and columns from 0);
4. the MAP estimator (`jaxdeblur.estimate.estimate_kernels`, preset `map_preset`,
   support `kernel_size`) on batches of windows (one compiled program: the last
   batch is padded with copies);
5. the kernel similarity (`jaxdeblur.metrics.kernel_similarity`) of each estimate to
   the true kernel; label = similarity > `threshold` (Yang, Wu & Sun's rule,
   lambda = 0.75). A flat window (no neighbouring pixels differing by more than
   1/255, which the estimator refuses) gets similarity 0, label 0.

Everything is a function of the config's label fields and the images, so the
labels are deterministic. `cached_labels(folder, config)` keeps them on disk
under `cache_dir/<id>/` (id: a hash of the label fields and the folder's file
names and sizes): one npz per chunk of images, written atomically as it is
done (an interrupted run resumes at the next chunk), then `labels.npz`. The
threshold is applied when loading, so changing it needs no new estimates.
Delete the folder (or pass rebuild=True) to rebuild.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdeblur import kernels
from jaxdeblur.estimate import MIN_EDGE_CONTRAST, edge_contrast, estimate_kernels
from jaxdeblur.forward import blur
from jaxdeblur.metrics import kernel_similarity
from jaxdeblur.models.region.config import RegionConfig
from jaxdeblur.noise import add_gaussian_noise

LABEL_FIELDS = ("patch", "kernel_size", "motion_length", "kernels_per_image", "patch_stride", "noise_sigma",
                "map_preset", "label_seed")
DEFAULT_CACHE = Path("runs") / "region_labels"  # relative to the working directory; git-ignored in the repo
CHUNK_IMAGES = 20


def window_origins(size: int, patch: int, stride: int) -> list[int]:
    """Window starts 0, stride, ... that fit in `size` (the paper's overlapping windows)."""
    if patch > size:
        raise ValueError(f"a window of {patch} px does not fit in {size} px")
    return list(range(0, size - patch + 1, stride))


@functools.partial(jax.jit, static_argnames=("kernel_size", "motion_length"))
def _blur(image, key, *, kernel_size: int, motion_length: tuple[float, float]):
    key_kernel, key_length = jax.random.split(key)
    low, high = motion_length
    length = (low + (high - low) * jax.random.uniform(key_length)) * (kernel_size - 1)
    kernel = kernels.motion(key_kernel, kernel_size, length=length)
    return blur(image, kernel, "valid"), kernel


_similarities = jax.jit(jax.vmap(kernel_similarity))


def degrade_image(image: np.ndarray, index: int, j: int, config: RegionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(blurred + noisy image, true kernel) of image number `index` and kernel number `j` (see the module docstring)."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.label_seed), index), j)
    key_blur, key_noise = jax.random.split(key)
    y, k = _blur(jnp.asarray(image, jnp.float32), key_blur, kernel_size=config.kernel_size,
                 motion_length=tuple(config.motion_length))
    y = add_gaussian_noise(key_noise, y, float(config.noise_sigma), quantize=True, clip=True)
    return np.asarray(y), np.asarray(k)


def make_labels(images: Sequence[np.ndarray], config: RegionConfig, *, first_index: int = 0,
                batch: int = 48) -> dict[str, np.ndarray]:
    """Windows, true and estimated kernels and similarities of `images` (gray (H, W) in [0, 1]).

    Image n of `images` is image number first_index + n of the folder (its keys).
    Returns {"patches": (N, P, P) uint8 (the 8-bit blurred windows),
    "similarity": (N,) float32, "image": (N,) int32 (image number),
    "kernel_index": (N,) int32, "origin": (N, 2) int32 (row, column),
    "kernels": (N, K, K) float32 true kernels, "estimates": (N, K, K) float32}.
    Labels: `labels_of(record, threshold)`.
    """
    p, stride = config.patch, config.patch_stride
    windows, meta, true_k = [], [], []
    for n, image in enumerate(images):
        image = np.asarray(image, np.float32)
        image = image[..., 0] if image.ndim == 3 else image
        index = first_index + n
        for j in range(config.kernels_per_image):
            y, k = degrade_image(image, index, j, config)
            for r in window_origins(y.shape[0], p, stride):
                for c in window_origins(y.shape[1], p, stride):
                    windows.append(y[r:r + p, c:c + p])
                    meta.append((index, j, r, c))
                    true_k.append(k)
    if not windows:
        raise ValueError("no windows: the images are too small for the patch and kernel size")
    windows = np.stack(windows).astype(np.float32)
    true_k = np.stack(true_k).astype(np.float32)
    n = len(windows)
    flat = edge_contrast(windows) < MIN_EDGE_CONTRAST
    usable = np.flatnonzero(~flat)
    estimates = np.zeros_like(true_k)
    similarity = np.zeros(n, np.float32)
    batch = max(1, min(batch, len(usable))) if len(usable) else 1
    for s in range(0, len(usable), batch):
        idx = usable[s:s + batch]
        padded = np.concatenate([idx, np.full(batch - len(idx), idx[0])])  # one program for every batch
        est = estimate_kernels(windows[padded], config.kernel_size, preset=config.map_preset).kernel[:len(idx)]
        estimates[idx] = est
        similarity[idx] = np.asarray(_similarities(jnp.asarray(est), jnp.asarray(true_k[idx])))
    meta = np.asarray(meta, np.int32)
    return {"patches": np.round(windows * 255).astype(np.uint8), "similarity": similarity,
            "image": meta[:, 0], "kernel_index": meta[:, 1], "origin": meta[:, 2:4], "kernels": true_k,
            "estimates": estimates}


def labels_of(record: dict, threshold: float) -> np.ndarray:
    """(N,) float32 labels: 1 where the similarity exceeds `threshold`, else 0."""
    return (np.asarray(record["similarity"]) > threshold).astype(np.float32)


def _folder_listing(paths: Sequence[Path], root: Path) -> list:
    return [[p.relative_to(root).as_posix(), p.stat().st_size] for p in paths]


def cache_id(config: RegionConfig, listing: list) -> str:
    """Hash of the label fields of `config` and the data listing: names the cache folder."""
    fields = {name: getattr(config, name) for name in LABEL_FIELDS}
    blob = json.dumps({"fields": fields, "data": listing}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _save_npz(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **record)
    os.replace(tmp, path)


def cache_path(data, config: RegionConfig, *, cache_dir=None) -> Path:
    """Where `cached_labels` keeps (or will keep) the merged labels of `data` for `config` (labels.npz)."""
    from jaxdeblur.data.sources import ImageFolder

    source = ImageFolder(data, mode="gray")
    return (Path(DEFAULT_CACHE if cache_dir is None else cache_dir)
            / cache_id(config, _folder_listing(source.paths, source.root)) / "labels.npz")


def cached_labels(data, config: RegionConfig, *, cache_dir=None, rebuild: bool = False,
                  log: Callable[[str], None] | None = None, chunk: int = CHUNK_IMAGES) -> dict[str, np.ndarray]:
    """`make_labels` of every image under the folder `data` (gray), cached on disk (see the module docstring).

    Returns the record of `make_labels` plus "labels" (config.threshold) and
    "held_out" (N,) bool (the windows of the last `held_out_images` images).
    """
    from jaxdeblur.data.sources import ImageFolder

    source = ImageFolder(data, mode="gray")
    if len(source) <= config.held_out_images:
        raise ValueError(f"{data} holds {len(source)} images; the region labels hold out the last "
                         f"{config.held_out_images} and need more")
    folder = Path(DEFAULT_CACHE if cache_dir is None else cache_dir) / cache_id(
        config, _folder_listing(source.paths, source.root))
    final = folder / "labels.npz"
    if rebuild and folder.exists():
        for f in folder.glob("*.npz"):
            f.unlink()
    if not final.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fields.json").write_text(json.dumps(
            {"fields": {n: getattr(config, n) for n in LABEL_FIELDS}, "data": str(source.root),
             "images": len(source)}, indent=1, default=list))
        parts = []
        for start in range(0, len(source), chunk):
            path = folder / f"chunk_{start:05d}.npz"
            if not path.exists():
                t0 = time.perf_counter()
                stop = min(start + chunk, len(source))
                record = make_labels([source[i]["sharp"] for i in range(start, stop)], config, first_index=start)
                _save_npz(path, record)
                if log:
                    log(f"labels: images {start}-{stop - 1} of {len(source)}: {len(record['similarity'])} windows, "
                        f"{np.mean(record['similarity'] > config.threshold):.0%} good, "
                        f"{time.perf_counter() - t0:.1f} s")
            parts.append(path)
        loaded = [dict(np.load(p)) for p in parts]
        merged = {k: np.concatenate([part[k] for part in loaded]) for k in loaded[0]}
        _save_npz(final, merged)
    record = dict(np.load(final))
    record["labels"] = labels_of(record, config.threshold)
    record["held_out"] = record["image"] >= len(source) - config.held_out_images
    return record


__all__ = ["LABEL_FIELDS", "DEFAULT_CACHE", "window_origins", "degrade_image", "make_labels", "labels_of",
           "cache_id", "cache_path", "cached_labels"]
