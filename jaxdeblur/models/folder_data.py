"""The data side of the tasks trained on image folders (nafnet, ufpnet, kernel_space).

`DataConfig` is their data sub-config (a config's field ``data``: ``--set
data.held_out=4``, ``--set data.degrade.crop=32``); `FolderData` turns it into
the tile size and the (train, validation) sources of a task.
"""

from __future__ import annotations

import dataclasses

from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.degrade import DegradeConfig
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


class FolderData:
    """Tile size and (train, validation) sources of a frozen-dataclass task with `config` (a config with
    channels and a `DataConfig` as `data`), `data` and `val_data` (folders, or None: scikit-image's photos).
    """

    def _tile(self) -> int:
        """The side in pixels of a host tile: the crop of a pair, or what the on-device degradation needs."""
        d = self.config.data
        return d.degrade.crop if d.paired else degradation.tile_size(d.degrade)

    def _sources(self):
        """(train, validation) `Source`s: gray or RGB by the config's channels (see `task_sources`)."""
        cfg = self.config
        mode = "gray" if cfg.channels == 1 else "rgb"
        return task_sources(self.data, self.val_data, paired=cfg.data.paired, mode=mode, held_out=cfg.data.held_out)
