"""2-D convolutions whose gradients run fast inside `lax.scan` on XLA's CPU backend.

XLA:CPU runs a convolution fast only in its canonical layout (NHWC input,
HWIO kernel). Autodiff of `lax.conv_general_dilated` produces two convolutions
with swapped dimension roles; outside a loop XLA re-lays them out, but in the
body of a while loop (every `lax.scan`, so every chunk of the DIP engine) it
cannot, and falls back to a slow generic loop (jax issue #12868): the "fast"
SelfDeblur step took 1140 ms per iteration in a scan against 80 ms jitted alone.

`conv_nhwc` computes the same convolution as `lax.conv_general_dilated`
(cross-correlation, 'VALID', NHWC x HWIO -> NHWC, any strides) with a
`jax.custom_vjp` whose backward pass is made of canonical convolutions only:

- input gradient, polyphase: for a stride (sh, sw), the input rows
  sh * q + r (r < sh) only ever met the kernel rows r, r + sh, ..., so
  each of the sh * sw phases is a stride-1 convolution of the (padded) output
  gradient with that sub-kernel, flipped and with I/O swapped, and the phases
  are interleaved:

      dx[:, r::sh, c::sw] = conv(pad(g), flip(w[r::sh, c::sw]) with I/O swapped)

  (stride 1 is the single phase). A stride-2 3x3 conv's input gradient so
  costs what its forward pass costs, not the 4x of convolving a zero-dilated g.
- kernel gradient, as a canonical convolution with batch and channels
  swapped: the input x (N, H, W, Cin) read as Cin images of N channels, the
  output gradient g (N, Ho, Wo, Cout) as an (Ho, Wo, N, Cout) kernel, so

      dw[r::sh, c::sw] = conv(x[:, r::sh, c::sw] as (Cin, H', W', N), g as (Ho, Wo, N, Cout))

  (one transpose of x in all, polyphase again for strides).

Measured on the 2-core CI machine (one 3x3, 144 -> 128 conv on 273 x 273, the
full-resolution decoder conv of SelfDeblur's paper preset, every input changing
per iteration, CPU time per iteration): gradient as per-tap matrix products
(this module's previous version) 976 ms, as above 608 ms.

`conv_general_dilated` has `lax.conv_general_dilated`'s signature (so
`nnx.Conv(..., conv_general_dilated=conv_general_dilated)` uses it) and routes
the cases above to `conv_nhwc` ON CPU ONLY; every other call, and every call on
another backend (GPUs and TPUs lay their convolutions out themselves), goes to
`lax.conv_general_dilated` unchanged. The platform is its `platform` argument,
else the one the program is traced for (`jaxdeblur.nets.platform.resolve`).

`CPU_COMPILER_OPTIONS`: XLA:CPU options for programs dominated by these
convolutions (the DIP engine's chunks and the trainer's programs are
compiled with them on CPUs): XLA's YNNPACK fusions run the SelfDeblur
convolutions 2-3x slower than XLA's own (Eigen) kernels on the CI machine
(the 3x3, 144 -> 128 conv on 273 x 273: 834 against 315 ms per call), so
they are switched off. The trainer's one-step call of the cpu presets, with
against without them, on the 2-core CPU (median of 10): NAFNet 345 / 310 ms,
denoiser 284 / 181, kernel space 110 / 70, UFPNet's kernel stage 199 / 175.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxdeblur.nets.platform import fast_cpu_paths

_SPEC = ("NHWC", "HWIO", "NHWC")

CPU_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int] = (1, 1)) -> jax.Array:
    return lax.conv_general_dilated(x, w, strides, "VALID", dimension_numbers=_SPEC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_nhwc(x: jax.Array, w: jax.Array, strides: tuple[int, int] = (1, 1)) -> jax.Array:
    """'VALID' cross-correlation of x (N, H, W, Cin) with w (kh, kw, Cin, Cout) -> (N, Ho, Wo, Cout).

    Ho = (H - kh) // sh + 1 (likewise Wo). Equal to `lax.conv_general_dilated`
    with NHWC / HWIO dimension numbers; only the backward pass differs.
    """
    return _conv(x, w, strides)


def _conv_fwd(x, w, strides):
    return _conv(x, w, strides), (x, w)


def _conv_bwd(strides, residuals, g):
    x, w = residuals
    return input_gradient(g, w, x.shape, strides), kernel_gradient(x, g, w.shape[:2], strides)


conv_nhwc.defvjp(_conv_fwd, _conv_bwd)


def _interleave(phases: list[list[jax.Array]], size: tuple[int, int]) -> jax.Array:
    """phases[r][c] (A, Q, P, B) -> out (A, size[0], size[1], B) with out[:, r::sh, c::sw] = phases[r][c]."""
    sh, sw = len(phases), len(phases[0])
    if sh == sw == 1:
        return phases[0][0][:, :size[0], :size[1]]
    a, q, p, b = phases[0][0].shape
    out = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # (A, Q, sh, P, sw, B)
    return out.reshape(a, q * sh, p * sw, b)[:, :size[0], :size[1]]


def input_gradient(g: jax.Array, w: jax.Array, input_shape: Sequence[int], strides: tuple[int, int]) -> jax.Array:
    """d loss / d x (N, H, W, Cin) of `conv_nhwc(x, w, strides)` from g = d loss / d out (N, Ho, Wo, Cout)."""
    (sh, sw), (n, h, wd, cin), (ho, wo) = strides, input_shape, g.shape[1:3]
    qh, qw = -(-h // sh), -(-wd // sw)  # rows / columns per phase (the last phase may hold one fewer)
    zero = jnp.zeros((), g.dtype)
    phases = []
    for r in range(sh):
        row = []
        for c in range(sw):
            sub = w[r::sh, c::sw]
            kr, kc = sub.shape[:2]
            if kr == 0 or kc == 0:  # a phase no tap reached (kernel smaller than the stride)
                row.append(jnp.zeros((n, qh, qw, cin), g.dtype))
                continue
            padded = lax.pad(g, zero, ((0, 0, 0), (kr - 1, qh - ho, 0), (kc - 1, qw - wo, 0), (0, 0, 0)))
            row.append(_conv(padded, jnp.flip(sub, (0, 1)).transpose(0, 1, 3, 2)))
        phases.append(row)
    return _interleave(phases, (h, wd))


def kernel_gradient(x: jax.Array, g: jax.Array, kernel_size: tuple[int, int], strides: tuple[int, int]) -> jax.Array:
    """d loss / d w (kh, kw, Cin, Cout) of `conv_nhwc(x, w, strides)` from g = d loss / d out (N, Ho, Wo, Cout)."""
    (sh, sw), (kh, kw), (ho, wo) = strides, kernel_size, g.shape[1:3]
    as_kernel = g.transpose(1, 2, 0, 3)  # (Ho, Wo, N, Cout)
    qh, qw = -(-kh // sh), -(-kw // sw)  # kernel rows / columns per phase
    phases = []
    for r in range(sh):
        row = []
        for c in range(sw):
            # the inputs phase (r, c) of the kernel saw, as Cin images of N channels
            seen = x[:, r::sh, c::sw][:, :ho + qh - 1, :wo + qw - 1].transpose(3, 1, 2, 0)
            part = _conv(seen, as_kernel)  # (Cin, <= qh, <= qw, Cout)
            row.append(jnp.pad(part, ((0, 0), (0, qh - part.shape[1]), (0, qw - part.shape[2]), (0, 0))))
        phases.append(row)
    return _interleave(phases, (kh, kw)).transpose(1, 2, 0, 3)


def _is_one(values) -> bool:
    return values is None or all(int(v) == 1 for v in values)


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count: int = 1, precision=None, *,
                         platform: str | None = None, **kwargs):
    """`lax.conv_general_dilated`, with `conv_nhwc`'s loop-friendly gradient on CPU where it applies.

    Applies to 2-D 'VALID' convolutions, NHWC x HWIO, no dilation, one
    group (what the nets of this package use: they pad by reflection
    themselves), when traced for the CPU (`platform`: "cpu", "gpu", "tpu", or
    None: `jaxdeblur.nets.platform.resolve`). Any other call goes to
    `lax.conv_general_dilated` as it is.
    """
    simple = (
        fast_cpu_paths(platform)
        and lhs.ndim == 4 and rhs.ndim == 4 and isinstance(padding, str) and padding == "VALID"
        and _is_one(lhs_dilation) and _is_one(rhs_dilation) and feature_group_count == 1
        and dimension_numbers == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _SPEC)
        and all(v is None for v in kwargs.values())
    )
    if simple:
        return conv_nhwc(lhs, rhs, tuple(int(s) for s in window_strides))
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                    rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                    feature_group_count=feature_group_count, precision=precision, **kwargs)
