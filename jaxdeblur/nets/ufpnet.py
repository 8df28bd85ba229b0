"""UFPNet (Fang et al. 2023): per-pixel kernels from a flow prior, and a NAFNet conditioned on them.

`UFPNet` holds three parts (their attribute names are the parameter paths
the training stages filter on):

- ``flow``: the frozen `jaxdeblur.nets.flow.KernelFlow` prior on kh x kw kernels;
- ``code_net``: the `jaxdeblur.nets.kernel_code.KernelCodeNet`; with the flow
  it gives the kernel field (N, H, W, kh, kw) and the sigma map (N, H, W)
  (`jaxdeblur.nets.kernel_code.kernel_field`, in row chunks);
- ``deblur``: a `KernelConditionedNAFNet`, a NAFNet (`jaxdeblur.nets.nafnet`,
  its blocks reused) whose first `conditioned_levels` encoder levels see the
  kernel field as a kh * kw-channel map (channel a * kw + b = tap (a, b))
  through `KernelAttention`, the map going one level down by a 2x2
  stride-2 conv (kh kw -> kh kw channels) per level.

`KernelAttention` (the reference's kernel_attention), on features x (c
channels) and the kernel map K at their resolution:

    a = GELU(conv3x3(x));  b = GELU(conv3x3(GELU(conv3x3_{kh kw -> c}(K))))
    out = x + a * sigmoid(conv3x3_{2c -> c}([a, b]))

and, as in the reference, `out` feeds the branch of the level's first
NAFBlock while the block's residual still adds the block's input x
(``NAFBlock(x, branch_input=out)``); with NAFNet's zero-initialised beta the
kernel branch starts without effect.

`UFPNet.__call__` pads the image to a multiple of 2^levels (reflection, as
the reference), estimates the kernels on the padded image, restores it, and
crops the restoration, the field and the sigma map back.

With the authors' weights (`jaxdeblur.models.ufpnet.torch_weights`: their
code net's sigma head per tap, no epsilon in the standardisation, the flow's
raw decode) the codes, sigma, kernel field, restoration and gradients equal
their PyTorch code's (tests/nets/test_ufpnet_golden.py, experiments/ufpnet_fidelity.py).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.flow import KernelFlow
from jaxdeblur.nets.functional import torch_conv
from jaxdeblur.nets.kernel_code import Conv3x3, KernelCodeNet, kernel_field, kernels_at
from jaxdeblur.nets.nafnet import NAFNet


def _gelu(x: jax.Array) -> jax.Array:
    return jax.nn.gelu(x, approximate=False)  # PyTorch's nn.GELU (erf)


class KernelAttention(nnx.Module):
    """UFPNet's kernel attention (module docstring): features (N, h, w, c), kernel map (N, h, w, taps) -> (N, h, w, c)."""

    def __init__(self, channels: int, taps: int, *, rngs: nnx.Rngs):
        self.features = Conv3x3(channels, channels, rngs=rngs)
        self.kernel1 = Conv3x3(taps, channels, rngs=rngs)
        self.kernel2 = Conv3x3(channels, channels, rngs=rngs)
        self.gate = Conv3x3(2 * channels, channels, rngs=rngs)

    def __call__(self, x: jax.Array, kernel_map: jax.Array) -> jax.Array:
        a = _gelu(self.features(x))
        b = _gelu(self.kernel2(_gelu(self.kernel1(kernel_map))))
        return x + a * jax.nn.sigmoid(self.gate(jnp.concatenate([a, b], axis=-1)))


