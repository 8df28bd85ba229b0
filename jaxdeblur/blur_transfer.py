"""Blur transfer: `transfer_blur(sharp_a, blurred_a, sharp_b)` and the `jaxdeblur transfer` command.

    from jaxdeblur import transfer_blur
    blurred_b = transfer_blur(sharp_a, blurred_a, sharp_b)    # the shipped kernel_space-cpu weights

The blur of a pair (sharp_a, blurred_a), uniform or spatially varying, is
encoded by the learned kernel extractor G and applied to other sharp images
by the blur operator F (Tran et al. 2021, `jaxdeblur.models.kernel_space`).

The command reads one pair (SHARP_A, BLURRED_A) and any number of sharp
images, and writes, per sharp image, <stem>_transferred.png (in the image's
mode: grey stays grey, colour stays colour), <stem>_figure.png (the image
beside its transferred blur) and <stem>.json, through `jaxdeblur.outputs`
(unique names, no overwrite without --overwrite, atomic files).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

import numpy as np
import typer

DEFAULT_WEIGHTS = "kernel_space-cpu"
TRANSFER_FILES = {"transferred": "{stem}_transferred.png", "figure": "{stem}_figure.png", "json": "{stem}.json"}
WHAT_EACH_FILE_IS = {"transferred": "the sharp image blurred with the blur of the pair (SHARP_A, BLURRED_A)",
                     "figure": "the sharp image beside its transferred blur",
                     "json": "the pair, the weights, their manifest and timings"}


def transfer_blur(sharp_a, blurred_a, sharp_b, *, weights=DEFAULT_WEIGHTS) -> np.ndarray:
    """sharp_b blurred like sharp_a was blurred into blurred_a: F(sharp_b, G(sharp_a, blurred_a)).

    Images are float in [0, 1]: (H, W), (H, W, C) or (N, H, W, C) with C in
    (1, 3). Batched: a leading N on all three (pair i -> image i), or on
    sharp_b only (one pair's blur on every image). Any sizes (sharp_b's may
    differ from the pair's) and channels (a gray model, the default, blurs
    colour images channel by channel). `weights`: a shipped name, a weights
    folder, or a loaded kernel_space model. Returns blurred_b, float32 of
    sharp_b's shape. A bad shape, a NaN / inf or a value outside [0, 1] is a
    one-line ValueError naming the argument.

    The implementation and full reference: `jaxdeblur.models.kernel_space.transfer_blur`.
    """
    from jaxdeblur.models.kernel_space.transfer import transfer_blur as transfer  # noqa: PLC0415 - import on use

    return transfer(sharp_a, blurred_a, sharp_b, weights=weights)


def transfer_command(
    sharp_a: Path = typer.Argument(..., help="Sharp image of the pair whose blur is transferred."),
    blurred_a: Path = typer.Argument(..., help="The same image, blurred (same size as SHARP_A)."),
    sharp_b: List[Path] = typer.Argument(..., help="Sharp images to blur like the pair."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    weights: str = typer.Option(DEFAULT_WEIGHTS, help="Kernel-space weights: a shipped name or a weights folder."),
    overwrite: bool = typer.Option(False, help="Replace results already in OUT."),
):
    """Blur SHARP_B images like BLURRED_A blurs SHARP_A (learned blur kernel space); writes image, figure, JSON."""
    from jaxdeblur import outputs
    from jaxdeblur.io import load_image
    from jaxdeblur.models.kernel_space.transfer import load_weights

    plans = outputs.plan_outputs(sharp_b, out, files=TRANSFER_FILES)
    outputs.check_writable(plans, overwrite=overwrite)
    pair = [load_image(p, mode="auto") for p in (sharp_a, blurred_a)]
    images = [load_image(p, mode="auto") for p in sharp_b]  # every file read (and checked) before any work
    pretrained = load_weights(weights)
    for plan, image in zip(plans, images):
        if plan.renamed:
            typer.echo(f"{plan.source} -> {plan.stem}_* (another input has the same name)", err=True)
        t0 = time.perf_counter()
        transferred = transfer_blur(*pair, image, weights=pretrained)
        seconds = time.perf_counter() - t0
        paths = plan.paths
        outputs.write_image(paths["transferred"], transferred)
        outputs.write_before_after(paths["figure"], image, transferred,
                                   title=f"{plan.stem}: the blur of {blurred_a.name}")
        outputs.write_json(paths["json"], {
            "input": str(plan.source), "sharp_a": str(sharp_a), "blurred_a": str(blurred_a),
            "weights": pretrained.name, "shape": list(image.shape), "seconds": round(seconds, 3),
            "files": {k: {"path": p.name, "is": WHAT_EACH_FILE_IS[k]} for k, p in paths.items()},
            "manifest": {k: v for k, v in pretrained.manifest.items() if k != "files"}})
        typer.echo(f"{plan.source}: {paths['transferred']} ({seconds:.1f} s)")


__all__ = ["DEFAULT_WEIGHTS", "TRANSFER_FILES", "transfer_blur", "transfer_command"]
