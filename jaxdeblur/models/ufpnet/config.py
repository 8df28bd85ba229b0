"""UFPNet's configuration: the three networks, the training stage, losses, optimiser, data.

UFPNet trains in stages (Fang et al. 2023), each a run of the one trainer
with its own config; `stage` picks what is trained (the flow prior is always
frozen):

1. ``"kernel"``: the kernel-code net alone, self-supervised by L_KE (re-blur
   the SHARP crop with the predicted per-pixel kernels, L1 to the blurred
   one); the flow comes from the shipped prior `prior_weights`.
2. ``"deblur"``: the kernel-conditioned NAFNet alone (the code net frozen),
   NAFNet's PSNR loss plus `reblur_weight` x the reblur loss (re-blur the
   RESTORED image with the predicted kernels, L1 to the blurred input);
   `init_weights` must name the weights folder exported by stage 1 (its code
   net and flow are used).
3. ``"joint"`` (optional): code net and deblurring net together, PSNR +
   reblur + `kernel_weight` x L_KE, from a stage-2 folder.

Presets (each stage-2 preset has its stage-1 twin ``<name>_kernel``; all
derived from `PAPER` with `dataclasses.replace`):

- ``paper`` / ``paper_kernel``: the reference networks (NAFNet width 64,
  encoder (1, 1, 1, 28), middle 1, decoder (1, 1, 1, 1), the first three
  levels kernel-conditioned; code net widths (64, 128), middle 5 convs at
  256, its 361-channel sigma head averaged per pixel and no epsilon in the
  code standardisation; 19 x 19 kernels): 79.3 M parameters (the authors'
  network, rebuilt in experiments/torch_ufpnet.py: 80.3 M, with two more
  kernel-map downsampling convs, 0.5 M each, whose output it never uses;
  checked equal in float64, experiments/ufpnet_fidelity.py). RGB GoPro pairs (256 crops),
  NAFNet's GoPro recipe for stage 2 (AdamW lr 1e-3, betas (0.9, 0.9),
  weight decay 1e-3, cosine to 1e-7, clip 0.01, batch 64, 400k steps). The
  reference released no training code: stage 1's settings (lr 1e-4, 100k
  steps, batch 16, the recipe otherwise) and the reblur weight (0.1) are
  ours. For accelerators, not run here. The flow is the shipped CPU flow
  (``kernel_prior-cpu``; the reference's is inside its PyTorch checkpoint).
- ``cpu`` / ``cpu_kernel``: small networks for the shared 2-core CPU (3.2 M
  parameters: NAFNet width 16 with one block per level, 1.1 M, plus its
  kernel branch, 1.6 M; a code net of widths (16, 32) with 3 middle convs at
  64, 0.3 M; the flow, 0.2 M): gray 64 px crops of train400, all spatially
  varying motion blur (a 3 x 3 grid of kernels of length 4-18 px per crop),
  0-2 % noise, batch 4; stage 1 computes L_KE on 256 sampled pixels per
  crop. Sized by measured step times with the machine's load at 12-19 from
  other jobs: a full-field stage-1 step at batch 8 took 11.7 s (2.7 s with
  256 sampled pixels), a stage-2 step at batch 4 about 4-5 s (the flow
  decode of every pixel and the 361-channel kernel convs dominate). The
  shipped weights: stage 1, 400 steps (~16 min of steps, 30 min with XLA
  compilation under that load), stage 2, 250 steps (~17 min of steps, ~35
  min in all). Far from converged: a reduced run.
- ``tiny`` / ``tiny_kernel``: for tests (seconds), 5 x 5 kernels and a
  randomly initialised flow (`prior_weights` None).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from jaxdeblur.data.degrade import DegradeConfig
from jaxdeblur.models.folder_data import DataConfig
from jaxdeblur.models.kernel_prior import config as prior_presets
from jaxdeblur.models.kernel_prior.config import KernelPriorConfig
from jaxdeblur.models.optim import OptimConfig, moved_fields
from jaxdeblur.train.task import TrainSettings

STAGES = ("kernel", "deblur", "joint")


@dataclasses.dataclass(frozen=True)
class UFPNetConfig:
    """Every number of one UFPNet training stage (frozen, hashable).

    Attributes:
      channels: image channels (1 gray, 3 RGB).
      width, enc_blocks, middle_blocks, dec_blocks: the NAFNet backbone
        (`jaxdeblur.nets.nafnet.NAFNet`).
      conditioned_levels: encoder levels that see the kernel map (reference 3).
      code_widths, code_middle_width, code_middle_convs: the kernel-code net
        (`jaxdeblur.nets.kernel_code.KernelCodeNet`).
      code_sigma_per_tap, code_std_eps: its sigma head (True: the reference's
        kh * kw sigmoids averaged per pixel; False: one output) and the epsilon
        added to the std of the code standardisation (reference 0); the cpu
        presets keep (False, 1e-6), which their shipped weights were trained with.
      prior: the flow's config (`jaxdeblur.models.kernel_prior`); its
        kernel_size is the field's kernel size and must equal
        `data.degrade.kernel_size`.
      prior_weights: the shipped flow loaded at the start of stage 1 (a name
        for `jaxdeblur.models.load`, or a weights folder); None keeps a
        randomly initialised flow (tests only).
      stage: "kernel", "deblur" or "joint" (module docstring).
      init_weights: stage 2 / 3: the weights folder exported by the previous
        stage (`jaxdeblur.train.export`); its code net and flow (and, for
        "joint", its deblurring net) start this stage.
      reblur_weight: weight of the reblur loss in stages 2 and 3.
      ke_pixels: L_KE on this many random interior pixels per image instead
        of all of them (0, the reference): an unbiased estimate of the same
        loss that decodes only those pixels' codes through the flow
        (`jaxdeblur.nets.kernel_code.kernels_at`); the flow decode and the
        mean head's kh * kw-channel conv dominate a full-field step.
      kernel_weight: weight of L_KE in stage 3.
      optim: AdamW with cosine decay from lr to lr_min over train.steps,
        after clipping the gradients to a global norm (NAFNet's recipe;
        `jaxdeblur.models.optim.OptimConfig`).
      data: the data (`jaxdeblur.models.folder_data.DataConfig`), as NAFNet's.
      train: the trainer's settings.
    """

    # the flat fields of the configs written before `optim` / `data` existed (manifests, checkpoint stamps)
    record_moves: ClassVar[dict[str, str]] = {**moved_fields("optim", OptimConfig), **moved_fields("data", DataConfig)}

    channels: int = 3
    width: int = 64
    enc_blocks: tuple[int, ...] = (1, 1, 1, 28)
    middle_blocks: int = 1
    dec_blocks: tuple[int, ...] = (1, 1, 1, 1)
    conditioned_levels: int = 3
    code_widths: tuple[int, int] = (64, 128)
    code_middle_width: int = 256
    code_middle_convs: int = 5
    code_sigma_per_tap: bool = True
    code_std_eps: float = 0.0
    prior: KernelPriorConfig = prior_presets.CPU
    prior_weights: str | None = "kernel_prior-cpu"
    stage: str = "deblur"
    init_weights: str | None = None
    reblur_weight: float = 0.1
    ke_pixels: int = 0
    kernel_weight: float = 1.0
    optim: OptimConfig = OptimConfig(lr=1e-3, lr_min=1e-7, weight_decay=1e-3, betas=(0.9, 0.9), grad_clip=0.01)
    data: DataConfig = DataConfig(paired=True, degrade=DegradeConfig(crop=256, kernel_size=19))
    train: TrainSettings = TrainSettings(steps=400_000, batch_size=64, eval_every=5000, checkpoint_every=5000,
                                         log_every=100)

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if len(self.enc_blocks) != len(self.dec_blocks):
            raise ValueError(f"enc_blocks {self.enc_blocks} and dec_blocks {self.dec_blocks} need equal lengths")
        if not 0 <= self.conditioned_levels <= len(self.enc_blocks):
            raise ValueError(f"conditioned_levels must be in [0, {len(self.enc_blocks)}], got {self.conditioned_levels}")
        self.data.check_crop(len(self.enc_blocks))
        degrade = self.data.degrade
        if self.prior.kernel_size != degrade.kernel_size:
            raise ValueError(f"prior.kernel_size {self.prior.kernel_size} must equal data.degrade.kernel_size "
                             f"{degrade.kernel_size} (the field's kernels are the flow's)")
        if degrade.crop <= degrade.kernel_size:
            raise ValueError(f"data.degrade.crop {degrade.crop} must exceed data.degrade.kernel_size "
                             f"{degrade.kernel_size} (the losses skip a border of kernel_size // 2)")
        if self.ke_pixels < 0:
            raise ValueError(f"ke_pixels must be >= 0 (0: every interior pixel), got {self.ke_pixels}")
        if self.reblur_weight < 0 or self.kernel_weight < 0:
            raise ValueError(f"reblur_weight and kernel_weight must be >= 0, got {self.reblur_weight}, "
                             f"{self.kernel_weight}")


PAPER = UFPNetConfig()
PAPER_KERNEL = dataclasses.replace(
    PAPER, stage="kernel", optim=dataclasses.replace(PAPER.optim, lr=1e-4, lr_min=1e-7),
    train=dataclasses.replace(PAPER.train, steps=100_000, batch_size=16))

CPU = dataclasses.replace(
    PAPER,
    channels=1,
    width=16,
    enc_blocks=(1, 1, 1, 1),
    code_widths=(16, 32),
    code_middle_width=64,
    code_middle_convs=3,
    code_sigma_per_tap=False,
    code_std_eps=1e-6,
    data=DataConfig(paired=False,
                    degrade=DegradeConfig(crop=64, kernel_size=19, kind_probs=(1.0, 0.0, 0.0),
                                          motion_length=(4.0, 18.0), spatially_varying=1.0, grid=(3, 3),
                                          noise_sigma=(0.0, 0.02)),
                    held_out=16, eval_batch_size=8, eval_batches=2),
    train=TrainSettings(steps=250, batch_size=4, eval_every=250, checkpoint_every=50, log_every=10),
)
CPU_KERNEL = dataclasses.replace(
    CPU, stage="kernel", optim=dataclasses.replace(CPU.optim, lr=1e-3, lr_min=1e-5), ke_pixels=256,
    train=dataclasses.replace(CPU.train, steps=400, eval_every=400))

TINY = dataclasses.replace(
    CPU,
    width=4,
    enc_blocks=(1, 1),
    dec_blocks=(1, 1),
    conditioned_levels=2,
    code_widths=(4, 8),
    code_middle_width=8,
    code_middle_convs=1,
    prior=prior_presets.TINY,
    prior_weights=None,
    data=dataclasses.replace(CPU.data, degrade=DegradeConfig(
        crop=16, kernel_size=5, kind_probs=(1.0, 0.0, 0.0), motion_length=(1.0, 4.0), spatially_varying=1.0,
        grid=(2, 2), noise_sigma=(0.0, 0.01)), held_out=2, eval_batch_size=2, eval_batches=1),
    train=TrainSettings(steps=2, batch_size=2, eval_every=2, checkpoint_every=2, log_every=1),
)
TINY_KERNEL = dataclasses.replace(TINY, stage="kernel", optim=dataclasses.replace(TINY.optim, lr=1e-2, lr_min=1e-4))

PRESETS = {"paper": PAPER, "paper_kernel": PAPER_KERNEL, "cpu": CPU, "cpu_kernel": CPU_KERNEL, "tiny": TINY,
           "tiny_kernel": TINY_KERNEL}
