"""Gated edge-preserving attention (Nair & Patel, eq. 3-5) and a history buffer.

The paper's attention is a learned bilateral filter applied, channel by
channel, to the penultimate features F (N, H, W, C) of the image generator.
For a pixel a and the positions b of the p x p window N_p(a) centred on it
(eq. 3-4)::

    F_hat[a] = sum_b softmax_b( H(F_a, F_b) + r(a, b) ) F[b]
    H(F_a, F_b) = -(F_a - F_b)^2 / (2 sigma_r^2)     (range / intensity term)
    r(a, b)     = -||a - b||^2 / (2 sigma_s^2)       (spatial term)

i.e. softmax_b(H + r) = K_s(a, b) K_r(a, b) with the Gaussian kernels of eq. 3
normalised over the window. (Eq. 3 prints the range term of the normaliser Z
with a "+" sign; eq. 4 and "normalised so that the weights sum to 1" need the
"-" used here.) The squared feature difference is per channel ("for each
channel of the low-level features"), and sigma_r, sigma_s are two scalars
shared by all channels ("the number of trainable parameters is just two").

The gate (eq. 5) mixes the filtered features with an ordinary convolution of
the same features::

    O = W1 * F_hat + (1 - W1) * C(F),   W1 = sigmoid(gate_net(F, x^{n-1..n-m}))

where the gate network sees the features and the generator's outputs of the
previous m iterations (a ring buffer kept in the engine's run state).

Implementation notes
--------------------
- Cost is O(N H W C p^2) time and O(N H W C) memory, forward and backward: the
  window is visited one offset at a time (a Python loop over the p^2 offsets,
  unrolled at trace time into elementwise passes that XLA fuses; no (HW)^2
  matrix, no stack of p^2 shifted copies). Because H <= 0, r <= 0 and the
  centre offset has H + r = 0 exactly, the softmax needs no running maximum:
  every exp is in (0, 1] and the normaliser is >= 1.
- A `jax.custom_vjp` recomputes each offset's weights in the backward pass
  (again one offset at a time), so reverse-mode memory stays O(N H W C) too;
  plain autodiff of the scan would store p^2 copies of the weights. Forward-
  mode differentiation (jvp) of the attention is not supported.
- sigma_r and sigma_s are stored as their logarithms (`log_sigma_r`,
  `log_sigma_s`), so they stay positive and Adam steps are relative changes.
- Borders: "reflect" (default) pads the features by mirror reflection without
  repeating the edge pixel (as `jnp.pad(mode="reflect")` and the generator's
  reflection-padded convs), "truncate" restricts N_p(a) to the pixels inside
  the image (the softmax is taken over the valid positions only).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from jaxdeblur.nets.conv import conv_general_dilated

BORDERS = ("reflect", "truncate")


def _check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd int (the window is centred on each pixel), got {window!r}")
    return window // 2


def _check_border(border) -> None:
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")


def _window_offsets(window: int) -> list[tuple[int, int]]:
    """The (dy, dx) offsets of the window positions, row-major."""
    r = window // 2
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]


def _pad(x: jnp.ndarray, r: int, mode: str, **kwargs) -> jnp.ndarray:
    return jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode, **kwargs)


def _shift(a: jnp.ndarray, dy: int, dx: int, r: int, shape) -> jnp.ndarray:
    """The (N, H', W', C) view of `a` (padded by r) whose pixel i sees a at i + (dy, dx)."""
    return a[:, r + dy : r + dy + shape[1], r + dx : r + dx + shape[2]]


def _inside(dy: int, dx: int, h: int, w: int) -> np.ndarray:
    """(1, H, W, 1) bool: pixel a + (dy, dx) lies inside the H x W image."""
    rows, cols = np.arange(h) + dy, np.arange(w) + dx
    return (((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :])[None, :, :, None]


def _coefficients(log_sigma_r, log_sigma_s):
    """(1 / (2 sigma_r^2), 1 / (2 sigma_s^2))."""
    return 0.5 * jnp.exp(-2.0 * log_sigma_r), 0.5 * jnp.exp(-2.0 * log_sigma_s)


def _forward(x, log_sigma_r, log_sigma_s, window, border):
    """(F_hat, softmax normaliser D), each (N, H, W, C)."""
    r = window // 2
    range_coef, spatial_coef = _coefficients(log_sigma_r, log_sigma_s)
    # "truncate" never uses the padded values (their weights are zeroed); edge padding keeps them finite.
    padded = _pad(x, r, "reflect" if border == "reflect" else "edge")
    num = den = jnp.zeros_like(x)
    for dy, dx in _window_offsets(window):
        neighbour = _shift(padded, dy, dx, r, x.shape)
        e = jnp.exp(-range_coef * (x - neighbour) ** 2 - spatial_coef * (dy * dy + dx * dx))
        if border == "truncate":
            e = jnp.where(_inside(dy, dx, x.shape[1], x.shape[2]), e, 0.0)
        num = num + e * neighbour
        den = den + e
    return num / den, den


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _attention(x, log_sigma_r, log_sigma_s, window, border):
    return _forward(x, log_sigma_r, log_sigma_s, window, border)[0]


def _attention_fwd(x, log_sigma_r, log_sigma_s, window, border):
    out, den = _forward(x, log_sigma_r, log_sigma_s, window, border)
    return out, (x, log_sigma_r, log_sigma_s, out, den)


def _attention_bwd(window, border, residuals, g):
    """Reverse mode, recomputing the weights offset by offset.

    With w_ab = e_ab / D_a, out_a = sum_b w_ab F_b and the logit
    l_ab = -k_r (F_a - F_b)^2 - k_s |a - b|^2 (k = 1 / (2 sigma^2)):
      dL/dl_ab = w_ab g_a (F_b - out_a) =: t_ab
      dL/dF_a  += sum_b t_ab * (-2 k_r (F_a - F_b))          (F_a as the centre)
      dL/dF_b  += sum_a [g_a w_ab + t_ab * 2 k_r (F_a - F_b)]  (F_b as a neighbour)
      dL/dk_r   = -sum t_ab (F_a - F_b)^2,  dL/dk_s = -sum t_ab |a - b|^2.
    The neighbour sum is gathered on the padded grid (each padded pixel q
    collects from the centres a = q - d) and folded back by the transpose of
    the padding, so nothing is scattered and every sum is one fused pass.
    """
    x, log_sigma_r, log_sigma_s, out, den = residuals
    n, h, w, c = x.shape
    r = window // 2
    range_coef, spatial_coef = _coefficients(log_sigma_r, log_sigma_s)
    padded, pad_vjp = jax.vjp(lambda v: _pad(v, r, "reflect" if border == "reflect" else "edge"), x)

    # As centre: sums over the neighbours b = a + d.
    g_centre = acc_r = acc_s = jnp.zeros_like(x)
    for dy, dx in _window_offsets(window):
        neighbour = _shift(padded, dy, dx, r, x.shape)
        diff = x - neighbour
        e = jnp.exp(-range_coef * diff**2 - spatial_coef * (dy * dy + dx * dx))
        if border == "truncate":
            e = jnp.where(_inside(dy, dx, h, w), e, 0.0)
        t = e / den * g * (neighbour - out)
        g_centre = g_centre - 2.0 * range_coef * t * diff
        acc_r = acc_r - t * diff**2
        acc_s = acc_s - t * (dy * dy + dx * dx)

    # As neighbour: padded pixel q gathers from the centres a = q - d; centres
    # outside the image have g = 0 (and D = 1 to keep the division finite).
    far = 2 * r
    g_far, out_far = _pad(g, far, "constant"), _pad(out, far, "constant")
    x_far, den_far = _pad(x, far, "constant"), _pad(den, far, "constant", constant_values=1.0)
    grid = padded.shape
    g_padded = jnp.zeros_like(padded)
    for dy, dx in _window_offsets(window):
        g_a, out_a = _shift(g_far, -dy, -dx, r, grid), _shift(out_far, -dy, -dx, r, grid)
        x_a, den_a = _shift(x_far, -dy, -dx, r, grid), _shift(den_far, -dy, -dx, r, grid)
        diff = x_a - padded
        wgt = jnp.exp(-range_coef * diff**2 - spatial_coef * (dy * dy + dx * dx)) / den_a
        t = wgt * g_a * (padded - out_a)
        g_padded = g_padded + g_a * wgt + 2.0 * range_coef * t * diff
    if border == "truncate":  # neighbours outside the image have zero weight
        g_padded = g_padded * _pad(jnp.ones((1, h, w, 1), x.dtype), r, "constant")

    g_x = g_centre + pad_vjp(g_padded)[0]
    # Chain rule through k = exp(-2 log sigma) / 2: dk / dlog_sigma = -2 k.
    return g_x, -2.0 * range_coef * jnp.sum(acc_r), -2.0 * spatial_coef * jnp.sum(acc_s)


_attention.defvjp(_attention_fwd, _attention_bwd)


def edge_preserving_attention(
    x: jnp.ndarray,
    log_sigma_r: jnp.ndarray,
    log_sigma_s: jnp.ndarray,
    *,
    window: int = 5,
    border: str = "reflect",
) -> jnp.ndarray:
    """Per-channel windowed bilateral attention F_hat of eq. 4 (pure function).

    Args:
      x: features F, (N, H, W, C) floating point (any scale; the range term
        compares raw feature values).
      log_sigma_r: scalar, log of the range (intensity) bandwidth sigma_r.
      log_sigma_s: scalar, log of the spatial bandwidth sigma_s, in pixels.
      window: odd window extent p; the window is p x p centred on each pixel.
      border: "reflect" (mirror padding, needs p // 2 < H and < W) or
        "truncate" (window clipped to the image).

    Returns:
      F_hat, (N, H, W, C): for each pixel a and channel c,
      sum_b w_ab F_b[c] with w_ab = softmax_b(-(F_a[c] - F_b[c])^2 / (2 sigma_r^2)
      - ||a - b||^2 / (2 sigma_s^2)) over the window positions b.
      Differentiable (reverse mode) in x and both log-sigmas with O(N H W C)
      memory; jit- and vmap-able.
    """
    r = _check_window(window)
    _check_border(border)
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, H, W, C), got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be floating point, got {x.dtype}")
    if border == "reflect" and (r >= x.shape[1] or r >= x.shape[2]):
        raise ValueError(
            f"reflect border needs window // 2 = {r} < H and < W, got (H, W) = {x.shape[1:3]}; "
            "use a smaller window or border='truncate'"
        )
    log_sigma_r = jnp.asarray(log_sigma_r, x.dtype)
    log_sigma_s = jnp.asarray(log_sigma_s, x.dtype)
    if log_sigma_r.shape != () or log_sigma_s.shape != ():
        raise ValueError(
            f"log_sigma_r and log_sigma_s must be scalars, got shapes {log_sigma_r.shape}, {log_sigma_s.shape}"
        )
    return _attention(x, log_sigma_r, log_sigma_s, window, border)


def _check_positive(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


class EdgePreservingAttention(nnx.Module):
    """Eq. 3-4: per-channel bilateral attention with trainable sigma_r, sigma_s.

    Two parameters, `log_sigma_r` and `log_sigma_s` (scalars). The paper gives
    neither p nor the initial sigmas; the defaults (p = 5, sigma_r = 0.5,
    sigma_s = 1 px) are this library's choice: with unit-scale (BatchNorm'd)
    features, a feature jump of 2 gets weight exp(-8) relative to the centre
    (edges kept) while small differences are averaged over about 3 x 3 px.

    Initialisation is deterministic (no `rngs`). `channels` only checks the
    input: the filter has no per-channel parameters.

    Call: `attn(features)` with features (N, H, W, channels) -> same shape.
    """

    def __init__(
        self,
        channels: int,
        *,
        window: int = 5,
        border: str = "reflect",
        init_sigma_r: float = 0.5,
        init_sigma_s: float = 1.0,
    ):
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        _check_window(window)
        _check_border(border)
        self.channels = channels
        self.window = window
        self.border = border
        self.log_sigma_r = nnx.Param(jnp.asarray(math.log(_check_positive("init_sigma_r", init_sigma_r)), jnp.float32))
        self.log_sigma_s = nnx.Param(jnp.asarray(math.log(_check_positive("init_sigma_s", init_sigma_s)), jnp.float32))

    @property
    def sigma_r(self) -> jnp.ndarray:
        """Current range bandwidth sigma_r (in feature units)."""
        return jnp.exp(self.log_sigma_r[...])

    @property
    def sigma_s(self) -> jnp.ndarray:
        """Current spatial bandwidth sigma_s (in pixels)."""
        return jnp.exp(self.log_sigma_s[...])

    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        if features.ndim != 4 or features.shape[-1] != self.channels:
            raise ValueError(f"features must be (N, H, W, {self.channels}), got shape {features.shape}")
        return edge_preserving_attention(
            features, self.log_sigma_r[...], self.log_sigma_s[...], window=self.window, border=self.border
        )


class GatedEdgeAttention(nnx.Module):
    """Eq. 5: O = W1 * F_hat + (1 - W1) * C(F), gated by past generator outputs.

    - F_hat = `EdgePreservingAttention` of F (eq. 3-4);
    - C(F): "the features after a normal convolutional operation": one 3x3
      conv (channels -> channels, bias, reflection padding);
    - W1 = sigmoid(gate_net([F, x^{n-1}, ..., x^{n-m}])): the paper's gate
      estimation network "takes as input the features F and the output of the
      restoration network during the previous m iterations"; its structure is
      not given. Here: concatenate F with the m past outputs along channels,
      3x3 conv -> gate_hidden, LeakyReLU(0.2), 3x3 conv -> channels, sigmoid
      (reflection padding), so W1 is per pixel and per channel, in (0, 1).
      (Algorithm 1 lists x^{n-1} .. x^{n-m+1}, i.e. m - 1 outputs; the text
      says m. `history` is the number of past outputs actually passed.)

    Call: `gated(features, history)`
      features: (N, H, W, channels), the generator's penultimate features.
      history: (history, N, H, W, image_channels), the generator's outputs of
        the previous iterations, newest first (index 0 = x^{n-1}), exactly the
        buffer of `ring_buffer_init` / `ring_buffer_push`; zeros for
        iterations that do not exist yet (the start of the run). The history is
        treated as a constant (`lax.stop_gradient`): past outputs are data, only
        the current iteration's parameters are trained.
      returns: O, (N, H, W, channels).
    """

    def __init__(
        self,
        channels: int,
        *,
        image_channels: int,
        window: int = 5,
        history: int = 3,
        gate_hidden: int = 16,
        border: str = "reflect",
        init_sigma_r: float = 0.5,
        init_sigma_s: float = 1.0,
        rngs: nnx.Rngs,
    ):
        for name, value in (("image_channels", image_channels), ("history", history), ("gate_hidden", gate_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.channels = channels
        self.image_channels = image_channels
        self.history = history
        self.attention = EdgePreservingAttention(
            channels, window=window, border=border, init_sigma_r=init_sigma_r, init_sigma_s=init_sigma_s
        )
        conv = functools.partial(nnx.Conv, kernel_size=(3, 3), padding="REFLECT",
                                 conv_general_dilated=conv_general_dilated, rngs=rngs)
        self.conv = conv(channels, channels)
        self.gate_conv1 = conv(channels + history * image_channels, gate_hidden)
        self.gate_conv2 = conv(gate_hidden, channels)

    def gate(self, features: jnp.ndarray, history: jnp.ndarray) -> jnp.ndarray:
        """W1 in (0, 1), (N, H, W, channels), from the features and the history buffer."""
        self._check_inputs(features, history)
        past = jnp.moveaxis(lax.stop_gradient(history), 0, -2)  # (N, H, W, m, C_img), newest first
        past = past.reshape(*features.shape[:3], self.history * self.image_channels)
        hidden = nnx.leaky_relu(self.gate_conv1(jnp.concatenate([features, past], axis=-1)), negative_slope=0.2)
        return nnx.sigmoid(self.gate_conv2(hidden))

    def __call__(self, features: jnp.ndarray, history: jnp.ndarray) -> jnp.ndarray:
        w1 = self.gate(features, history)
        return w1 * self.attention(features) + (1.0 - w1) * self.conv(features)

    def _check_inputs(self, features, history) -> None:
        if features.ndim != 4 or features.shape[-1] != self.channels:
            raise ValueError(f"features must be (N, H, W, {self.channels}), got shape {features.shape}")
        expected = (self.history, *features.shape[:3], self.image_channels)
        if history.shape != expected:
            raise ValueError(
                f"history must be (history, N, H, W, image_channels) = {expected} (newest output first), "
                f"got shape {history.shape}"
            )


def ring_buffer_init(m: int, shape: tuple[int, ...], *, dtype=jnp.float32) -> jnp.ndarray:
    """An empty history of the last m outputs of shape `shape`: zeros (m, *shape).

    Zeros stand for the outputs of iterations before the first one.
    """
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be a positive int, got {m!r}")
    return jnp.zeros((m, *tuple(shape)), dtype)


def ring_buffer_push(buffer: jnp.ndarray, x: jnp.ndarray) -> jnp.ndarray:
    """Returns the history with `x` as the newest entry (index 0).

    buffer: (m, *shape), index 0 the newest, m - 1 the oldest; x: shape.
    Every entry moves one index up and the oldest is dropped, so after pushes
    x_1, ..., x_n the buffer holds [x_n, x_{n-1}, ..., x_{n-m+1}] (zeros where
    n < m). Pure, static shapes: usable inside jit / scan / vmap.
    """
    if x.shape != buffer.shape[1:]:
        raise ValueError(f"x must have the buffer's entry shape {buffer.shape[1:]}, got {x.shape}")
    return jnp.concatenate([x[None].astype(buffer.dtype), buffer[:-1]], axis=0)
