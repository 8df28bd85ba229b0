"""The figure of a region choice: the image with the chosen box, and the CNN's score map."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def score_map_figure(path: str | Path, image, choice, *, others: dict | None = None, title: str = "") -> Path:
    """Saves a PNG: the image with the CNN's box (red) and optional other boxes | the score map of every window.

    image: (H, W) or (H, W, 3) in [0, 1]; choice: a `RegionChoice`; others:
    {label: (x, y, w, h)} drawn in other colours (e.g. the gradient-energy window).
    The score map is drawn at the windows' top-left positions (extent in pixels).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    from jaxdeblur.viz import save_figure

    image = np.asarray(image)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    colours = iter(["tab:blue", "tab:green", "tab:orange", "tab:purple"])
    boxes = {"CNN": choice.box, **(others or {})}
    for label, (x, y, w, h) in boxes.items():
        colour = "red" if label == "CNN" else next(colours)
        left.add_patch(patches.Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=2, label=label))
    left.legend(loc="lower right", fontsize=8)
    left.set_title(f"{title} (CNN score {choice.score:.2f})".strip(), fontsize=9)
    left.axis("off")
    ys, xs = choice.ys, choice.xs
    shown = right.imshow(choice.scores, cmap="viridis", vmin=0, vmax=1, origin="upper",
                         extent=(xs[0], xs[-1] + max(1, xs[-1] - xs[-2] if len(xs) > 1 else 1),
                                 ys[-1] + max(1, ys[-1] - ys[-2] if len(ys) > 1 else 1), ys[0]))
    right.plot([choice.box[0]], [choice.box[1]], "r+", markersize=12)
    right.set_title("P(good region) of the window at each top-left corner", fontsize=9)
    right.set_xlabel("x (px)")
    right.set_ylabel("y (px)")
    fig.colorbar(shown, ax=right, fraction=0.046)
    return save_figure(fig, path)


__all__ = ["score_map_figure"]
