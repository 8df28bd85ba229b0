"""The data side of the tasks trained on image folders (nafnet, ufpnet, kernel_space).

`DataConfig` is their data sub-config (a config's field ``data``: ``--set
data.held_out=4``, ``--set data.degrade.crop=32``); `FolderData` turns it into
a task's tile size, (train, validation) sources, training loader, fixed
validation batches and on-device (blurred, sharp) pairs.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.degrade import DegradeConfig
from jaxdeblur.data.pipeline import eval_batches, loader
from jaxdeblur.data.sources import task_sources


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What a model trains and validates on (frozen, hashable).

    Attributes:
      paired: True: train on real pairs (a GoPro-layout folder, random crops
        of side `degrade.crop`, flips / rotations); False: blur sharp images
        on the fly with `degrade`.
      degrade: the synthetic degradation (crop size, kernels, spatially
        varying fields, noise) for unpaired data; for paired data only `crop`
        is used.
      held_out: images of the training folder held out for validation when no
        separate validation folder is given.
      eval_batch_size, eval_batches: the fixed validation set (batches of
        crops, degraded once with `eval_seed`).
      eval_seed: seed of the validation crops' degradation.
    """

    paired: bool = True
    degrade: DegradeConfig = DegradeConfig(crop=256, kernel_size=31)
    held_out: int = 16
    eval_batch_size: int = 8
    eval_batches: int = 2
    eval_seed: int = 1234

    def check_crop(self, levels: int) -> None:
        """Raises ValueError unless the crop is a multiple of 2^levels (a U-Net of `levels` downsamplings)."""
        if self.degrade.crop % 2 ** levels:
            raise ValueError(f"data.degrade.crop {self.degrade.crop} must be a multiple of 2^levels = {2 ** levels}")


def pair(batch: dict, *, host: bool = False) -> dict:
    """{"blurred", "sharp"} of a batch (N, H, W, C) in [0, 1]: the arrays as they are, or as numpy arrays (`host`)."""
    images = {"blurred": batch["blurred"], "sharp": batch["sharp"]}
    return {k: np.asarray(v) for k, v in images.items()} if host else images


class FolderData:
    """The data methods of a frozen-dataclass `Task` with `config` (a config with channels, a `DataConfig` as
    `data` and `train.batch_size`), `data` and `val_data` (folders, or None: scikit-image's photos): tile size,
    sources, `train_loader`, `eval_batches` and `prepare` of (blurred, sharp) pairs.
    """

    def train_loader(self, seed: int):
        """The training loader of host tiles (`jaxdeblur.data.pipeline.loader`)."""
        return loader(self._sources()[0], batch_size=self.config.train.batch_size, tile=self._tile(), seed=seed)

    def eval_batches(self) -> list[dict]:
        """The fixed validation batches: host pairs, real ones or degraded once with `data.eval_seed`."""
        d = self.config.data
        tiles = eval_batches(self._sources()[1], batch_size=d.eval_batch_size, tile=self._tile(),
                             num_batches=d.eval_batches)
        if d.paired:
            return [pair(b, host=True) for b in tiles]
        keys = jax.random.split(jax.random.key(d.eval_seed), len(tiles))
        return [pair(degradation.degrade(k, b["sharp"], d.degrade), host=True) for k, b in zip(keys, tiles)]

    def prepare(self, key: jax.Array, batch: dict) -> dict:
        """On device: a training batch's pairs, real ones augmented (flips / rotations) or sharp tiles degraded."""
        if self.config.data.paired:
            return pair(degradation.augment(key, pair(batch)))
        return pair(degradation.degrade(key, batch["sharp"], self.config.data.degrade))

    def _tile(self) -> int:
        """The side in pixels of a host tile: the crop of a pair, or what the on-device degradation needs."""
        d = self.config.data
        return d.degrade.crop if d.paired else degradation.tile_size(d.degrade)

    def _sources(self):
        """(train, validation) `Source`s: gray or RGB by the config's channels (see `task_sources`)."""
        cfg = self.config
        mode = "gray" if cfg.channels == 1 else "rgb"
        return task_sources(self.data, self.val_data, paired=cfg.data.paired, mode=mode, held_out=cfg.data.held_out)
