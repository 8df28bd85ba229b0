"""Deblurring with a trained network: `restore(image, model=...)` and the `jaxdeblur restore` command.

    from jaxdeblur import restore
    sharp = restore(blurred)                          # the shipped CPU NAFNet, any (H, W) / (H, W, 3)
    sharp = restore(blurred, model="nafnet-cpu")

The command writes, per input, <stem>_restored.png (the input's mode: grey
stays grey, colour stays colour), <stem>_figure.png (before / after) and
<stem>.json, through `jaxdeblur.outputs` (unique names, no overwrite without
--overwrite, atomic files).
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
WHAT_EACH_FILE_IS = {"restored": "the network's restoration of the input",
                     "figure": "the input beside its restoration",
                     "json": "the model, its manifest (training data, steps, metrics) and timings"}


@functools.lru_cache(maxsize=4)
def _pretrained(model: str):
    from jaxdeblur.models import load

    return load(model)


def restore(image, *, model: str = DEFAULT_MODEL) -> np.ndarray:
    """The trained `model`'s restoration of `image` ((H, W) or (H, W, C), float in [0, 1]): the same shape.

    `model` is a shipped model name (`jaxdeblur.models.available()`); it is
    loaded once and kept. A model whose inference returns more than an image
    (e.g. a kernel field) has it in `.image`; this returns the image.
    """
    out = _pretrained(model)(np.asarray(image, np.float32))
    return np.asarray(getattr(out, "image", out))


def restore_command(
    inputs: List[Path] = typer.Argument(..., help="Blurred image files."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    model: str = typer.Option(DEFAULT_MODEL, help="Shipped model (see `jaxdeblur.models.available()`)."),
    overwrite: bool = typer.Option(False, help="Replace results already in OUT."),
):
    """Restore INPUT images with a trained network; writes the restored image, a figure and JSON per input."""
    from jaxdeblur import outputs
    from jaxdeblur.io import load_image

    plans = outputs.plan_outputs(inputs, out, files=RESTORE_FILES)
    outputs.check_writable(plans, overwrite=overwrite)
    images = [load_image(p, mode="auto") for p in inputs]  # every file read (and checked) before any work
    pretrained = _pretrained(model)
    for plan, image in zip(plans, images):
        if plan.renamed:
            typer.echo(f"{plan.source} -> {plan.stem}_* (another input has the same name)", err=True)
        t0 = time.perf_counter()
        restored = restore(image, model=model)
        seconds = time.perf_counter() - t0
        paths = plan.paths
        outputs.write_image(paths["restored"], restored)
        outputs.write_before_after(paths["figure"], image, restored, title=f"{plan.stem}: {model}")
        outputs.write_json(paths["json"], {
            "input": str(plan.source), "model": model, "shape": list(image.shape), "seconds": round(seconds, 3),
            "files": {k: {"path": p.name, "is": WHAT_EACH_FILE_IS[k]} for k, p in paths.items()},
            "manifest": {k: v for k, v in pretrained.manifest.items() if k != "files"}})
        typer.echo(f"{plan.source}: {paths['restored']} ({seconds:.1f} s)")
