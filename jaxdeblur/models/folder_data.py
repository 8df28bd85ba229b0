"""`FolderData`: the data side of the tasks trained on image folders (nafnet, ufpnet, kernel_space)."""

from __future__ import annotations

from jaxdeblur.data import degrade as degradation
from jaxdeblur.data.sources import task_sources


class FolderData:
    """Tile size and (train, validation) sources of a frozen-dataclass task with `config` (a config with
    channels, paired, held_out and degrade), `data` and `val_data` (folders, or None: scikit-image's photos).
    """

    def _tile(self) -> int:
        """The side in pixels of a host tile: the crop of a pair, or what the on-device degradation needs."""
        cfg = self.config
        return cfg.degrade.crop if cfg.paired else degradation.tile_size(cfg.degrade)

    def _sources(self):
        """(train, validation) `Source`s: gray or RGB by the config's channels (see `task_sources`)."""
        cfg = self.config
        mode = "gray" if cfg.channels == 1 else "rgb"
        return task_sources(self.data, self.val_data, paired=cfg.paired, mode=mode, held_out=cfg.held_out)
