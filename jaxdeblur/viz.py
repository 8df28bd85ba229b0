"""Figures people look at: before / after / kernel, loss curves, kernel variance."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _show(ax, image, title, cmap="gray"):
    image = np.asarray(image)
    ax.imshow(np.clip(image, 0, 1) if image.ndim == 3 else image, cmap=cmap,
              vmin=0 if image.ndim == 2 and cmap == "gray" else None, vmax=1 if image.ndim == 2 and cmap == "gray" else None)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def result_figure(path: str | Path, blurred, restored, kernel, *, history: dict | None = None, sharp=None,
                  true_kernel=None, kernel_variance=None, title: str = "") -> Path:
    """Saves a PNG: blurred | restored | (sharp) | kernel | (true kernel) | (kernel variance) | (losses).

    Images (H, W) or (H, W, 3) in [0, 1]; kernels (kh, kw). Returns the path.
    """
    panels = [("blurred", blurred, "gray"), ("restored", restored, "gray")]
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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
