"""A data-free check of a trained region classifier: its scores on fixed synthetic windows.

`check_windows(config)`: windows of `config.patch` px cut from two photos
bundled with scikit-image (camera, astronaut; gray, 2 x patch px), each
blurred "valid" by one fixed camera-shake kernel (`jaxdeblur.kernels.motion`,
key CHECK_SEED, support config.kernel_size) with 1% noise, at the four
corners and the centre: 10 windows. An export stores the scores of the
trained model on them (`check_metrics`); `load` users and tests recompute
them to confirm the weights and the code reproduce what was exported.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxdeblur.forward import blur
from jaxdeblur.kernels import motion
from jaxdeblur.models.region.config import RegionConfig
from jaxdeblur.noise import add_gaussian_noise

CHECK_PHOTOS = ("camera", "astronaut")
CHECK_SEED = 11


def check_windows(config: RegionConfig) -> np.ndarray:
    """(10, patch, patch) float32 windows (see the module docstring)."""
    from jaxdeblur.data.benchmarks import sample_photos

    p, k = config.patch, config.kernel_size
    photos = sample_photos(CHECK_PHOTOS, size=2 * p + k - 1, gray=True)
    windows = []
    for n, photo in enumerate(photos.values()):
        key = jax.random.fold_in(jax.random.key(CHECK_SEED), n)
        kernel = motion(key, k)
        y = add_gaussian_noise(jax.random.fold_in(key, 1), blur(np.asarray(photo, np.float32), kernel, "valid"),
                               0.01, quantize=True, clip=True)
        y = np.asarray(y)
        size = y.shape[0]
        for r, c in ((0, 0), (0, size - p), (size - p, 0), (size - p, size - p), ((size - p) // 2, (size - p) // 2)):
            windows.append(y[r:r + p, c:c + p])
    return np.stack(windows).astype(np.float32)


def check_metrics(scorer, config: RegionConfig) -> dict:
    """{"check_mean_score", "check_min_score", "check_max_score"} of `scorer` on `check_windows(config)`."""
    scores = np.asarray(scorer(check_windows(config)), np.float64)
    return {"check_mean_score": float(scores.mean()), "check_min_score": float(scores.min()),
            "check_max_score": float(scores.max())}


__all__ = ["CHECK_PHOTOS", "CHECK_SEED", "check_metrics", "check_windows"]
