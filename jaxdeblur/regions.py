"""Where to estimate a kernel on a large image: explicit windows and window selectors.

A region is a box (x, y, w, h) in pixels (x, y: the top-left column and row).
`resolve_region(image, region, ...)` turns what a user gave (a box, or the
name of a selector such as "auto") into a checked box. Selectors are
functions (image, (h, w)) -> (x, y, w, h) registered by name in
`REGION_SELECTORS`; "auto" is `most_textured_window` (the window with the
most gradient energy, a classical heuristic for where a blur is best
observed); "cnn" is `cnn_window` (the window the good-region CNN of Yang,
Wu & Sun rates best, `jaxdeblur.select_region` with the shipped weights).
More selectors plug in with `register_region_selector(name, fn)` and are
then usable as region=name from the API and `--region name` from the
command line.
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

Box = tuple[int, int, int, int]
Selector = Callable[[np.ndarray, tuple[int, int]], Box]

AUTO_REGION_SIDE = 256  # side of the "auto" window: enough edges for a kernel, seconds per iteration on a CPU


def most_textured_window(image: np.ndarray, size: tuple[int, int]) -> Box:
    """The window of `size` (h, w) with the largest sum of squared gradients, as (x, y, w, h).

    image: (H, W) or (H, W, C) float; colour is averaged over channels.
    Every position (stride 1) is scored with an integral image, O(H W).
    Ties go to the first window in row-major order.
    """
    gray = np.asarray(image, np.float64)
    if gray.ndim == 3:
        gray = gray.mean(axis=-1)
    h, w = size
    rows, cols = gray.shape
    if not (1 <= h <= rows and 1 <= w <= cols):
        raise ValueError(f"window size {size} does not fit in the image {gray.shape}")
    energy = np.zeros_like(gray)
    energy[:, :-1] += np.diff(gray, axis=1) ** 2
    energy[:-1, :] += np.diff(gray, axis=0) ** 2
    integral = np.pad(energy.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x), int(y), int(w), int(h)


def cnn_window(image: np.ndarray, size: tuple[int, int]) -> Box:
    """The window a trained CNN rates best for kernel estimation (Yang, Wu & Sun; shipped weights "region-cpu").

    `jaxdeblur.select_region(image, size).box`, imported on first use.
    """
    from jaxdeblur.models.region.inference import cnn_window as select

    return select(image, size)


REGION_SELECTORS: dict[str, Selector] = {"auto": most_textured_window, "cnn": cnn_window}


def register_region_selector(name: str, selector: Selector) -> None:
    """Makes `selector(image, (h, w)) -> (x, y, w, h)` available as region=name."""
    if not name or not isinstance(name, str):
        raise ValueError(f"a selector needs a non-empty name, got {name!r}")
    REGION_SELECTORS[name] = selector


def parse_region(text: str) -> str | Box:
    """A command-line region: "x,y,w,h" (pixels) or a selector name ("auto")."""
    text = text.strip()
    parts = text.split(",")
    if len(parts) == 1:
        return text
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--region must be x,y,w,h in pixels (e.g. 100,200,256,256) or one of "
                         f"{sorted(REGION_SELECTORS)}, got {text!r}") from None
    return x, y, w, h


def resolve_region(image: np.ndarray, region, *, kernel_size: tuple[int, int], side: int = AUTO_REGION_SIDE) -> Box:
    """A checked (x, y, w, h) inside `image` ((H, W) or (H, W, C)) that holds the kernel.

    region: a box (x, y, w, h), or a selector name; a selector gets a square
    window of `side` (clamped to the image, at least twice the kernel).
    """
    rows, cols = np.shape(image)[:2]
    if isinstance(region, str):
        if region not in REGION_SELECTORS:
            raise ValueError(f"unknown region selector {region!r}; choose a box (x, y, w, h) or one of "
                             f"{sorted(REGION_SELECTORS)}")
        wanted = max(side, 2 * max(kernel_size))
        box = REGION_SELECTORS[region](image, (min(wanted, rows), min(wanted, cols)))
    else:
        box = region
    if (not isinstance(box, (tuple, list)) or len(box) != 4
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in box)):
        raise ValueError(f"region must be (x, y, w, h) in whole pixels or a selector name, got {region!r}")
    x, y, w, h = (int(v) for v in box)
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > cols or y + h > rows:
        raise ValueError(f"region (x={x}, y={y}, w={w}, h={h}) does not lie inside the image ({cols}x{rows} pixels)")
    if h < kernel_size[0] or w < kernel_size[1]:
        raise ValueError(f"region {w}x{h} is smaller than the kernel {kernel_size[1]}x{kernel_size[0]}")
    return x, y, w, h


__all__ = ["AUTO_REGION_SIDE", "REGION_SELECTORS", "cnn_window", "most_textured_window", "register_region_selector",
           "parse_region", "resolve_region"]
