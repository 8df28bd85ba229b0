"""Test scenes for the kernel estimators: rectangles and discs on grey, strong edges in every direction."""

import numpy as np


def shapes_scene(seed: int, size: int, count: int) -> np.ndarray:
    """A piecewise-constant (size, size) float32 image in [0, 1]: `count` random rectangles and discs on 0.5."""
    rng = np.random.default_rng(seed)
    x = np.full((size, size), 0.5, np.float32)
    rows, cols = np.mgrid[:size, :size]
    for _ in range(count):
        r0, c0 = rng.integers(0, size - 8, 2)
        h, w = rng.integers(6, size // 2, 2)
        x[r0 : r0 + h, c0 : c0 + w] = rng.uniform(0, 1)
        cy, cx = rng.uniform(0, size, 2)
        x[(rows - cy) ** 2 + (cols - cx) ** 2 < rng.uniform(4, 14) ** 2] = rng.uniform(0, 1)
    return x
