"""The blur-kernel-space model's configuration: network size, optimiser, data and training length.

Presets (each derived from `PAPER` with `dataclasses.replace`):

- ``"paper"``: the reference's KernelWizard setting (accelerators): RGB,
  nf 64, 10 front / 20 back residual blocks, 4 extractor blocks, 512-d code,
  depth 5 (stride 128: a 2 x 2 code map per 256 px crop; ~49 M
  parameters), batch 16 of 256 px crops, Adam lr 1e-4 (betas 0.9, 0.99)
  with cosine annealing restarted after 1/12, 3/12, 6/12 and 9/12 of the
  600k steps (the reference's periods 50k, 100k, 150k, 150k, 150k) down to
  1e-8, Charbonnier loss (eps 1e-6). The reference trains on GoPro / REDS
  pairs (``paired=True`` takes a GoPro-layout folder); this preset, like the
  others, blurs sharp images on the fly with the shared pipeline: camera-
  shake motion kernels (support 31, length 1-30 px), half of the images
  with a spatially varying field of 3 x 3 such kernels, no noise, 8-bit
  quantised.
- ``"cpu"``: a 0.69 M parameter model (2.6 MB of weights): gray 32 px
  crops (train400), nf 16, 2 front / 4 back blocks, 1 extractor block,
  64-d code, depth 4, a bias on every conv (``all_biases``: trained before the
  fidelity check found the authors' bias-free G and U-Net), and NO feature downsampling (stride 16: 2 x 2 codes
  per crop). With the paper's 4x downsampled trunk a small model only
  learned the identity in the steps a CPU affords (measured: eval PSNR of
  the re-blur equal to the sharp crop's after 250 steps at nf 16, and after
  150 at lr 5e-3); full-resolution features learn the blur within ~100
  steps. Kernels of support 13 (length 1-9 px), half of them spatially
  varying on a 2 x 2 grid; batch 8, Adam 2e-3 with one cosine decay over
  2000 steps (37 min on the shared 2-core CPU, ~1 s per step under load).
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
class KernelSpaceConfig:
    """Every number of a blur-kernel-space training (frozen, hashable).

    Attributes:
      channels: image channels the network sees (1 gray, 3 RGB); a gray
        model treats colour images channel by channel.
      nf, front_blocks, back_blocks, code_dim, extractor_blocks, depth,
        feature_downsamples: the network (`jaxdeblur.nets.kernel_space.KernelSpace`);
        the code map's stride is 2^(feature_downsamples + depth) px.
      all_biases: False: the authors' conv biases (none in G's head, and in
        F's U-Net only on the outermost up conv); True: a bias on every conv
        (the cpu preset: its shipped weights were trained so).
      charbonnier_eps: eps of the Charbonnier loss mean(sqrt(d^2 + eps)).
      optim: Adam (no weight decay, no clipping) with cosine annealing from lr
        to lr_min, restarted at lr after each of `optim.lr_periods` (fractions
        of `train.steps`); `jaxdeblur.models.optim.OptimConfig`.
      data: the data (`jaxdeblur.models.folder_data.DataConfig`): real pairs,
        or sharp images blurred on the fly by `data.degrade` (kernels,
        spatially varying fields, noise), the fixed validation set.
      naive_kernel_size: support of the uniform kernel the naive baseline
        fits by least squares (evaluation and check metrics), odd.
      train: the trainer's settings.
    """

    # the flat fields of the configs written before `optim` / `data` existed (manifests, checkpoint stamps)
    record_moves: ClassVar[dict[str, str]] = {**moved_fields("optim", OptimConfig), **moved_fields("data", DataConfig)}

    channels: int = 3
    nf: int = 64
    front_blocks: int = 10
    back_blocks: int = 20
    code_dim: int = 512
    extractor_blocks: int = 4
    depth: int = 5
    feature_downsamples: int = 2
    all_biases: bool = False
    charbonnier_eps: float = 1e-6
    optim: OptimConfig = OptimConfig(lr=1e-4, lr_min=1e-8, lr_periods=(1 / 12, 2 / 12, 3 / 12, 3 / 12, 3 / 12),
                                     weight_decay=0.0, betas=(0.9, 0.99), grad_clip=0.0)
    data: DataConfig = DataConfig(paired=False, degrade=DegradeConfig(
        crop=256, kernel_size=31, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 30.0), spatially_varying=0.5,
        grid=(3, 3), noise_sigma=(0.0, 0.0)))
    naive_kernel_size: int = 31
    train: TrainSettings = TrainSettings(steps=600_000, batch_size=16, eval_every=5000, checkpoint_every=5000,
                                         log_every=100)

    @property
    def stride(self) -> int:
        """Pixels per code cell along each axis: 2^(feature_downsamples + depth)."""
        return 2 ** (self.feature_downsamples + self.depth)

    def __post_init__(self):
        if self.naive_kernel_size < 1 or self.naive_kernel_size % 2 == 0:
            raise ValueError(f"naive_kernel_size must be odd and >= 1, got {self.naive_kernel_size}")
        if self.charbonnier_eps <= 0:
            raise ValueError(f"charbonnier_eps must be > 0, got {self.charbonnier_eps}")


PAPER = KernelSpaceConfig()

CPU = dataclasses.replace(
    PAPER,
    channels=1,
    nf=16,
    front_blocks=2,
    back_blocks=4,
    code_dim=64,
    extractor_blocks=1,
    depth=4,
    feature_downsamples=0,
    all_biases=True,
    optim=dataclasses.replace(PAPER.optim, lr=2e-3, lr_min=1e-6, lr_periods=(1.0,)),
    data=dataclasses.replace(PAPER.data, degrade=DegradeConfig(
        crop=32, kernel_size=13, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 9.0), spatially_varying=0.5,
        grid=(2, 2), noise_sigma=(0.0, 0.0)), held_out=16, eval_batch_size=8, eval_batches=2),
    naive_kernel_size=13,
    train=TrainSettings(steps=2000, batch_size=8, eval_every=250, checkpoint_every=100, log_every=25),
)

TINY = dataclasses.replace(
    CPU,
    nf=4,
    front_blocks=1,
    back_blocks=1,
    code_dim=8,
    extractor_blocks=1,
    depth=1,
    feature_downsamples=1,
    data=dataclasses.replace(CPU.data, degrade=DegradeConfig(
        crop=16, kernel_size=5, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 4.0), spatially_varying=0.5,
        grid=(2, 2), noise_sigma=(0.0, 0.0)), held_out=2, eval_batch_size=2, eval_batches=1),
    naive_kernel_size=5,
    train=TrainSettings(steps=4, batch_size=2, eval_every=2, checkpoint_every=2, log_every=1),
)

PRESETS = {"paper": PAPER, "cpu": CPU, "tiny": TINY}
