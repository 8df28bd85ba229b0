"""Config and presets of the good-region classifier (Yang, Wu & Sun) and of its patch labels.

Presets, each derived from the one above with `dataclasses.replace`:

- ``paper``: the paper's setting where it states one: ResNet34 with strided
  convolutions instead of pooling (`jaxdeblur.nets.region_cnn.RegionCNN`'s
  defaults), 228 x 228 windows at a shift of 20 px, kernels up to 55 px
  estimated on 55 x 55 supports, noise "sigma 4.0" read as a standard
  deviation of 4 gray levels, the label rule "kernel similarity above
  lambda = 0.75", SGD with momentum 0.9, learning rate 1e-3, batch 32, 20
  epochs. Not stated, or not possible here: the paper fine-tunes ImageNet
  weights (none here: trained from scratch), uses 30 photos x 32 kernels
  (here: the training folder's images x `kernels_per_image` random camera-shake
  kernels, `jaxdeblur.kernels.motion`) and estimates the labels' kernels with
  Yang et al.'s rolling-bilateral estimator (here: `jaxdeblur.estimate`, Pan
  et al.'s L0 prior, the estimator the paper's own experiments use). Its
  228 + 54 px tiles need images larger than train400's 180 x 180.
- ``cpu``: meant to train in about half an hour on 2 CPU cores from train400: 128 x 128
  windows (a 180 px image blurred "valid" by a 27 x 27 support leaves 154 x 154:
  2 x 2 windows at a shift of 26 px), kernels of support 27 (the largest Levin
  size), 3 kernels per image (4,800 patches, the last 40 images' 480 held
  out), noise 1% (the study's level), the same 0.75 rule; a ResNet of one
  basic block per stage, widths (16, 32, 64, 128), a 5 x 5 stem (0.31 M
  parameters); Adam (lr 1e-3, cosine decay) instead of SGD from scratch,
  1,600 steps of batch 32 (~12 epochs of the 4,320 training windows), random flips / 90-degree rotations
  (a flipped window's kernel is the flipped kernel: the label stands). The
  shipped weights ran all 1,600 steps (95 min on the 2-core CPU shared with
  another training; held-out accuracy 0.827, ROC AUC 0.901; see their
  manifest and README's region section).
- ``tiny``: 24 x 24 windows, 5 x 5 kernels, the estimator's "tiny" preset, a
  two-stage net of width 4 / 8, for tests (seconds).
"""

from __future__ import annotations

import dataclasses

from jaxdeblur.train.task import TrainSettings


@dataclasses.dataclass(frozen=True)
class RegionConfig:
    """Every number of the region classifier: network, labels, optimiser, evaluation.

    Network (`jaxdeblur.nets.region_cnn.RegionCNN`):
      patch: window side in pixels (the network's input size).
      blocks, widths, stem_width, stem_kernel, momentum: the ResNet layout.
    Labels (`jaxdeblur.models.region.labels`): each training image is blurred
    "valid" by `kernels_per_image` random camera-shake kernels
    (`jaxdeblur.kernels.motion`, support `kernel_size`, length uniform in
    `motion_length` x (kernel_size - 1)), Gaussian noise `noise_sigma` is added
    (8-bit quantised), windows of `patch` px are cut at every `patch_stride`
    px, the MAP estimator (`jaxdeblur.estimate`, preset `map_preset`, support
    `kernel_size`) runs on all of them in batches, and a window is good (1)
    when the kernel similarity of its estimate to the true kernel exceeds
    `threshold` (the paper's lambda = 0.75), else 0. Deterministic by
    `label_seed`. The last `held_out_images` images' windows are the held-out
    split (the evaluation set).
    Optimiser: optimizer "sgd" (momentum 0.9) or "adam"; learning_rate
    (cosine-decayed to lr_min_ratio x itself when cosine), weight_decay.
    augment: random flips / 90-degree rotations of the training windows.
    """

    patch: int = 228
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    stem_kernel: int = 7
    momentum: float = 0.9
    kernel_size: int = 55
    motion_length: tuple[float, float] = (0.2, 1.0)
    kernels_per_image: int = 32
    patch_stride: int = 20
    noise_sigma: float = 4.0 / 255.0
    threshold: float = 0.75
    map_preset: str = "default"
    label_seed: int = 0
    held_out_images: int = 40
    optimizer: str = "sgd"
    learning_rate: float = 1e-3
    cosine: bool = False
    lr_min_ratio: float = 0.01
    weight_decay: float = 0.0
    augment: bool = True
    eval_batch_size: int = 0  # 0: the whole held-out split in one batch (exact ROC AUC)
    train: TrainSettings = TrainSettings(steps=20 * 960 * 121 // 32, batch_size=32, eval_every=5000,
                                         checkpoint_every=5000, log_every=500)

    def __post_init__(self):
        if self.patch < self.kernel_size:
            raise ValueError(f"patch ({self.patch}) must be at least kernel_size ({self.kernel_size})")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if min(self.patch_stride, self.kernels_per_image) < 1 or self.held_out_images < 1:
            raise ValueError("patch_stride, kernels_per_image and held_out_images must be >= 1")
        low, high = self.motion_length
        if not 0 < low <= high <= 1:
            raise ValueError(f"motion_length must be fractions 0 < low <= high <= 1, got {self.motion_length}")


PAPER = RegionConfig()
CPU = dataclasses.replace(
    PAPER, patch=128, blocks=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_width=16, stem_kernel=5, kernel_size=27,
    motion_length=(0.3, 1.0), kernels_per_image=3, patch_stride=26, noise_sigma=0.01, optimizer="adam",
    cosine=True, weight_decay=1e-4,
    train=dataclasses.replace(PAPER.train, steps=1600, steps_per_call=10, eval_every=400, checkpoint_every=200,
                              log_every=100))
TINY = dataclasses.replace(
    CPU, patch=24, blocks=(1, 1), widths=(4, 8), stem_width=4, stem_kernel=3, kernel_size=5, kernels_per_image=2,
    patch_stride=4, map_preset="tiny", held_out_images=1, learning_rate=1e-2,
    train=dataclasses.replace(CPU.train, steps=12, batch_size=8, steps_per_call=1, eval_every=6, checkpoint_every=6,
                              log_every=3))

PRESETS = {"paper": PAPER, "cpu": CPU, "tiny": TINY}
