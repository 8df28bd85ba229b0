"""Deblurring with a trained network: `restore(image, model=...)` (the `jaxdeblur restore` command: `jaxdeblur.cli`).

    from jaxdeblur import restore
    sharp = restore(blurred)                          # the shipped nafnet-longer, any (H, W) / (H, W, 3)
    sharp = restore(blurred, model="nafnet-cpu")      # the one-hour CPU NAFNet that nafnet-long(er) went on from

The default is the best measured network (experiments/results/real_blur_check_cpu.md): nafnet-longer, +1.07 dB
on the real-like blur check and +2.04 dB on set12 motion blur (nafnet-long: +1.05 / +1.79, nafnet-cpu: +0.89 /
+1.45).

The command (`jaxdeblur.cli.models.restore_command`) writes, per input, <stem>_restored.png (the input's mode: grey
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

import numpy as np

DEFAULT_MODEL = "nafnet-longer"
RESTORE_FILES = {"restored": "{stem}_restored.png", "figure": "{stem}_figure.png", "json": "{stem}.json"}
KERNEL_FIELD_FILE = {"kernels": "{stem}_kernels.png"}
WHAT_EACH_FILE_IS = {"restored": "the network's restoration of the input",
                     "figure": "the input beside its restoration",
                     "json": "the model, its manifest (training data, steps, metrics) and timings",
                     "kernels": "the estimated per-pixel kernels on a grid over the input, and the sigma map"}


@functools.lru_cache(maxsize=4)
def pretrained_model(model: str):
    """The shipped model `model` loaded (`jaxdeblur.models.load`), kept for the next calls (`clear_caches`).

    Args:
      model: a shipped model name (`jaxdeblur.models.available()`).

    Returns:
      the loaded model: callable on an image, with `.fn` and `.manifest`.
    """
    from jaxdeblur.models import load

    return load(model)


def restore(image, *, model: str = DEFAULT_MODEL) -> np.ndarray:
    """The trained `model`'s restoration of `image`.

    A model whose inference returns more than an image (UFPNet: a kernel
    field) has the image in `.restored`; this returns the image.

    Args:
      image: (H, W) or (H, W, C), float in [0, 1].
      model: a shipped model name (`jaxdeblur.models.available()`); loaded
        once and kept (`pretrained_model`).

    Returns:
      the restored image, float32 of `image`'s shape.
    """
    return restored_image(pretrained_model(model)(np.asarray(image, np.float32)))


def restored_image(out) -> np.ndarray:
    """The image of a model's output.

    Args:
      out: what a loaded model returned: an image, or a result with `.restored` (models that return more).

    Returns:
      the image as a NumPy array.
    """
    return np.asarray(getattr(out, "restored", out))


__all__ = ["DEFAULT_MODEL", "restore", "pretrained_model", "restored_image"]
