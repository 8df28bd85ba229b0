"""RealNVP normalising flow on blur kernels: FKP's `KernelPrior`, the motion prior of UFPNet.

A kernel k (kh, kw) (non-negative, sum 1) is flattened to d = kh * kw taps and
mapped to a latent code z in R^d with a standard normal density:

    k --pre-process--> x --[coupling, batch norm] x num_couplings--> z

Pre-process (FKP's data loader; `preprocess`): the taps are scaled by 1 / norm,
shifted by the dequantisation offset, squashed into (alpha, 1 - alpha) and
mapped through a logit:

    v = clip(k / norm + dequantization * noise, 0, 1),  noise in [0, 1) (0.5 by default)
    x = logit(alpha + (1 - 2 alpha) v)

- alpha = 1e-6 (FKP and UFPNet) keeps the logit finite at v = 0 and v = 1
  (x in [-13.8, 13.8]).
- norm (default 1.01) scales the taps into [0, 1): FKP's rule is "the largest
  tap of the sharpest training kernel + 0.01"; the sharpest motion kernel is a
  delta (tap 1), hence 1.01, so every valid kernel (taps in [0, 1]) fits, with
  room for the dequantisation noise. Taps outside are clipped (v in [0, 1]).
- dequantization (default 1 / 720, FKP's "empirical value"): the width of the
  uniform noise added to k / norm during training, so the flow models a
  density on R^d instead of the measure-zero set of exact kernels (most taps
  are 0). `noise` = U(0, 1) draws for training; the public maps use the
  centre of the noise box, noise = 0.5.

Flow layers (the "forward" direction goes from data x to latent z):

- `MaskedAffineCoupling` (RealNVP eq. 8, as FKP): with a binary mask m
  alternating over the flattened taps (0, 1, 0, 1, ... then flipped for the
  next coupling), z = m x + (1 - m) (x - t(m x)) exp(-s(m x)); s is an MLP
  with tanh, t the same MLP with ReLU (hidden width 25; `num_hidden` extra
  hidden-to-hidden layers as FKP's `n_hidden`: the reference's n_hidden = 1 is
  Linear(d, 25) - act - Linear(25, 25) - act - Linear(25, d)). PyTorch's
  default Linear initialisation; t starts as a copy of s's initial weights
  (FKP deep-copies s_net).
  log |det dz/dx| = -sum((1 - m) s).
- `FlowBatchNorm` (RealNVP / MAF batch norm): z = exp(log_gamma) (x - mean) /
  sqrt(var + eps) + beta, log |det| = sum(log_gamma - log(var + eps) / 2).
  In training mode (use_running_average=False) mean and var are the batch's
  (unbiased variance, as FKP's torch `var(0)`; gradients flow through them)
  and the running statistics are updated as running = momentum * running +
  (1 - momentum) * batch (momentum 0.9); in evaluation mode the running ones
  are used. The log-determinant is exact for the map with the statistics held
  constant (per sample the map is affine).

Public maps of `KernelFlow` (all batched over leading axes, jit- and
vmap-able in evaluation mode):

- `log_prob(k)`: log density of the (centred-dequantised) kernel in KERNEL
  space: log N(z; 0, I) + log |det dz/dx| + log |det dx/dk|, in nats per kernel;
  obeys the module's mode (`model.train()` / `model.eval()`), like BatchNorm.
  FKP reports the logit-space value (without log |det dx/dk|, a term that
  does not depend on the parameters, so both give the same gradients).
- `encode(k) -> z`, `decode(z) -> k`, `sample(key, n)`: inference maps, always
  with the running statistics. `decode` post-processes as FKP (sigmoid, then
  (y - alpha) / (1 - 2 alpha), times norm), removes the centre dequantisation
  offset dequantization * norm / 2, clips negative taps to 0 and renormalises
  to sum 1 (`jaxdeblur.kernels.normalize`). So decode(encode(k)) == k for a
  valid kernel, and every decoded kernel is non-negative with sum 1.
  `raw_decode=True` decodes exactly as UFPNet's code does (FKP's post-process
  only: no offset, clipping or renormalisation), for the authors' weights.
"""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur import kernels
from jaxdeblur.nets.functional import torch_linear

_LOG_2PI = math.log(2.0 * math.pi)


