"""The denoiser's training task for the one trainer (`jaxdeblur.train`): noisy patches made on device, L1 loss."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.pipeline import eval_batches, loader
from jaxdeblur.data.sources import SamplePhotos, task_sources
from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models.denoiser.config import DenoiserConfig
from jaxdeblur.nets.denoiser import Denoiser
from jaxdeblur.train.task import Task


def build_network(config: DenoiserConfig, rngs: nnx.Rngs) -> Denoiser:
    """The denoiser of `config`, freshly initialised."""
    return Denoiser(config.channels, config.widths, config.blocks, rngs=rngs)


def add_noise(key: jax.Array, sharp: np.ndarray, sigmas) -> dict:
    """{"sharp", "noisy" (N, S, H, W, C), "sigma" (S,)}: `sharp` (N, H, W, C) plus white Gaussian noise of each std."""
    sigmas = jnp.asarray(sigmas, jnp.float32)
    noise = jax.random.normal(key, (sharp.shape[0], sigmas.shape[0], *sharp.shape[1:]))
    noisy = jnp.asarray(sharp)[:, None] + sigmas[None, :, None, None, None] * noise
    return {"sharp": np.asarray(sharp), "noisy": np.asarray(noisy)}


@dataclasses.dataclass(frozen=True)
class DenoiserTask(Task):
    """Trains a `Denoiser` on clean patches with noise of a random std per patch.

    Attributes:
      config: the `DenoiserConfig`.
      data: a folder of clean images (e.g. train400), or None for the photos bundled with scikit-image.
      val_data: the validation folder; None holds out the last `config.held_out` images of `data`.
    """

    config: DenoiserConfig
    data: str | None = None
    val_data: str | None = None
    name: str = "denoiser"
    best_metric: tuple[str, str] = ("psnr", "max")

    def _sources(self):
        mode = "gray" if self.config.channels == 1 else "rgb"
        return task_sources(self.data, self.val_data, paired=False, mode=mode, held_out=self.config.held_out)

    def init_model(self, rngs: nnx.Rngs) -> Denoiser:
        return build_network(self.config, rngs)

    def optimizer(self) -> optax.GradientTransformation:
        cfg = self.config
        return optax.adam(optax.cosine_decay_schedule(cfg.lr, cfg.train.steps, alpha=cfg.lr_min / cfg.lr))

    def train_loader(self, seed: int):
        return loader(self._sources()[0], batch_size=self.config.train.batch_size, tile=self.config.crop, seed=seed)

    def eval_batches(self) -> list[dict]:
        cfg = self.config
        tiles = eval_batches(self._sources()[1], batch_size=cfg.eval_batch_size, tile=cfg.crop,
                             num_batches=cfg.eval_batches)
        keys = jax.random.split(jax.random.key(cfg.eval_seed), len(tiles))
        return [add_noise(k, b["sharp"], cfg.eval_sigmas) for k, b in zip(keys, tiles)]

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        k_aug, k_sigma, k_noise = jax.random.split(key, 3)
        sharp = degradation.augment(k_aug, {"sharp": batch["sharp"]})["sharp"]
        sigma = jax.random.uniform(k_sigma, (sharp.shape[0],), maxval=self.config.sigma_max)
        noisy = sharp + sigma[:, None, None, None] * jax.random.normal(k_noise, sharp.shape)
        return {"sharp": sharp, "noisy": noisy, "sigma": sigma}

    def loss(self, model: Denoiser, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """DRUNet's L1 loss: the mean absolute error of the denoised patches ([0, 1] units)."""
        out = model(batch["noisy"], batch["sigma"])
        return jnp.mean(jnp.abs(out - batch["sharp"])), {"psnr": jnp.mean(psnr_per_image(out, batch["sharp"]))}

    def evaluate(self, model: Denoiser, batch: dict) -> dict:
        """PSNR (dB) of the clamped output at each validation std ("psnr_<std x 255>"), and their mean "psnr"."""
        metrics = {}
        for s, sigma in enumerate(self.config.eval_sigmas):
            noisy = batch["noisy"][:, s]
            out = jnp.clip(model(noisy, jnp.full((noisy.shape[0],), sigma)), 0.0, 1.0)
            metrics[f"psnr_{round(sigma * 255)}"] = jnp.mean(psnr_per_image(out, batch["sharp"]))
        metrics["psnr"] = sum(metrics.values()) / len(metrics)
        return metrics


CHECK_PHOTOS = ("camera", "astronaut")
CHECK_SEED = 7
CHECK_SIGMA = 25.0 / 255.0


def check_metrics(denoiser, config: DenoiserConfig) -> dict:
    """{"check_psnr", "check_psnr_input"}: PSNR (dB) of `denoiser(noisy, sigma)` and of the noisy input on two
    128 px scikit-image photos (centre tiles of side `config.crop`) with noise std 25/255 drawn by CHECK_SEED."""
    mode = "gray" if config.channels == 1 else "rgb"
    photos = SamplePhotos(CHECK_PHOTOS, mode=mode, size=max(128, config.crop))
    (tiles,) = eval_batches(photos, batch_size=len(CHECK_PHOTOS), tile=config.crop)
    pair = add_noise(jax.random.key(CHECK_SEED), tiles["sharp"], (CHECK_SIGMA,))
    noisy = pair["noisy"][:, 0]
    out = jnp.asarray(denoiser(noisy, CHECK_SIGMA))
    return {"check_psnr": float(jnp.mean(psnr_per_image(out, pair["sharp"]))),
            "check_psnr_input": float(jnp.mean(psnr_per_image(jnp.clip(noisy, 0, 1), pair["sharp"])))}