class KernelConditionedNAFNet(NAFNet):
    """A NAFNet whose first `conditioned_levels` encoder levels take a per-pixel kernel map (module docstring).

    Args:
      channels, width, enc_blocks, middle_blocks, dec_blocks: the NAFNet (`jaxdeblur.nets.nafnet.NAFNet`).
      taps: channels of the kernel map (kh * kw).
      conditioned_levels: encoder levels conditioned, from the first (reference 3); each needs >= 1 block.

    Call: (x (N, H, W, C), kernel_map (N, H, W, taps)) -> (N, H, W, C), unclamped.
    """

    def __init__(self, channels: int = 3, width: int = 32, enc_blocks: Sequence[int] = (1, 1, 1, 28),
                 middle_blocks: int = 1, dec_blocks: Sequence[int] = (1, 1, 1, 1), *, taps: int,
                 conditioned_levels: int = 3, rngs: nnx.Rngs):
        super().__init__(channels, width, enc_blocks, middle_blocks, dec_blocks, rngs=rngs)
        if not 0 <= conditioned_levels <= self.levels or any(n < 1 for n in enc_blocks[:conditioned_levels]):
            raise ValueError(f"conditioned_levels must be in [0, {self.levels}] with >= 1 block per conditioned level, "
                             f"got {conditioned_levels} for enc_blocks {tuple(enc_blocks)}")
        if taps < 1:
            raise ValueError(f"taps must be >= 1, got {taps}")
        self.taps = taps
        self.kernel_attention = nnx.List([KernelAttention(width * 2**level, taps, rngs=rngs)
                                          for level in range(conditioned_levels)])
        self.kernel_downs = nnx.List([torch_conv(taps, taps, 2, stride=2, rngs=rngs)
                                      for _ in range(max(conditioned_levels - 1, 0))])

    def encode_level(self, level: int, f: jax.Array, kernel_map):
        if level >= len(self.kernel_attention):
            return super().encode_level(level, f, kernel_map)
        blocks = self.encoders[level]
        f = blocks[0](f, branch_input=self.kernel_attention[level](f, kernel_map))
        for block in blocks[1:]:
            f = block(f)
        if level < len(self.kernel_downs):
            kernel_map = self.kernel_downs[level](kernel_map)
        return f, kernel_map

    def __call__(self, x: jax.Array, kernel_map: jax.Array) -> jax.Array:
        n, h, w, _ = x.shape
        if kernel_map.shape != (n, h, w, self.taps):
            raise ValueError(f"kernel_map must have shape {(n, h, w, self.taps)} for x of shape {x.shape}, "
                             f"got {kernel_map.shape}")
        m = 2**self.levels
        if h % m or w % m:  # NAFNet pads x at the bottom / right: continue the map there
            kernel_map = jnp.pad(kernel_map, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        return super().__call__(x, condition=kernel_map)


class UFPNetOutput(NamedTuple):
    """What `UFPNet` returns: restored (N, H, W, C) unclamped, kernels (N, H, W, kh, kw), sigma (N, H, W)."""

    restored: jax.Array
    kernels: jax.Array
    sigma: jax.Array


class UFPNet(nnx.Module):
    """Kernel field estimation (flow + code net) and kernel-conditioned NAFNet deblurring (module docstring).

    Args:
      flow: the kernel prior (its kernel size sets the field's; frozen by the training stages).
      channels: image channels C.
      width, enc_blocks, middle_blocks, dec_blocks, conditioned_levels: the `KernelConditionedNAFNet`
        (reference: 64, (1, 1, 1, 28), 1, (1, 1, 1, 1), 3).
      code_widths, code_middle_width, code_middle_convs, code_sigma_per_tap, code_std_eps: the `KernelCodeNet`
        (reference (64, 128), 256, 5, True, 0.0).
    """

    def __init__(self, flow: KernelFlow, *, channels: int = 3, width: int = 64,
                 enc_blocks: Sequence[int] = (1, 1, 1, 28), middle_blocks: int = 1,
                 dec_blocks: Sequence[int] = (1, 1, 1, 1), conditioned_levels: int = 3,
                 code_widths: Sequence[int] = (64, 128), code_middle_width: int = 256, code_middle_convs: int = 5,
                 code_sigma_per_tap: bool = True, code_std_eps: float = 0.0, rngs: nnx.Rngs):
        self.channels = channels
        self.flow = flow
        self.code_net = KernelCodeNet(channels, flow.kernel_size, widths=code_widths, middle_width=code_middle_width,
                                      middle_convs=code_middle_convs, sigma_per_tap=code_sigma_per_tap,
                                      std_eps=code_std_eps, rngs=rngs)
        self.deblur = KernelConditionedNAFNet(channels, width, enc_blocks, middle_blocks, dec_blocks, taps=flow.dim,
                                              conditioned_levels=conditioned_levels, rngs=rngs)

    def estimate_kernels(self, x: jax.Array, key: jax.Array | None = None, *, uncertainty: bool = True,
                         rows_per_chunk: int | None = None) -> tuple[jax.Array, jax.Array]:
        """(kernel field (N, H, W, kh, kw), sigma (N, H, W)) of images x (N, H, W, C), unpadded.

        See `jaxdeblur.nets.kernel_code.kernel_field` for key (None: no noise), uncertainty and rows_per_chunk.
        """
        return kernel_field(self.code_net, self.flow, x, key, uncertainty=uncertainty, rows_per_chunk=rows_per_chunk)

    def estimate_kernels_at(self, x: jax.Array, rows: jax.Array, cols: jax.Array, key: jax.Array | None = None, *,
                            uncertainty: bool = True) -> tuple[jax.Array, jax.Array]:
        """`estimate_kernels` at the pixels (rows, cols) (N, M) only: (kernels (N, M, kh, kw), sigma (N, M)).

        See `jaxdeblur.nets.kernel_code.kernels_at` (the training loss samples pixels this way).
        """
        return kernels_at(self.code_net, self.flow, x, rows, cols, key, uncertainty=uncertainty)

    def restore_with(self, x: jax.Array, kernels: jax.Array) -> jax.Array:
        """The deblurring net on x (N, H, W, C) given its kernel field (N, H, W, kh, kw); unclamped."""
        return self.deblur(x, kernels.reshape(*kernels.shape[:3], self.deblur.taps))

    def __call__(self, x: jax.Array, key: jax.Array | None = None, *, uncertainty: bool = True,
                 rows_per_chunk: int | None = None) -> UFPNetOutput:
        """Restores x (N, H, W, C) in [0, 1] (any H, W) and returns its kernel field and sigma map.

        A gray model (channels 1) also takes colour images (C > 1): one kernel
        field is estimated from the mean of the channels and every channel is
        restored with it (the blur is the same in every channel).
        """
        n, h, w, c = x.shape
        gray_model = self.channels == 1
        if c != self.channels and not gray_model:
            raise ValueError(f"x has {c} channels, the model takes {self.channels}")
        m = 2**self.deblur.levels
        pad = ((0, 0), (0, -h % m), (0, -w % m), (0, 0))
        padded = jnp.pad(x, pad, mode="reflect") if (h % m or w % m) else x
        guide = jnp.mean(padded, axis=-1, keepdims=True) if c > 1 and gray_model else padded
        kernels, sigma = self.estimate_kernels(guide, key, uncertainty=uncertainty, rows_per_chunk=rows_per_chunk)
        if guide is padded:
            restored = self.restore_with(padded, kernels)
        else:
            restored = jnp.concatenate([self.restore_with(padded[..., i:i + 1], kernels) for i in range(c)], axis=-1)
        if padded is x:
            return UFPNetOutput(restored, kernels, sigma)
        return UFPNetOutput(restored[:, :h, :w], kernels[:, :h, :w], sigma[:, :h, :w])


def restore(model: UFPNet, x: jax.Array, key: jax.Array | None = None, **options) -> UFPNetOutput:
    """`model(x, key, **options)` with the restoration clamped to [0, 1] (the inference output)."""
    out = model(x, key, **options)
    return out._replace(restored=jnp.clip(out.restored, 0.0, 1.0))


__all__ = ["KernelAttention", "KernelConditionedNAFNet", "UFPNet", "UFPNetOutput", "restore"]