def _check_kernel_size(kernel_size) -> tuple[int, int]:
    pair = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    if len(pair) != 2 or any(int(s) != s or s < 1 for s in pair) or int(pair[0]) * int(pair[1]) < 2:
        raise ValueError(f"kernel_size must be an int or (kh, kw) of positive ints with kh * kw >= 2, "
                         f"got {kernel_size!r}")
    return int(pair[0]), int(pair[1])


def _mlp(dim: int, hidden: int, num_hidden: int, activation, rngs: nnx.Rngs) -> nnx.Sequential:
    """Linear(dim, hidden) - act - [Linear(hidden, hidden) - act] * num_hidden - Linear(hidden, dim)."""
    layers = [torch_linear(dim, hidden, rngs=rngs), activation]
    for _ in range(num_hidden):
        layers += [torch_linear(hidden, hidden, rngs=rngs), activation]
    layers.append(torch_linear(hidden, dim, rngs=rngs))
    return nnx.Sequential(*layers)


class MaskedAffineCoupling(nnx.Module):
    """RealNVP affine coupling on (N, dim) with a fixed alternating mask (FKP's LinearMaskedCoupling).

    The mask keeps the taps whose flat index i has (i + parity) % 2 == 1 and
    transforms the others: z = m x + (1 - m) (x - t) exp(-s), with
    s = scale_net(m x) (tanh MLP) and t = shift_net(m x) (ReLU MLP).
    """

    def __init__(self, dim: int, *, hidden: int, num_hidden: int, parity: int, rngs: nnx.Rngs):
        self.dim = dim
        self.parity = parity
        self.scale_net = _mlp(dim, hidden, num_hidden, jnp.tanh, rngs)
        self.shift_net = _mlp(dim, hidden, num_hidden, jax.nn.relu, rngs)
        # FKP's t_net is a deepcopy of s_net: the same initial weights
        for s_layer, t_layer in zip(self.scale_net.layers, self.shift_net.layers):
            if isinstance(s_layer, nnx.Linear):
                t_layer.kernel.set_value(s_layer.kernel[...])
                t_layer.bias.set_value(s_layer.bias[...])

    def _mask(self) -> jax.Array:
        return ((jnp.arange(self.dim) + self.parity) % 2).astype(jnp.float32)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Data -> latent: (N, dim) -> ((N, dim), log |det| (N,))."""
        mask = self._mask()
        kept = x * mask
        log_s, t = self.scale_net(kept), self.shift_net(kept)
        z = kept + (1 - mask) * (x - t) * jnp.exp(-log_s)
        return z, -jnp.sum((1 - mask) * log_s, axis=-1)

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latent -> data: (N, dim) -> ((N, dim), log |det dx/dz| (N,))."""
        mask = self._mask()
        kept = z * mask
        log_s, t = self.scale_net(kept), self.shift_net(kept)
        x = kept + (1 - mask) * (z * jnp.exp(log_s) + t)
        return x, jnp.sum((1 - mask) * log_s, axis=-1)


