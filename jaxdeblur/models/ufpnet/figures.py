"""Figures of UFPNet results: kernels drawn on a grid over the image, and the sigma map."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxdeblur.viz import save_figure  # noqa: E402


def grid_points(size: tuple[int, int], grid: tuple[int, int]) -> list[tuple[int, int]]:
    """(row, column) pixel centres of a (gh, gw) grid of cells over an image of `size` (H, W)."""
    (h, w), (gh, gw) = size, grid
    if gh < 1 or gw < 1:
        raise ValueError(f"grid must be two positive ints, got {grid}")
    rows = ((np.arange(gh) + 0.5) * h / gh).astype(int)
    cols = ((np.arange(gw) + 0.5) * w / gw).astype(int)
    return [(int(r), int(c)) for r in rows for c in cols]


def draw_kernels(ax, image, kernels, *, grid: tuple[int, int] = (4, 4), title: str = "") -> None:
    """Shows `image` (H, W) or (H, W, 3) with the kernels of `kernels` (H, W, kh, kw) at the grid's cells.

    Each kernel is scaled to its maximum and drawn, magnified, over its cell
    (bright = large tap), centred on the pixel it belongs to.
    """
    image, kernels = np.asarray(image), np.asarray(kernels)
    h, w = image.shape[:2]
    if kernels.shape[:2] != (h, w) or kernels.ndim != 4:
        raise ValueError(f"kernels must have shape ({h}, {w}, kh, kw) for the image, got {kernels.shape}")
    ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
    half = 0.42 * min(h / grid[0], w / grid[1])
    for r, c in grid_points((h, w), grid):
        k = kernels[r, c]
        ax.imshow(k / max(float(k.max()), 1e-12), cmap="magma", vmin=0, vmax=1,
                  extent=(c - half, c + half, r + half, r - half), interpolation="nearest")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def kernel_field_figure(path: str | Path, blurred, result, *, grid: tuple[int, int] = (4, 4), sharp=None,
                        true_kernels=None, title: str = "") -> Path:
    """Saves a PNG: blurred + estimated kernels | (true kernels) | restored | (sharp) | sigma map.

    Args:
      path: the PNG to write (folders are created).
      blurred: the input image (H, W) or (H, W, 3) in [0, 1].
      result: a `UFPNetResult` of that single image (kernels (H, W, kh, kw), sigma (H, W)).
      grid: (rows, columns) of kernels drawn.
      sharp: optional ground truth image; true_kernels: optional (H, W, kh, kw).
      title: the figure title.

    Returns:
      The path.
    """
    panels = [lambda ax: draw_kernels(ax, blurred, result.kernels, grid=grid, title="blurred + estimated kernels")]
    if true_kernels is not None:
        panels.append(lambda ax: draw_kernels(ax, blurred, true_kernels, grid=grid, title="true kernels"))

    def image_panel(image, name):
        def show(ax):
            ax.imshow(np.clip(np.asarray(image), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
        return show

    panels.append(image_panel(result.restored, "restored"))
    if sharp is not None:
        panels.append(image_panel(sharp, "sharp"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.4))
    for ax, panel in zip(axes, panels):
        panel(ax)
    sigma = np.asarray(result.sigma)
    shown = axes[-1].imshow(sigma, cmap="viridis")
    axes[-1].set_title(f"sigma (mean {float(sigma.mean()):.3f})", fontsize=9)
    axes[-1].axis("off")
    fig.colorbar(shown, ax=axes[-1], fraction=0.046, pad=0.04)
    return save_figure(fig, path, title=title)


__all__ = ["draw_kernels", "grid_points", "kernel_field_figure"]
