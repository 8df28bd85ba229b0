"""The blur-kernel-space training task for the one trainer (`jaxdeblur.train`): F and G jointly.

One step (see `jaxdeblur.train.task`): the host loader cuts random sharp
tiles (or real pairs), `prepare` degrades them on device (uniform and
spatially varying motion blur, `jaxdeblur.data.degrade`), and the loss is
the Charbonnier distance between F(sharp, G(sharp, blurred)) and blurred.
Evaluation (fixed held-out pairs) reports, in dB against the blurred crop:
"psnr" of the re-blur (the best-checkpoint metric), "psnr_naive" of the
baseline that convolves the sharp crop with the one uniform kernel fitted to
the pair by least squares, and "psnr_input" of the sharp crop itself (no blur).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur import losses
from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.pipeline import eval_batches
from jaxdeblur.data.sources import SamplePhotos
from jaxdeblur.forward import blur
from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models.folder_data import FolderData
from jaxdeblur.models.kernel_space.config import KernelSpaceConfig
from jaxdeblur.models.kernel_space.transfer import fit_uniform_kernel, naive_transfer, same_blur_pairs
from jaxdeblur.nets.kernel_space import KernelSpace
from jaxdeblur.train.task import Task


def build_network(config: KernelSpaceConfig, rngs: nnx.Rngs) -> KernelSpace:
    """The `KernelSpace` (F and G) of `config`, freshly initialised."""
    return KernelSpace(config.channels, nf=config.nf, front_blocks=config.front_blocks,
                       back_blocks=config.back_blocks, code_dim=config.code_dim,
                       extractor_blocks=config.extractor_blocks, depth=config.depth,
                       feature_downsamples=config.feature_downsamples, all_biases=config.all_biases, rngs=rngs)


def make_optimizer(config: KernelSpaceConfig) -> optax.GradientTransformation:
    """Adam with cosine annealing restarted after each of `config.optim.lr_periods` (fractions of the steps)."""
    return config.optim.make(config.train.steps)


def naive_reblur(sharp: jax.Array, blurred: jax.Array, kernel_size: int) -> jax.Array:
    """The baseline re-blur of pairs (N, H, W, C): sharp convolved with its pair's least-squares uniform kernel."""
    return blur(sharp, fit_uniform_kernel(sharp, blurred, kernel_size=kernel_size), "replicate")


@dataclasses.dataclass(frozen=True)
class KernelSpaceTask(FolderData, Task):
    """Trains the blur operator F and the kernel extractor G jointly (see the module docstring).

    Attributes:
      config: the `KernelSpaceConfig`.
      data: the training folder: sharp images (blurred on the fly), or a
        GoPro-layout folder of pairs when `config.data.paired`; None uses the
        photos bundled with scikit-image (a demonstration, no data needed).
      val_data: the validation folder (same layout); None holds out the last
        `config.data.held_out` images of `data`.
    """

    config: KernelSpaceConfig
    data: str | None = None
    val_data: str | None = None
    name: str = "kernel_space"
    best_metric: tuple[str, str] = ("psnr", "max")

    def init_model(self, rngs: nnx.Rngs) -> KernelSpace:
        return build_network(self.config, rngs)

    def optimizer(self) -> optax.GradientTransformation:
        return make_optimizer(self.config)

    def loss(self, model: KernelSpace, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Charbonnier distance between F(sharp, G(sharp, blurred)) and blurred; also its PSNR (dB)."""
        reblurred = model(batch["sharp"], batch["blurred"])
        loss = losses.charbonnier(reblurred, batch["blurred"], eps=self.config.charbonnier_eps)
        return loss, {"psnr": jnp.mean(psnr_per_image(reblurred, batch["blurred"]))}

    def evaluate(self, model: KernelSpace, batch: dict) -> dict:
        """Mean PSNR (dB) against the blurred crops of the clamped re-blur, the naive baseline and the sharp crop."""
        sharp, blurred = batch["sharp"], batch["blurred"]
        reblurred = jnp.clip(model(sharp, blurred), 0.0, 1.0)
        return {"psnr": jnp.mean(psnr_per_image(reblurred, blurred)),
                "psnr_naive": jnp.mean(psnr_per_image(naive_reblur(sharp, blurred, self.config.naive_kernel_size),
                                                      blurred)),
                "psnr_input": jnp.mean(psnr_per_image(sharp, blurred))}


def make_task(config: KernelSpaceConfig, *, data=None, val_data=None) -> KernelSpaceTask:
    """The training task: `data` a folder of sharp images (or GoPro pairs for a paired config), None for the
    photos bundled with scikit-image; `val_data` a validation folder (None: hold out part of `data`)."""
    return KernelSpaceTask(config, data=None if data is None else str(data),
                           val_data=None if val_data is None else str(val_data))


CHECK_PHOTOS = ("camera", "astronaut", "coffee", "chelsea")
CHECK_SEED = 7


def check_pairs(config: KernelSpaceConfig) -> dict:
    """A fixed, data-free check set: scikit-image photos blurred as in training, for re-blur and transfer.

    Centre tiles of four 128 px photos (at least one tile); pair a is photo i
    degraded by `config.data.degrade` with CHECK_SEED (augmentation off), sharp_b
    is photo i + 1 (cyclically) blurred by the SAME true kernels
    (`transfer.same_blur_pairs`). Returns host arrays {"sharp_a",
    "blurred_a", "sharp_b", "blurred_b": (4, crop, crop, C), "kernel_grid"}.
    """
    mode = "gray" if config.channels == 1 else "rgb"
    tile = degradation.tile_size(config.data.degrade)
    photos = SamplePhotos(CHECK_PHOTOS, mode=mode, size=max(128, tile))
    (tiles,) = eval_batches(photos, batch_size=len(CHECK_PHOTOS), tile=tile)
    sharp = tiles["sharp"]
    pairs = same_blur_pairs(jax.random.key(CHECK_SEED), sharp, np.roll(sharp, 1, axis=0), config.data.degrade)
    return {k: np.asarray(v) for k, v in pairs.items()}


def check_metrics(inference, config: KernelSpaceConfig) -> dict:
    """Mean PSNRs (dB) on `check_pairs` of a `KernelSpaceModel` (as `make_inference` returns) and the baseline.

    {"check_psnr": re-blur F(sharp_a, G(sharp_a, blurred_a)) vs blurred_a,
     "check_psnr_naive": the uniform least-squares kernel's re-blur vs blurred_a,
     "check_transfer_psnr": transfer_blur(sharp_a, blurred_a, sharp_b) vs blurred_b,
     "check_transfer_psnr_naive": naive_transfer(...) vs blurred_b,
     "check_psnr_input": sharp_a vs blurred_a (no blur)}.
    """
    p = check_pairs(config)
    k = config.naive_kernel_size
    mean_psnr = lambda x, y: float(jnp.mean(psnr_per_image(x, y)))  # noqa: E731
    return {"check_psnr": mean_psnr(inference.transfer(p["sharp_a"], p["blurred_a"], p["sharp_a"]), p["blurred_a"]),
            "check_psnr_naive": mean_psnr(naive_reblur(p["sharp_a"], p["blurred_a"], k), p["blurred_a"]),
            "check_transfer_psnr": mean_psnr(inference.transfer(p["sharp_a"], p["blurred_a"], p["sharp_b"]),
                                             p["blurred_b"]),
            "check_transfer_psnr_naive": mean_psnr(naive_transfer(p["sharp_a"], p["blurred_a"], p["sharp_b"],
                                                                  kernel_size=k), p["blurred_b"]),
            "check_psnr_input": mean_psnr(p["sharp_a"], p["blurred_a"])}