class FlowBatchNorm(nnx.Module):
    """Invertible batch norm over the last axis of (N, dim) with an exact log-determinant (RealNVP / MAF).

    Trainable `log_gamma`, `beta` (zeros at init: the identity up to the
    statistics); running statistics `running_mean`, `running_var` are
    `nnx.BatchStat` (non-trainable state). See the module docstring for the
    training / evaluation behaviour.
    """

    def __init__(self, dim: int, *, momentum: float = 0.9, epsilon: float = 1e-5,
                 use_running_average: bool = False):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_running_average = use_running_average
        self.log_gamma = nnx.Param(jnp.zeros(dim, jnp.float32))
        self.beta = nnx.Param(jnp.zeros(dim, jnp.float32))
        self.running_mean = nnx.BatchStat(jnp.zeros(dim, jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones(dim, jnp.float32))

    def __call__(self, x: jax.Array, *, use_running_average: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """Data -> latent: (N, dim) -> ((N, dim), log |det| (N,)); updates the running statistics in training mode."""
        if use_running_average is None:
            use_running_average = self.use_running_average
        if use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
        else:
            if x.shape[0] < 2:
                raise ValueError(f"FlowBatchNorm in training mode needs a batch of >= 2 kernels, got {x.shape[0]}")
            mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0, ddof=1)
            m = self.momentum
            self.running_mean[...] = m * self.running_mean[...] + (1 - m) * jax.lax.stop_gradient(mean)
            self.running_var[...] = m * self.running_var[...] + (1 - m) * jax.lax.stop_gradient(var)
        z = jnp.exp(self.log_gamma[...]) * (x - mean) * jax.lax.rsqrt(var + self.epsilon) + self.beta[...]
        log_det = jnp.sum(self.log_gamma[...] - 0.5 * jnp.log(var + self.epsilon))
        return z, jnp.broadcast_to(log_det, x.shape[:1])

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latent -> data with the running statistics: (N, dim) -> ((N, dim), log |det dx/dz| (N,))."""
        var = self.running_var[...] + self.epsilon
        x = (z - self.beta[...]) * jnp.exp(-self.log_gamma[...]) * jnp.sqrt(var) + self.running_mean[...]
        log_det = jnp.sum(0.5 * jnp.log(var) - self.log_gamma[...])
        return x, jnp.broadcast_to(log_det, z.shape[:1])


class KernelFlow(nnx.Module):
    """RealNVP prior on (kh, kw) blur kernels (FKP / UFPNet `KernelPrior`); see the module docstring.

    Args:
      kernel_size: kh = kw (int) or (kh, kw); UFPNet uses 19.
      num_couplings: coupling layers (5), each followed by a `FlowBatchNorm` when `batch_norm`.
      hidden: width of the coupling MLPs (25).
      num_hidden: extra hidden-to-hidden layers per MLP (FKP's n_hidden, 1).
      batch_norm: insert the flow batch norms (True).
      alpha: logit squashing margin (1e-6).
      norm: tap scale of the pre-process (1.01).
      dequantization: width of the uniform dequantisation noise in units of k / norm (1 / 720).
      momentum, epsilon: of the batch norms (0.9, 1e-5).
      use_running_average: start in evaluation mode (False: training mode, as FKP's modules).
      raw_decode: `decode` as UFPNet's code: FKP's post-process only (no offset
        removal, clipping or renormalisation; module docstring).
      rngs: parameter initialisation (PyTorch's default Linear init).
    """

    def __init__(self, kernel_size=19, *, num_couplings: int = 5, hidden: int = 25, num_hidden: int = 1,
                 batch_norm: bool = True, alpha: float = 1e-6, norm: float = 1.01,
                 dequantization: float = 1.0 / 720.0, momentum: float = 0.9, epsilon: float = 1e-5,
                 use_running_average: bool = False, raw_decode: bool = False, rngs: nnx.Rngs):
        self.kernel_size = _check_kernel_size(kernel_size)
        self.raw_decode = bool(raw_decode)
        if num_couplings < 1 or hidden < 1 or num_hidden < 0:
            raise ValueError(f"need num_couplings >= 1, hidden >= 1, num_hidden >= 0; got {num_couplings}, "
                             f"{hidden}, {num_hidden}")
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        if norm <= 0:
            raise ValueError(f"norm must be > 0, got {norm}")
        if not 0.0 <= dequantization < 1.0:
            raise ValueError(f"dequantization must be in [0, 1), got {dequantization}")
        self.dim = self.kernel_size[0] * self.kernel_size[1]
        self.alpha = float(alpha)
        self.norm = float(norm)
        self.dequantization = float(dequantization)
        layers = []
        for i in range(num_couplings):
            layers.append(MaskedAffineCoupling(self.dim, hidden=hidden, num_hidden=num_hidden, parity=i % 2, rngs=rngs))
            if batch_norm:
                layers.append(FlowBatchNorm(self.dim, momentum=momentum, epsilon=epsilon,
                                            use_running_average=use_running_average))
        self.layers = nnx.List(layers)

    # ----- shapes -----
    def _flat_kernels(self, k, name: str = "k") -> jax.Array:
        k = jnp.asarray(k)
        if k.ndim < 2 or k.shape[-2:] != self.kernel_size:
            kh, kw = self.kernel_size
            raise ValueError(f"{name} must have shape (..., {kh}, {kw}), got {k.shape}")
        if not jnp.issubdtype(k.dtype, jnp.floating):
            raise TypeError(f"{name} must be floating point, got dtype {k.dtype}")
        return k.astype(jnp.promote_types(k.dtype, jnp.float32)).reshape(*k.shape[:-2], self.dim)

    def _check_codes(self, z) -> jax.Array:
        z = jnp.asarray(z)
        if z.ndim < 1 or z.shape[-1] != self.dim:
            raise ValueError(f"z must have shape (..., {self.dim}) (kh * kw latent values), got {z.shape}")
        if not jnp.issubdtype(z.dtype, jnp.floating):
            raise TypeError(f"z must be floating point, got dtype {z.dtype}")
        return z.astype(jnp.promote_types(z.dtype, jnp.float32))  # float32, or float64 kept

    # ----- pre / post process (kernel space <-> logit space), elementwise on (..., dim) -----
    def preprocess(self, k_flat: jax.Array, noise=0.5) -> tuple[jax.Array, jax.Array]:
        """Flat kernels (..., dim) -> (logits x (..., dim), log |det dx/dk| (...)); `noise` in [0, 1), broadcastable."""
        v = jnp.clip(k_flat / self.norm + self.dequantization * noise, 0.0, 1.0)
        y = self.alpha + (1 - 2 * self.alpha) * v
        x = jnp.log(y) - jnp.log1p(-y)
        log_det = jnp.sum(math.log((1 - 2 * self.alpha) / self.norm) - jnp.log(y) - jnp.log1p(-y), axis=-1)
        return x, log_det

    def postprocess(self, x: jax.Array) -> jax.Array:
        """Logits (..., dim) -> flat kernels (..., dim): FKP's post-process minus the centre dequantisation offset.

        Not clipped or renormalised (see `decode`).
        """
        v = (jax.nn.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha)
        return (v - 0.5 * self.dequantization) * self.norm

    # ----- the flow in logit space, on (N, dim) -----
    def forward(self, x: jax.Array, *, use_running_average: bool | None = None) -> tuple[jax.Array, jax.Array]:
        """Logits -> latents: (N, dim) -> ((N, dim), sum of log |det| (N,)). The batch norms follow their mode
        unless `use_running_average` is given."""
        log_det = jnp.zeros(x.shape[:1], jnp.float32)
        for layer in self.layers:
            if isinstance(layer, FlowBatchNorm):
                x, ld = layer(x, use_running_average=use_running_average)
            else:
                x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Latents -> logits with the running statistics: (N, dim) -> ((N, dim), sum of log |det dx/dz| (N,))."""
        log_det = jnp.zeros(z.shape[:1], jnp.float32)
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return z, log_det

    # ----- public maps, batched over leading axes -----
    def log_prob(self, k, *, noise=None, use_running_average: bool | None = None) -> jax.Array:
        """Log density (nats) of kernels k (..., kh, kw) in kernel space -> (...).

        The density is that of the dequantised kernel k + dequantization * norm * noise;
        `noise` (U(0, 1) draws in training, broadcastable to k) defaults to the centre 0.5.
        In training mode (the module's or `use_running_average=False`) the batch norms
        use the statistics of all kernels given (at least 2) and update their running ones.
        """
        flat = self._flat_kernels(k)
        lead = flat.shape[:-1]
        if noise is None:
            noise = 0.5
        else:
            noise = jnp.broadcast_to(jnp.asarray(noise, jnp.float32), jnp.shape(k)).reshape(flat.shape)
        x, log_det_pre = self.preprocess(flat, noise)
        z, log_det_flow = self.forward(x.reshape(-1, self.dim), use_running_average=use_running_average)
        log_base = -0.5 * jnp.sum(z**2 + _LOG_2PI, axis=-1)
        return (log_base + log_det_flow).reshape(lead) + log_det_pre

    def encode(self, k) -> jax.Array:
        """Kernels (..., kh, kw) -> latent codes (..., kh * kw), with the running statistics."""
        flat = self._flat_kernels(k)
        x, _ = self.preprocess(flat)
        z, _ = self.forward(x.reshape(-1, self.dim), use_running_average=True)
        return z.reshape(flat.shape)

    def decode(self, z) -> jax.Array:
        """Latent codes (..., kh * kw) -> kernels (..., kh, kw): non-negative, sum 1 (clipped and renormalised)."""
        z = self._check_codes(z)
        x, _ = self.inverse(z.reshape(-1, self.dim))
        if self.raw_decode:  # UFPNet's post_process: sigmoid, (s - alpha) / (1 - 2 alpha), times norm
            k = (jax.nn.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha) * self.norm
            return k.reshape(*z.shape[:-1], *self.kernel_size)
        k = self.postprocess(x).reshape(*z.shape[:-1], *self.kernel_size)
        return kernels.normalize(k)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """n kernels (n, kh, kw) decoded from standard normal codes drawn with `key`."""
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        return self.decode(jax.random.normal(key, (int(n), self.dim), jnp.float32))


__all__ = ["FlowBatchNorm", "KernelFlow", "MaskedAffineCoupling"]
