"""The denoiser's configuration: network size, noise levels, data and training length.

Presets (each derived from `PAPER` with `dataclasses.replace`):

- ``"paper"``: DRUNet's recipe scaled to a ~1 M-parameter net (Zhang et al.
  2021 train a 32 M DRUNet, widths 64-512 with 4 blocks, on 8,694 images,
  128 px patches, batch 16, Adam 1e-4 halved every 100k steps, L1 loss, noise
  std uniform in [0, 50] / 255): widths (32, 64, 128, 256), 2 blocks, 128 px
  patches, batch 16, 200k steps (accelerators).
- ``"cpu"``: widths (16, 32, 64, 128), one block per level (0.8 M
  parameters), 64 px patches of train400, batch 16, Adam 1e-3 with cosine
  decay, meant to train in under an hour on 2 CPU cores.
- ``"tiny"``: for tests (seconds).
"""

from __future__ import annotations

import dataclasses

from jaxdeblur.train.task import TrainSettings


@dataclasses.dataclass(frozen=True)
class DenoiserConfig:
    """Every number of a denoiser training (frozen, hashable).

    Attributes:
      channels: image channels (1: gray; colour images are denoised channel by channel).
      widths, blocks: the network (`jaxdeblur.nets.denoiser.Denoiser`).
      sigma_max: training noise std drawn per image uniformly in [0, sigma_max] ([0, 1] units).
      eval_sigmas: noise stds of the validation set (each a metric "psnr_<255 sigma>").
      crop: side of the training patches in pixels (a multiple of 2^(len(widths) - 1)).
      lr, lr_min: Adam's peak learning rate and the end of its cosine decay.
      held_out: images of the training folder held out for validation.
      eval_batch_size, eval_batches: the validation set (centre crops, noise drawn once by eval_seed).
      train: the trainer's settings.
    """

    channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: int = 2
    sigma_max: float = 50.0 / 255.0
    eval_sigmas: tuple[float, ...] = (15.0 / 255.0, 25.0 / 255.0, 50.0 / 255.0)
    crop: int = 128
    lr: float = 1e-4
    lr_min: float = 1e-6
    held_out: int = 16
    eval_batch_size: int = 8
    eval_batches: int = 2
    eval_seed: int = 1234
    train: TrainSettings = TrainSettings(steps=200_000, batch_size=16, eval_every=5000, checkpoint_every=5000,
                                         log_every=100)

    def __post_init__(self):
        if self.crop % 2 ** (len(self.widths) - 1):
            raise ValueError(f"crop {self.crop} must be a multiple of 2^(levels - 1) = {2 ** (len(self.widths) - 1)}")
        if not 0 < self.lr_min <= self.lr:
            raise ValueError(f"need 0 < lr_min <= lr, got lr={self.lr}, lr_min={self.lr_min}")
        if not 0 < self.sigma_max <= 1 or not self.eval_sigmas:
            raise ValueError(f"need 0 < sigma_max <= 1 and some eval_sigmas, got {self.sigma_max}, {self.eval_sigmas}")


PAPER = DenoiserConfig()

CPU = dataclasses.replace(
    PAPER, widths=(16, 32, 64, 128), blocks=1, crop=64, lr=1e-3, lr_min=1e-5, held_out=16, eval_batch_size=16,
    eval_batches=1,
    train=TrainSettings(steps=6000, batch_size=16, eval_every=500, checkpoint_every=250, log_every=50))

TINY = dataclasses.replace(
    CPU, widths=(4, 8), crop=16, held_out=2, eval_batch_size=2, eval_batches=1,
    train=TrainSettings(steps=4, batch_size=2, eval_every=2, checkpoint_every=2, log_every=1))

PRESETS = {"paper": PAPER, "cpu": CPU, "tiny": TINY}
