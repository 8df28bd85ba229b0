"""Blur transfer: `transfer_blur(sharp_a, blurred_a, sharp_b)` (the `jaxdeblur transfer` command: `jaxdeblur.cli`).

    from jaxdeblur import transfer_blur
    blurred_b = transfer_blur(sharp_a, blurred_a, sharp_b)    # the shipped kernel_space-cpu weights

The blur of a pair (sharp_a, blurred_a), uniform or spatially varying, is
encoded by the learned kernel extractor G and applied to other sharp images
by the blur operator F (Tran et al. 2021, `jaxdeblur.models.kernel_space`).

The command (`jaxdeblur.cli.models.transfer_command`) reads one pair (SHARP_A, BLURRED_A) and any number of sharp
images, and writes, per sharp image, <stem>_transferred.png (in the image's
mode: grey stays grey, colour stays colour), <stem>_figure.png (the image
beside its transferred blur) and <stem>.json, through `jaxdeblur.outputs`
(unique names, no overwrite without --overwrite, atomic files).
"""

from __future__ import annotations

import numpy as np

DEFAULT_WEIGHTS = "kernel_space-cpu"
TRANSFER_FILES = {"transferred": "{stem}_transferred.png", "figure": "{stem}_figure.png", "json": "{stem}.json"}
WHAT_EACH_FILE_IS = {"transferred": "the sharp image blurred with the blur of the pair (SHARP_A, BLURRED_A)",
                     "figure": "the sharp image beside its transferred blur",
                     "json": "the pair, the weights, their manifest and timings"}


def transfer_blur(sharp_a, blurred_a, sharp_b, *, weights=DEFAULT_WEIGHTS) -> np.ndarray:
    """sharp_b blurred like sharp_a was blurred into blurred_a: F(sharp_b, G(sharp_a, blurred_a)).

    Batched: a leading N on all three (pair i -> image i), or on sharp_b
    only (one pair's blur on every image). Any sizes (sharp_b's may differ
    from the pair's) and channels (a gray model, the default, blurs colour
    images channel by channel). The implementation and full reference:
    `jaxdeblur.models.kernel_space.transfer_blur`.

    Args:
      sharp_a: the sharp image of the pair; (H, W), (H, W, C) or (N, H, W, C)
        float in [0, 1], C in (1, 3).
      blurred_a: the same image blurred, same shape.
      sharp_b: the sharp image(s) to blur like the pair.
      weights: a shipped name, a weights folder, or a loaded kernel_space model.

    Returns:
      blurred_b, float32 of sharp_b's shape.

    Raises:
      ValueError (one line, naming the argument): a bad shape, a NaN / inf or a value outside [0, 1].
    """
    from jaxdeblur.models.kernel_space.transfer import transfer_blur as transfer  # noqa: PLC0415 - import on use

    return transfer(sharp_a, blurred_a, sharp_b, weights=weights)


__all__ = ["DEFAULT_WEIGHTS", "TRANSFER_FILES", "transfer_blur"]
