"""NAFNet's training task for the one trainer (`jaxdeblur.train`): data, PSNR loss, AdamW + cosine."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.pipeline import eval_batches
from jaxdeblur.data.sources import SamplePhotos
from jaxdeblur.metrics import psnr_per_image
from jaxdeblur.models.folder_data import FolderData
from jaxdeblur.models.folder_data import pair as folder_pair
from jaxdeblur.models.nafnet.config import NAFNetConfig
from jaxdeblur.nets.nafnet import NAFNet, restore
from jaxdeblur.train.task import Task


def build_network(config: NAFNetConfig, rngs: nnx.Rngs) -> NAFNet:
    """The NAFNet of `config`, freshly initialised."""
    return NAFNet(config.channels, config.width, config.enc_blocks, config.middle_blocks, config.dec_blocks,
                  rngs=rngs)


@dataclasses.dataclass(frozen=True)
class NAFNetTask(FolderData, Task):
    """Trains a NAFNet to restore blurred images.

    Attributes:
      config: the `NAFNetConfig`.
      data: the training folder: sharp images (blurred on the fly), or a
        GoPro-layout folder of pairs when `config.data.paired`; None uses the
        photos bundled with scikit-image (a demonstration, no data needed).
      val_data: the validation folder (same layout); None holds out the last
        `config.data.held_out` images of `data`.
    """

    config: NAFNetConfig
    data: str | None = None
    val_data: str | None = None
    name: str = "nafnet"
    best_metric: tuple[str, str] = ("psnr", "max")

    def init_model(self, rngs: nnx.Rngs) -> NAFNet:
        """A fresh NAFNet, or (config.init_weights) one holding those weights."""
        model = build_network(self.config, rngs)
        if self.config.init_weights is not None:
            nnx.update(model, nnx.state(start_weights(self.config).model))
        return model

    def optimizer(self) -> optax.GradientTransformation:
        return self.config.optim.make(self.config.train.steps)

    def loss(self, model: NAFNet, batch: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """NAFNet's PSNR loss: the batch mean of -PSNR(output, sharp) (dB, unclamped output)."""
        psnr = psnr_per_image(model(batch["blurred"]), batch["sharp"])
        return -jnp.mean(psnr), {"psnr": jnp.mean(psnr)}

    def evaluate(self, model: NAFNet, batch: dict) -> dict:
        """Mean PSNR (dB) of the clamped restoration and of the blurred input, against the sharp crops."""
        restored = restore(model, batch["blurred"])
        return {"psnr": jnp.mean(psnr_per_image(restored, batch["sharp"])),
                "psnr_input": jnp.mean(psnr_per_image(batch["blurred"], batch["sharp"]))}


NETWORK_FIELDS = ("channels", "width", "enc_blocks", "middle_blocks", "dec_blocks")


def start_weights(config: NAFNetConfig):
    """The `Pretrained` NAFNet of `config.init_weights` (loaded once per process).

    Raises:
      ValueError: its network fields differ from `config`'s (it could not start this network).
    """
    from jaxdeblur.models.weights import load_weights

    with jax.ensure_compile_time_eval():  # init_model runs inside jit / eval_shape: restore concrete arrays
        pretrained = load_weights(config.init_weights, model="nafnet")
    differ = {f: (getattr(pretrained.config, f), getattr(config, f)) for f in NETWORK_FIELDS
              if getattr(pretrained.config, f) != getattr(config, f)}
    if differ:
        raise ValueError(f"init_weights {config.init_weights!r} is another network: (its, this config's) {differ}")
    return pretrained


CHECK_PHOTOS = ("camera", "astronaut")
CHECK_SEED = 7


def check_pairs(config: NAFNetConfig) -> dict:
    """A fixed, data-free check set: two scikit-image photos degraded as in training, with a fixed key.

    Returns {"blurred", "sharp"}: (2, crop, crop, C) float32 host arrays
    (centre tiles of the 128 px photos, `config.data.degrade` with CHECK_SEED).
    Exports store the model's PSNR on it, and tests recompute it after `load`.
    """
    mode = "gray" if config.channels == 1 else "rgb"
    tile = degradation.tile_size(config.data.degrade)
    photos = SamplePhotos(CHECK_PHOTOS, mode=mode, size=max(128, tile))
    (tiles,) = eval_batches(photos, batch_size=len(CHECK_PHOTOS), tile=tile)
    return folder_pair(degradation.degrade(jax.random.key(CHECK_SEED), tiles["sharp"], config.data.degrade), host=True)


def check_metrics(restorer, config: NAFNetConfig) -> dict:
    """{"check_psnr", "check_psnr_input"}: mean PSNR (dB) on `check_pairs` of `restorer(blurred)` and of the input."""
    pairs = check_pairs(config)
    restored = jnp.asarray(restorer(pairs["blurred"]))
    return {"check_psnr": float(jnp.mean(psnr_per_image(restored, pairs["sharp"]))),
            "check_psnr_input": float(jnp.mean(psnr_per_image(pairs["blurred"], pairs["sharp"])))}
