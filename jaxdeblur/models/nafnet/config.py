"""NAFNet's configuration: network size, the NAFNet recipe's optimiser, data and training length.

Presets (each derived from `PAPER` with `dataclasses.replace`):

- ``"paper"``: Chen et al.'s GoPro recipe for width 32 (accelerators): RGB,
  encoder blocks (1, 1, 1, 28), 256 px crops of real blurred/sharp pairs
  (a GoPro-layout folder), batch 32, 200k steps, AdamW lr 1e-3 (weight decay
  1e-3, betas (0.9, 0.9)) with cosine decay to 1e-7, gradient clipping at
  global norm 0.01, PSNR loss.
- ``"cpu"``: a 1.1 M parameter NAFNet (width 16, one block per level) that
  trains in under an hour on a 2-core CPU: gray 64 px crops of sharp images
  (train400) blurred on the fly by random camera-shake kernels (support 19,
  trajectory length 4-18 px) plus 0-2% Gaussian noise, 8-bit quantised.
- ``"rgb"``: the ``"cpu"`` network for colour photos (3 channels; same training
  length, under an hour on 2 cores), trained on degradations like real camera
  shake: half of the crops get a spatially varying field of 3 x 3 motion
  kernels, trajectories of 2-16 px (milder than ``"cpu"``), 0-2% noise, 8-bit
  quantised. Data: train400 (gray, repeated to RGB) plus the scikit-image
  photos (``--data train400:skimage:skimage:skimage:skimage``, see
  `jaxdeblur.data.sources.task_sources`).
  Measured (experiments/results/real_blur_check_cpu.md): it gains LESS on
  colour photos than the gray ``"cpu"`` model run channel by channel (its
  colour training data is 4 photos), so its weights are not shipped.
- ``"shake"``: the ``"cpu"`` model fine-tuned (starting from the shipped
  ``nafnet-cpu``, 3000 more steps at lr 3e-4) on degradations like real
  camera shake: half of the crops get a spatially varying field of 3 x 3
  motion kernels, trajectories of 2-18 px, 0-2% noise, 8-bit. Gray: it
  restores colour photos channel by channel. Measured: no better than
  ``"cpu"`` (+0.88 vs +0.89 dB on the real-blur check, +1.44 vs +1.45 on
  set12), so its weights are not shipped either.
- ``"long"``: the ``"cpu"`` model trained longer (starting from the shipped
  ``nafnet-cpu``: 4000 more steps on the same degradations, 96 px crops, a
  fresh cosine from lr 5e-4; about an hour on 2 cores, resumable): what more
  CPU time buys the same network. Shipped as ``nafnet-long``: 70 min on the
  shared 2-core CPU; real-like blur check +1.05 dB, set12 motion blur
  +1.79 dB (``nafnet-cpu``: +0.89 / +1.45;
  experiments/results/real_blur_check_cpu.md).
- ``"longer"``: ``nafnet-long`` trained 3500 more steps on the same
  degradations at 128 px crops, a fresh cosine from lr 3e-4 (91 min on the
  2-core CPU, resumable). Shipped as ``nafnet-longer``, the default of
  `jaxdeblur.restore`: real-like blur check +1.07 dB, set12 motion blur
  +2.04 dB (better than ``nafnet-long`` on all 12 set12 images).
- ``"tiny"``: for tests (seconds).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from jaxdeblur.data.degrade import DegradeConfig
from jaxdeblur.models.folder_data import DataConfig
from jaxdeblur.models.optim import OptimConfig, moved_fields
from jaxdeblur.train.task import TrainSettings


@dataclasses.dataclass(frozen=True)
class NAFNetConfig:
    """Every number of a NAFNet training (frozen, hashable).

    Attributes:
      channels: image channels the network sees (1 gray, 3 RGB). A gray model
        restores colour images channel by channel.
      width, enc_blocks, middle_blocks, dec_blocks: the network (see
        `jaxdeblur.nets.nafnet.NAFNet`).
      optim: the optimiser (`jaxdeblur.models.optim.OptimConfig`): AdamW with
        a cosine decay from lr to lr_min over train.steps, after clipping the
        gradients to a global norm.
      data: the data (`jaxdeblur.models.folder_data.DataConfig`): real pairs
        or sharp images blurred on the fly by `data.degrade`, the held-out
        images and the fixed validation set.
      train: the trainer's settings (steps, batch size, periods, seed).
      init_weights: None (a random start) or shipped weights / a weights
        folder of a NAFNet with the same network fields to start from
        (`jaxdeblur.models.load_weights`): a fine-tuning.
    """

    # the flat fields of the configs written before `optim` / `data` existed (manifests, checkpoint stamps)
    record_moves: ClassVar[dict[str, str]] = {**moved_fields("optim", OptimConfig), **moved_fields("data", DataConfig)}

    channels: int = 3
    width: int = 32
    enc_blocks: tuple[int, ...] = (1, 1, 1, 28)
    middle_blocks: int = 1
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    optim: OptimConfig = OptimConfig(lr=1e-3, lr_min=1e-7, weight_decay=1e-3, betas=(0.9, 0.9), grad_clip=0.01)
    data: DataConfig = DataConfig(paired=True, degrade=DegradeConfig(crop=256, kernel_size=31))
    train: TrainSettings = TrainSettings(steps=200_000, batch_size=32, eval_every=5000, checkpoint_every=5000,
                                         log_every=100)
    init_weights: str | None = None

    def __post_init__(self):
        if len(self.enc_blocks) != len(self.dec_blocks):
            raise ValueError(f"enc_blocks {self.enc_blocks} and dec_blocks {self.dec_blocks} need equal lengths")
        self.data.check_crop(len(self.enc_blocks))


PAPER = NAFNetConfig()

CPU = dataclasses.replace(
    PAPER,
    channels=1,
    width=16,
    enc_blocks=(1, 1, 1, 1),
    data=DataConfig(paired=False,
                    degrade=DegradeConfig(crop=64, kernel_size=19, kind_probs=(1.0, 0.0, 0.0),
                                          motion_length=(4.0, 18.0), noise_sigma=(0.0, 0.02)),
                    held_out=8, eval_batch_size=16, eval_batches=2),
    train=TrainSettings(steps=6000, batch_size=8, eval_every=500, checkpoint_every=250, log_every=50),
)

RGB = dataclasses.replace(
    CPU,
    channels=3,
    data=dataclasses.replace(CPU.data, degrade=DegradeConfig(
        crop=64, kernel_size=19, kind_probs=(1.0, 0.0, 0.0), motion_length=(2.0, 16.0), spatially_varying=0.5,
        grid=(3, 3), noise_sigma=(0.0, 0.02))),
)

SHAKE = dataclasses.replace(
    CPU,
    init_weights="nafnet-cpu",
    optim=dataclasses.replace(CPU.optim, lr=3e-4),
    data=dataclasses.replace(CPU.data, degrade=dataclasses.replace(
        RGB.data.degrade, motion_length=(2.0, 18.0))),
    train=dataclasses.replace(CPU.train, steps=3000),
)

LONG = dataclasses.replace(
    CPU,
    init_weights="nafnet-cpu",
    optim=dataclasses.replace(CPU.optim, lr=5e-4),
    data=dataclasses.replace(CPU.data, degrade=dataclasses.replace(CPU.data.degrade, crop=96)),
    train=dataclasses.replace(CPU.train, steps=4000),
)

LONGER = dataclasses.replace(
    LONG,
    init_weights="nafnet-long",
    optim=dataclasses.replace(LONG.optim, lr=3e-4),
    data=dataclasses.replace(LONG.data, degrade=dataclasses.replace(LONG.data.degrade, crop=128)),
    train=dataclasses.replace(LONG.train, steps=3500),
)

TINY = dataclasses.replace(
    CPU,
    width=4,
    enc_blocks=(1, 1),
    dec_blocks=(1, 1),
    data=dataclasses.replace(CPU.data, degrade=DegradeConfig(
        crop=16, kernel_size=5, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 4.0), noise_sigma=(0.0, 0.01)),
        held_out=2, eval_batch_size=2, eval_batches=1),
    train=TrainSettings(steps=4, batch_size=2, eval_every=2, checkpoint_every=2, log_every=1),
)

PRESETS = {"paper": PAPER, "cpu": CPU, "rgb": RGB, "shake": SHAKE, "long": LONG, "longer": LONGER, "tiny": TINY}
