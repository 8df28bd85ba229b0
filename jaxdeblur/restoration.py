"""Deblurring with a trained network: `restore(image, model=...)` and the `jaxdeblur restore` command.

    from jaxdeblur import restore
    sharp = restore(blurred)                          # the shipped CPU NAFNet, any (H, W) / (H, W, 3)
    sharp = restore(blurred, model="nafnet-cpu")

The command writes, per input, <stem>_restored.png (the input's mode: grey
stays grey, colour stays colour), <stem>_figure.png (before / after) and
<stem>.json, through `jaxdeblur.outputs` (unique names, no overwrite without
--overwrite, atomic files). A model that also estimates a kernel field
(UFPNet: `--model ufpnet-cpu`) adds <stem>_kernels.png: its per-pixel kernels
drawn on a grid over the input, the restoration and the uncertainty (sigma)
map. In Python, `jaxdeblur.models.load("ufpnet-cpu")(image)` returns the field
itself (`UFPNetResult.kernels`, `.sigma`).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import List

import numpy as np
import typer

DEFAULT_MODEL = "nafnet-cpu"
RESTORE_FILES = {"restored": "{stem}_restored.png", "figure": "{stem}_figure.png", "json": "{stem}.json"}
KERNEL_FIELD_FILE = {"kernels": "{stem}_kernels.png"}
WHAT_EACH_FILE_IS = {"restored": "the network's restoration of the input",
                     "figure": "the input beside its restoration",
                     "json": "the model, its manifest (training data, steps, metrics) and timings",
                     "kernels": "the estimated per-pixel kernels on a grid over the input, and the sigma map"}


@functools.lru_cache(maxsize=4)
def _pretrained(model: str):
    from jaxdeblur.models import load

    return load(model)


def restore(image, *, model: str = DEFAULT_MODEL) -> np.ndarray:
    """The trained `model`'s restoration of `image` ((H, W) or (H, W, C), float in [0, 1]): the same shape.

    `model` is a shipped model name (`jaxdeblur.models.available()`); it is
    loaded once and kept. A model whose inference returns more than an image
    (UFPNet: a kernel field) has the image in `.restored`; this returns the image.
    """
    return _restoration(_pretrained(model)(np.asarray(image, np.float32)))


def _restoration(out) -> np.ndarray:
    """The image of a model's output: the output itself, or its `.restored` (models that return more)."""
    return np.asarray(getattr(out, "restored", out))


def restore_command(
    inputs: List[Path] = typer.Argument(..., help="Blurred image files."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    model: str = typer.Option(DEFAULT_MODEL, help="Shipped model (see `jaxdeblur.models.available()`)."),
    overwrite: bool = typer.Option(False, help="Replace results already in OUT."),
):
    """Restore INPUT images with a trained network; writes the restored image, a figure and JSON per input."""
    from jaxdeblur import outputs
    from jaxdeblur.io import load_image

    pretrained = _pretrained(model)
    field = getattr(pretrained.fn, "estimates_kernels", False)
    plans = outputs.plan_outputs(inputs, out, files={**RESTORE_FILES, **(KERNEL_FIELD_FILE if field else {})})
    outputs.check_writable(plans, overwrite=overwrite)
    images = [load_image(p, mode="auto") for p in inputs]  # every file read (and checked) before any work
    for plan, image in zip(plans, images):
        if plan.renamed:
            typer.echo(f"{plan.source} -> {plan.stem}_* (another input has the same name)", err=True)
        t0 = time.perf_counter()
        result = pretrained(image)
        restored = _restoration(result)
        seconds = time.perf_counter() - t0
        paths = plan.paths
        outputs.write_image(paths["restored"], restored)
        if field:
            from jaxdeblur.models.ufpnet.figures import kernel_field_figure

            with outputs.atomic_path(paths["kernels"]) as tmp:
                kernel_field_figure(tmp, image, result, title=f"{plan.stem}: {model}")
        outputs.write_before_after(paths["figure"], image, restored, title=f"{plan.stem}: {model}")
        outputs.write_json(paths["json"], {
            "input": str(plan.source), "model": model, "shape": list(image.shape), "seconds": round(seconds, 3),
            "files": {k: {"path": p.name, "is": WHAT_EACH_FILE_IS[k]} for k, p in paths.items()},
            "manifest": {k: v for k, v in pretrained.manifest.items() if k != "files"}})
        typer.echo(f"{plan.source}: {paths['restored']} ({seconds:.1f} s)")
