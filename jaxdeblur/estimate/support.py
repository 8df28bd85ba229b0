"""`kernel_size="auto"`: the MAP estimator chooses the kernel support itself.

Two passes of `estimate_kernels`:

1. a generous square support, from the image size (`initial_support`):
   ``min(H, W) * auto_support_fraction`` rounded up to odd, clipped to
   [auto_support_min, auto_support_max] and to the image (255 x 255 Levin
   image: 43 px);
2. the extent of that kernel is measured (`kernel_extent`): components
   (8-connected) holding less than `auto_component_mass` of the mass
   removed, then per axis the smallest centred window (about the centre of
   mass, where the estimator puts a kernel) holding `auto_mass` of the mass;
   the support is the larger of the two extents plus `auto_margin` px on each
   side, odd, between auto_support_min and the first pass's support
   (`support_from_kernel`);
3. the estimate is re-run at that size (by the caller, e.g.
   `jaxdeblur.estimate.map_deblur_batch`).

Every number is a field of `MapConfig` (the ``auto_*`` fields). Costs: two
estimations per image, and one compilation per distinct (image shape,
support) pair, the first pass shared by all images of one shape. Sizes are
pixels (taps); shapes are (rows, columns).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Sequence

import numpy as np
from scipy import ndimage

from jaxdeblur.estimate.config import MapConfig
from jaxdeblur.estimate.map_estimator import estimate_kernels

AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class AutoSize:
    """How one "auto" size was chosen (all in pixels).

    size: (k, k) the support of the final estimate (odd).
    initial: (k0, k0) the generous support of the first pass.
    extent: (eh, ew) the centred extent measured on the first pass's kernel (`kernel_extent`, odd).
    saturated: the measured support reached the first pass's own (the blur may be wider than it).
    first_kernel: (k0, k0) the first pass's kernel (blur convention, sum 1).
    """

    size: tuple[int, int]
    initial: tuple[int, int]
    extent: tuple[int, int]
    saturated: bool
    first_kernel: np.ndarray

    def record(self) -> dict:
        """JSON-able summary (no kernel)."""
        return {"size": list(self.size), "initial": list(self.initial), "extent": list(self.extent),
                "saturated": bool(self.saturated)}


def is_auto(size) -> bool:
    """Whether a kernel-size entry asks for the automatic support ("auto", any case)."""
    return isinstance(size, str) and size.strip().lower() == AUTO


def _odd_up(n: float) -> int:
    n = int(np.ceil(n - 1e-9))
    return n + 1 - n % 2


def _odd_down(n: int) -> int:
    return n - 1 + n % 2


def initial_support(image_shape: tuple[int, int], config: MapConfig) -> int:
    """The first pass's square support (odd px) for an (H, W) image: odd(min(H, W) * auto_support_fraction),
    clipped to [auto_support_min, auto_support_max] and to the largest odd size <= min(H, W)."""
    side = min(image_shape[:2])
    size = _odd_up(side * config.auto_support_fraction)
    size = min(max(size, _odd_up(config.auto_support_min)), _odd_down(config.auto_support_max))
    return max(1, min(size, _odd_down(side)))


def _centred_extent(marginal: np.ndarray, mass: float) -> int:
    """Smallest odd window 2 r + 1 about the rounded centre of mass of a 1-D `marginal` holding `mass` of it."""
    total = marginal.sum()
    if total <= 0:
        return 1
    centre = int(np.round(np.sum(np.arange(marginal.size) * marginal) / total))
    for r in range(marginal.size):
        if marginal[max(0, centre - r) : centre + r + 1].sum() >= mass * total - 1e-12:
            return 2 * r + 1
    return 2 * marginal.size - 1


def kernel_extent(kernel, *, mass: float = 0.99, component_mass: float = 0.1) -> tuple[int, int]:
    """The centred extent (eh, ew) of a (kh, kw) kernel, odd px.

    Negative taps are clipped; 8-connected components of the positive support
    holding less than `component_mass` of the total are dropped; then, per
    axis, the smallest odd window centred on the (rounded) centre of mass of
    the row / column marginal that holds `mass` of the remaining mass. A delta
    has extent (1, 1); a kernel with no positive tap too.
    """
    k = np.maximum(np.asarray(kernel, np.float64), 0.0)
    if k.ndim != 2:
        raise ValueError(f"kernel must be (kh, kw), got shape {k.shape}")
    if k.sum() <= 0:
        return 1, 1
    labels, count = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if count > 1:
        masses = ndimage.sum(k, labels, index=np.arange(1, count + 1))
        keep = np.concatenate([[False], masses >= component_mass * k.sum()])
        if keep.any():  # the heaviest component always stays
            k = np.where(keep[labels], k, 0.0)
        else:
            k = np.where(labels == 1 + int(np.argmax(masses)), k, 0.0)
    return _centred_extent(k.sum(axis=1), mass), _centred_extent(k.sum(axis=0), mass)


def support_from_kernel(kernel, config: MapConfig) -> tuple[int, tuple[int, int], bool]:
    """(support, extent, saturated) from a first-pass (k0, k0) kernel: support = max(extent) + 2 auto_margin,
    odd, in [auto_support_min, k0]; saturated when the support reached k0."""
    first = int(min(np.shape(kernel)))
    extent = kernel_extent(kernel, mass=config.auto_mass, component_mass=config.auto_component_mass)
    wanted = _odd_up(max(extent) + 2 * config.auto_margin)
    support = max(min(wanted, _odd_down(first)), min(_odd_up(config.auto_support_min), _odd_down(first)))
    return support, extent, wanted >= first


def auto_kernel_sizes(grays: Sequence[np.ndarray], config: MapConfig) -> list[AutoSize]:
    """The first pass for gray images (H, W) (any mix of shapes; one batched estimation per shape) and the
    support chosen for each (`AutoSize`, in order)."""
    groups = defaultdict(list)
    for i, gray in enumerate(grays):
        groups[np.shape(gray)].append(i)
    out: list[AutoSize | None] = [None] * len(grays)
    for shape, members in groups.items():
        first = initial_support(shape, config)
        estimate = estimate_kernels(np.stack([np.asarray(grays[i], np.float32) for i in members]), first,
                                    config=config)
        for j, i in enumerate(members):
            support, extent, saturated = support_from_kernel(estimate.kernel[j], config)
            out[i] = AutoSize(size=(support, support), initial=(first, first), extent=extent, saturated=saturated,
                              first_kernel=estimate.kernel[j])
    return out


def resolve_kernel_sizes(grays: Sequence[np.ndarray], sizes: Sequence, config: MapConfig
                         ) -> tuple[list, list[AutoSize | None]]:
    """`sizes` with every "auto" entry replaced by its chosen (k, k) (`auto_kernel_sizes` of those images
    only), and the AutoSize of each entry (None where the size was given)."""
    wanted = [i for i, s in enumerate(sizes) if is_auto(s)]
    chosen = auto_kernel_sizes([grays[i] for i in wanted], config) if wanted else []
    infos: list[AutoSize | None] = [None] * len(sizes)
    resolved = list(sizes)
    for i, info in zip(wanted, chosen):
        resolved[i], infos[i] = info.size, info
    return resolved, infos


__all__ = ["AUTO", "AutoSize", "is_auto", "initial_support", "kernel_extent", "support_from_kernel",
           "auto_kernel_sizes", "resolve_kernel_sizes"]
