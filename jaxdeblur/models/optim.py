"""`OptimConfig`: the optimiser sub-config of the trained models (nafnet, ufpnet, kernel_space).

One recipe covers them: Adam(W) with a cosine decay of the learning rate from
`lr` to `lr_min` over the run's `train.steps` (restarted at `lr` after each of
`lr_periods`), after clipping the gradients to a global norm. A model's
config holds one as its field ``optim`` and names its own values (NAFNet's
GoPro recipe: AdamW, weight decay 1e-3, betas (0.9, 0.9), clip 0.01; the
kernel space's: Adam, betas (0.9, 0.99), restarts, no clipping), so
``--set optim.lr=1e-4`` changes any of them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Every number of a trained model's optimiser (frozen, hashable).

    Attributes:
      lr, lr_min: the peak learning rate and the floor of each cosine period.
      lr_periods: the cosine periods as fractions of the run's steps (sum 1);
        the learning rate restarts at `lr` after each. (1.0,): one decay.
      weight_decay: AdamW's decoupled weight decay; 0: plain Adam.
      betas: (b1, b2) of Adam(W).
      grad_clip: clip the gradients to this global l2 norm first; 0: no clipping.
    """

    lr: float = 1e-3
    lr_min: float = 1e-7
    lr_periods: tuple[float, ...] = (1.0,)
    weight_decay: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.9)
    grad_clip: float = 0.01

    def __post_init__(self):
        if not 0 < self.lr_min <= self.lr:
            raise ValueError(f"need 0 < lr_min <= lr, got lr={self.lr}, lr_min={self.lr_min}")
        if not self.lr_periods or min(self.lr_periods) <= 0 or not math.isclose(sum(self.lr_periods), 1.0,
                                                                                 abs_tol=1e-6):
            raise ValueError(f"lr_periods must be positive fractions of train.steps summing to 1, "
                             f"got {self.lr_periods}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError(f"weight_decay and grad_clip must be >= 0 (0: off), got {self.weight_decay}, "
                             f"{self.grad_clip}")

    def schedule(self, steps: int) -> optax.Schedule:
        """The learning rate per step of a run of `steps`: cosine decays from lr to lr_min, one per period."""
        bounds = np.round(np.cumsum(self.lr_periods) * steps).astype(int)
        lengths = np.diff(np.concatenate([[0], bounds]))
        alpha = self.lr_min / self.lr
        periods = [optax.cosine_decay_schedule(self.lr, max(int(n), 1), alpha=alpha) for n in lengths]
        return optax.join_schedules(periods, [int(b) for b in bounds[:-1]]) if len(periods) > 1 else periods[0]

    def make(self, steps: int) -> optax.GradientTransformation:
        """The optax optimiser of a run of `steps` (clipping, then Adam or AdamW on `schedule(steps)`)."""
        b1, b2 = self.betas
        schedule = self.schedule(steps)
        if self.weight_decay:
            opt = optax.adamw(schedule, b1=b1, b2=b2, weight_decay=self.weight_decay)
        else:
            opt = optax.adam(schedule, b1=b1, b2=b2)
        return optax.chain(optax.clip_by_global_norm(self.grad_clip), opt) if self.grad_clip else opt


def moved_fields(prefix: str, sub_config: type) -> dict[str, str]:
    """{field: "prefix.field"} for every field of the dataclass `sub_config`: where a config that once held
    those fields flat now keeps them (its ``record_moves``, read by `jaxdeblur.train.records`)."""
    return {f.name: f"{prefix}.{f.name}" for f in dataclasses.fields(sub_config)}


__all__ = ["OptimConfig", "moved_fields"]
