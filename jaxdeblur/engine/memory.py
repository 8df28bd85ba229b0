"""Memory known before a run: what a compiled program needs, what the device has.

`program_need` reads the compiled executable's own memory analysis (XLA's
buffer assignment: arguments, outputs, temporaries, generated code, minus the
donated buffers an output reuses); where a backend does not give one,
`traced_need` estimates it from the program's traced shapes (the sum of every
intermediate value, an upper bound: XLA reuses buffers). `available_bytes`
reads what the device has free: an accelerator's memory_stats, or the host's
MemAvailable (/proc/meminfo on Linux, os.sysconf elsewhere) for CPU devices.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import jax
import numpy as np
from jax.extend.core import jaxprs_in_params

GB = 1e9


@dataclasses.dataclass(frozen=True)
class MemoryNeed:
    """Bytes a program needs on one device; `exact` is False for a traced estimate."""

    total: int
    arguments: int
    temporaries: int
    exact: bool

    def describe(self) -> str:
        kind = "compiled program" if self.exact else "estimate from the traced shapes"
        return (f"{self.total / GB:.2f} GB ({kind}: {self.arguments / GB:.2f} GB of state and inputs, "
                f"{self.temporaries / GB:.2f} GB of temporaries)")


class NotEnoughMemoryError(MemoryError):
    """A run needs more memory than its device has available (stopped before it started).

    Attributes: need (MemoryNeed), available (bytes), fitting_window (the side,
    in pixels, of the largest square window a kernel estimate on one image
    would fit in, or None).
    """

    def __init__(self, message: str, need: MemoryNeed, available: int, fitting_window: int | None):
        super().__init__(message)
        self.need, self.available, self.fitting_window = need, available, fitting_window


def program_need(compiled) -> MemoryNeed | None:
    """A compiled executable's memory need from XLA's analysis, or None where the backend gives none."""
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, RuntimeError, AttributeError):
        return None
    if stats is None:
        return None
    arguments = int(stats.argument_size_in_bytes)
    temporaries = int(stats.temp_size_in_bytes)
    total = (arguments + int(stats.output_size_in_bytes) - int(stats.alias_size_in_bytes) + temporaries
             + int(stats.generated_code_size_in_bytes))
    return MemoryNeed(total=total, arguments=arguments, temporaries=temporaries, exact=True)


def _jaxpr_bytes(jaxpr) -> int:
    """Every value an (inner) jaxpr creates, plus its sub-programs' (loop bodies run one at a time)."""
    total = 0
    for eqn in jaxpr.eqns:
        total += sum(_aval_bytes(v.aval) for v in eqn.outvars)
        for sub in jaxprs_in_params(eqn.params):
            total += _jaxpr_bytes(sub)
    return total


def _aval_bytes(aval) -> int:
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        return math.prod(shape) * np.dtype(dtype).itemsize
    except TypeError:  # extended dtypes (PRNG keys): small
        return 0


def traced_need(fn, *args) -> MemoryNeed:
    """An upper-bound estimate of `fn(*args)`'s memory from its traced shapes (args may be abstract)."""
    closed = jax.make_jaxpr(fn)(*args)
    arguments = sum(_aval_bytes(v.aval) for v in closed.jaxpr.invars)
    temporaries = _jaxpr_bytes(closed.jaxpr)
    return MemoryNeed(total=arguments + temporaries, arguments=arguments, temporaries=temporaries, exact=False)


def host_available_bytes() -> int | None:
    """The host memory available to a new allocation (MemAvailable), or None when unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_bytes(device) -> int | None:
    """Free memory of `device` in bytes: memory_stats on accelerators, the host's for CPUs; None when unknown."""
    stats = None
    try:
        stats = device.memory_stats()
    except (NotImplementedError, RuntimeError, AttributeError):
        pass
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if device.platform == "cpu":
        return host_available_bytes()
    return None


def check_fits(need: MemoryNeed, device, *, image_shape: tuple[int, ...], runs: int) -> None:
    """Raises NotEnoughMemoryError (one line: need, available, what fits) when `need` exceeds the free memory.

    image_shape: (H, W, C) of one run; runs: the batch size. The window that
    fits assumes the need scales with the pixels and the runs (the
    generators' activations dominate), with a 20% margin.
    """
    available = available_bytes(device)
    if available is None or need.total <= available:
        return
    h, w = image_shape[:2]
    pixels = h * w * (available / need.total) * 0.8  # one image, activations scale with its pixels
    side = int(math.sqrt(pixels)) if pixels >= 64 else None
    fits = [f"estimate the kernel on a window of at most {side}x{side} pixels (--region auto or "
            f"--region x,y,w,h; region= in the API) and deconvolve the whole image non-blind"] if side else []
    if runs > 1:
        fits.append("one image per run")
    raise NotEnoughMemoryError(
        f"this run needs {need.describe()} for {runs} image(s) of {h}x{w} pixels, but {device.platform} has "
        f"{available / GB:.2f} GB available; what fits: {'; or '.join(fits + ['a smaller preset'])}",
        need, available, side)


__all__ = ["MemoryNeed", "NotEnoughMemoryError", "program_need", "traced_need", "available_bytes",
           "host_available_bytes", "check_fits"]
