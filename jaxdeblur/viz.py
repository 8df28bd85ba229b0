"""Figures people look at: before / after / kernel, loss curves, kernel variance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


MAX_PANEL_SIDE = 1024  # larger images are subsampled for display (a figure panel is ~330 px wide)


def _show(ax, image, title, cmap="gray"):
    image = np.asarray(image)
    step = -(-max(image.shape[:2]) // MAX_PANEL_SIDE)
    image = image[::step, ::step]
    ax.imshow(np.clip(image, 0, 1) if image.ndim == 3 else image, cmap=cmap,
              vmin=0 if image.ndim == 2 and cmap == "gray" else None, vmax=1 if image.ndim == 2 and cmap == "gray" else None)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def result_figure(path: str | Path, blurred, restored, kernel, *, deconvolved=None, history: dict | None = None,
                  sharp=None, true_kernel=None, kernel_variance=None, region=None, title: str = "",
                  restored_title: str | None = None) -> Path:
    """Saves a PNG: blurred | restored | (deconvolved) | (sharp) | kernel | (true kernel) | (variance) | (losses).

    Images (H, W) or (H, W, 3) in [0, 1]: `restored` is the generator's image
    (of the window `region` = (x, y, w, h) when given), `deconvolved` the
    finishing step's; kernels (kh, kw). restored_title names the `restored` panel (default: the generator's).
    Returns the path.
    """
    generator = restored_title or "generator (DIP)" if region is None else "generator, window {}x{} at ({}, {})".format(
        region[2], region[3], region[0], region[1])
    panels = [("blurred", blurred, "gray"), (generator, restored, "gray")]
    if deconvolved is not None:
        panels.append(("deconvolved with the kernel", deconvolved, "gray"))
    if sharp is not None:
        panels.append(("sharp", sharp, "gray"))
    panels.append(("estimated kernel", np.asarray(kernel) / max(float(np.max(kernel)), 1e-12), "magma"))
    if true_kernel is not None:
        panels.append(("true kernel", np.asarray(true_kernel) / max(float(np.max(true_kernel)), 1e-12), "magma"))
    if kernel_variance is not None:
        kernel_variance = np.asarray(kernel_variance)  # auto-scaled colours: the values are tiny (~1e-6)
        panels.append((f"kernel variance (max {float(np.max(kernel_variance)):.2g})", kernel_variance, "viridis"))
    columns = len(panels) + (history is not None)
    fig, axes = plt.subplots(1, columns, figsize=(3.0 * columns, 3.2))
    for ax, (name, image, cmap) in zip(axes, panels):
        _show(ax, image, name, cmap)
    if history is not None:
        ax = axes[-1]
        for name, values in history.items():
            values = np.asarray(values)
            if np.any(values > 0):
                ax.semilogy(np.arange(1, len(values) + 1), np.maximum(values, 1e-12), label=name, lw=0.8)
        ax.set_xlabel("iteration", fontsize=8)
        ax.set_title("loss", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    return save_figure(fig, path, title=title)


def save_figure(fig, path: str | Path, *, title: str = "") -> Path:
    """Writes `fig` as a PNG at `path` (110 dpi; folders created; optional suptitle), closes it, returns the path."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def before_after_figure(path: str | Path, before, after, *, title: str = "") -> Path:
    """Saves a PNG of two images side by side: the input and its restoration ((H, W) or (H, W, 3) in [0, 1])."""
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    _show(axes[0], before, "input")
    _show(axes[1], after, "restored")
    return save_figure(fig, path, title=title)
