"""A 2-D convolution whose gradients stay fast inside `lax.scan` on XLA's CPU backend.

XLA:CPU runs a convolution fast only in its canonical layout (NHWC input,
HWIO kernel). Autodiff of `lax.conv_general_dilated` produces two convolutions
with swapped dimension roles (the kernel gradient contracts over the batch and
spatial axes); outside a loop XLA re-lays them out, but in the body of a while
loop (every `lax.scan` / `fori_loop`, so every chunk of the DIP engine) it
cannot, and falls back to a slow generic loop (jax issue #12868). Measured on
the 2-core CI machine, the gradient of one 3x3 conv, 32 -> 32 channels on
129 x 129: 19 ms jitted alone, 419 ms per iteration in a `lax.scan`; with this
module's gradient, 26 ms and 22 ms. The whole "fast" SelfDeblur step went
from 1140 ms to about 70 ms per iteration.

`conv_nhwc` computes the same convolution as `lax.conv_general_dilated`
(cross-correlation, 'VALID', NHWC x HWIO -> NHWC, any strides) with a
`jax.custom_vjp` whose backward pass is written as two convolutions in the
canonical layout (the dimension swap done by an explicit transpose), and the
kernel gradient as one matrix product per kernel tap:

    dx       = conv(pad(dilate(g, stride), k - 1), flip(w) with I/O swapped)
    dw[i, j] = x[:, i::sh, j::sw, :]^T g     (contracting N, Ho, Wo)

Written as a convolution, dw contracts a (Cin, H, W, 1) input with an
(Ho, Wo, 1, Cout) "kernel", which XLA:CPU runs at a fraction of its matmul
speed; the per-tap products took the gradient of a 3x3, 144 -> 128 channel
conv on 273 x 273 (SelfDeblur's full-resolution decoder conv) from 916 to
717 ms per iteration in a `lax.scan`, and a 1x1 128 -> 128 one from 242 to 178 ms.

`conv_general_dilated` has `lax.conv_general_dilated`'s signature (so
`nnx.Conv(..., conv_general_dilated=conv_general_dilated)` uses it) and
routes the cases above to `conv_nhwc`, everything else to lax unchanged.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

_SPEC = ("NHWC", "HWIO", "NHWC")


def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int]) -> jax.Array:
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
    (sh, sw), (kh, kw) = strides, w.shape[:2]
    h, wd = x.shape[1:3]
    ho, wo = g.shape[1:3]
    # rows/columns of x that no output reached (strides that do not divide evenly)
    extra_h, extra_w = h - ((ho - 1) * sh + kh), wd - ((wo - 1) * sw + kw)
    zero = jnp.zeros((), g.dtype)
    g_padded = lax.pad(g, zero, ((0, 0, 0), (kh - 1, kh - 1 + extra_h, sh - 1), (kw - 1, kw - 1 + extra_w, sw - 1),
                                 (0, 0, 0)))
    dx = _conv(g_padded, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2), (1, 1))
    dw = jnp.stack([_tap_gradient(x, g, i, j, strides) for i in range(kh) for j in range(kw)])
    return dx, dw.reshape(w.shape)


def _tap_gradient(x, g, i, j, strides):
    """d loss / d w[i, j]: (Cin, Cout), the inputs tap (i, j) saw against the output gradient."""
    (sh, sw), (n, _, _, cin), (ho, wo) = strides, x.shape, g.shape[1:3]
    seen = lax.slice(x, (0, i, j, 0), (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin), (1, sh, sw, 1))
    return jnp.einsum("nhwc,nhwd->cd", seen, g)


conv_nhwc.defvjp(_conv_fwd, _conv_bwd)


def _is_one(values) -> bool:
    return values is None or all(int(v) == 1 for v in values)


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count: int = 1, precision=None, **kwargs):
    """`lax.conv_general_dilated` with `conv_nhwc`'s loop-friendly gradient where it applies.

    Applies to 2-D 'VALID' convolutions, NHWC x HWIO, no dilation, one
    group (what the nets of this package use: they pad by reflection
    themselves). Any other call goes to `lax.conv_general_dilated` as it is.
    """
    simple = (
        lhs.ndim == 4 and rhs.ndim == 4 and isinstance(padding, str) and padding == "VALID"
        and _is_one(lhs_dilation) and _is_one(rhs_dilation) and feature_group_count == 1
        and dimension_numbers == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _SPEC)
        and all(v is None for v in kwargs.values())
    )
    if simple:
        return conv_nhwc(lhs, rhs, tuple(int(s) for s in window_strides))
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                    rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                                    feature_group_count=feature_group_count, precision=precision, **kwargs)
