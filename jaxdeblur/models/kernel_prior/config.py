"""Config and presets of the flow prior on motion kernels (FKP's KernelPrior as used by UFPNet).

Presets, each derived from the one above with `dataclasses.replace`:

- ``paper``: UFPNet's flow (19 x 19 kernels, 5 couplings, hidden 25,
  n_hidden 1, batch norms) trained as FKP trains its flow: Adam lr 1e-4 with
  (coupled, PyTorch-style) weight decay 1e-6, batch 100, 50,000 steps (100
  epochs of 5e4 kernels), the learning rate halved at 40, 50, ..., 90 % of
  training, dequantisation noise U(0, 1/720) on k / norm. UFPNet's own
  training kernels are not published: ours come from
  `jaxdeblur.kernels.motion` (see `KernelPriorConfig`'s data fields).
- ``cpu``: the same flow and data, trained in minutes on 2 CPU cores: lr 1e-3
  (10x FKP's) halved at the same fractions, 10,000 steps of batch 100,
  64-point trajectories. A plain optax loop measured the gain of the larger
  rate: after 4,000 steps the held-out NLL was -2144.0 nats per kernel at lr
  1e-3 against -2129.2 at lr 1e-4. The shipped weights (checkpoints/
  kernel_prior/cpu) took 220 s with `jaxdeblur.train.train` on the shared
  2-core machine; held-out NLL -2139.5, -2144.8, -2149.3, -2150.0, -2150.2 at
  steps 2k, 4k, ..., 10k.
- ``tiny``: 5 x 5 kernels, 2 couplings of width 8, lr 1e-2 (so that 20 steps
  of batch 16 visibly learn), for tests (seconds).
"""

from __future__ import annotations

import dataclasses

from jaxdeblur.train.task import TrainSettings


@dataclasses.dataclass(frozen=True)
class KernelPriorConfig:
    """Every number of the flow prior: network, pre-process, training data, optimiser, evaluation.

    Network (see `jaxdeblur.nets.flow.KernelFlow`):
      kernel_size: kernel side kh = kw in pixels (19).
      num_couplings, hidden, num_hidden, batch_norm, momentum: the RealNVP (5, 25, 1, True, 0.9).
      alpha, norm, dequantization: the logit pre-process (1e-6, 1.01, 1/720).
      raw_decode: decode as UFPNet's code (FKP's post-process only: no offset,
        clipping or renormalisation; `jaxdeblur.nets.flow.KernelFlow`); set for
        the authors' imported weights.

    Training kernels (`jaxdeblur.models.kernel_prior.data.motion_kernels`),
    Boracchi & Foi camera trajectories (`jaxdeblur.kernels.motion`) drawn
    fresh on the device at every step:
      length: trajectory length range as fractions of the support
        (kernel_size - 1), drawn uniformly: (0, 1) spans near-deltas (the
        sharp parts of an image, which UFPNet's per-pixel kernels must
        represent) to 18 px paths; paths that do not fit are shrunk to fit.
      anxiety: Boracchi & Foi's shake intensity range, drawn uniformly
        ((0.001, 0.008): gently curved to jittery paths; 0 is a straight line).
      num_points: trajectory samples (the kernels are bilinear splats of them).

    Optimiser (FKP: Adam with PyTorch's coupled weight decay, MultiStepLR):
      learning_rate, weight_decay, lr_milestones (fractions of train.steps), lr_decay.

    Evaluation: `eval_kernels` held-out kernels (from `eval_seed`, disjoint
    from the training keys), `eval_batch_size` per batch, with fixed
    dequantisation noise; the metric is the NLL in nats per kernel.
    """

    kernel_size: int = 19
    num_couplings: int = 5
    hidden: int = 25
    num_hidden: int = 1
    batch_norm: bool = True
    momentum: float = 0.9
    alpha: float = 1e-6
    norm: float = 1.01
    dequantization: float = 1.0 / 720.0
    raw_decode: bool = False
    length: tuple[float, float] = (0.0, 1.0)
    anxiety: tuple[float, float] = (0.001, 0.008)
    num_points: int = 128
    learning_rate: float = 1e-4
    weight_decay: float = 1e-6
    lr_milestones: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    lr_decay: float = 0.5
    eval_kernels: int = 1000
    eval_batch_size: int = 500
    eval_seed: int = 12345
    train: TrainSettings = TrainSettings(steps=50_000, batch_size=100, eval_every=5000, checkpoint_every=5000,
                                         log_every=500)

    def __post_init__(self):
        if self.kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2, got {self.kernel_size}")
        for name in ("length", "anxiety"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise ValueError(f"{name} must be a range (low, high) with 0 <= low <= high, got {getattr(self, name)}")
        if self.length[1] > 1.0:
            raise ValueError(f"length is a fraction of the support and must be <= 1, got {self.length}")
        if any(not 0.0 < m < 1.0 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones are fractions of train.steps in (0, 1), got {self.lr_milestones}")
        if self.eval_kernels < 2 or self.eval_batch_size < 2:
            raise ValueError("eval_kernels and eval_batch_size must be >= 2")


PAPER = KernelPriorConfig()
CPU = dataclasses.replace(
    PAPER, learning_rate=1e-3, num_points=64,
    train=dataclasses.replace(PAPER.train, steps=10_000, steps_per_call=50, eval_every=2000, checkpoint_every=2000,
                              log_every=500))
TINY = dataclasses.replace(
    CPU, kernel_size=5, num_couplings=2, hidden=8, num_points=16, learning_rate=1e-2, eval_kernels=16,
    eval_batch_size=8,
    train=dataclasses.replace(CPU.train, steps=20, batch_size=16, steps_per_call=1, eval_every=10,
                              checkpoint_every=10, log_every=5))

PRESETS = {"paper": PAPER, "cpu": CPU, "tiny": TINY}
