"""The good-region classifier of Yang, Wu & Sun: a ResNet whose pooling is replaced by strided convolutions.

The paper (section 3.2): "we improve the ResNet34 and adopt the strided
convolution layers instead of pooling layers" (fewer poolings: less
translation invariance, since neighbouring windows can differ in how well a
kernel is estimated from them); the output is one scalar, the probability that
a good kernel can be estimated from the patch; input 228 x 228.

`RegionCNN` with the default arguments is that network: a 7 x 7 stride-2 stem
conv, then a 3 x 3 stride-2 conv where ResNet34 has its 3 x 3 max-pool, four
stages of basic residual blocks (3, 4, 6, 3) of widths (64, 128, 256, 512)
(the first block of stages 2-4 strides by 2, its shortcut a 1 x 1 stride-2
conv + BatchNorm, as in ResNet), then the mean over positions and one linear
layer to a logit. Where the paper is silent (this library's choices): the
input is one gray channel (the estimator works on the luma), shifted to zero
mean per window (`centre_input`; the window's contrast is kept, since flat
windows are bad ones), and the final mean over positions is kept (ResNet's
global average pool: one logit for any window size; the stem's stride-2
convolutions already replace every pooling inside the network). Smaller
variants (the cpu preset) change `blocks`, `widths` and `stem_kernel`.
The convolutions are `jaxdeblur.nets.conv.conv_general_dilated` (fast
gradients on XLA:CPU).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdeblur.nets.conv import conv_general_dilated


def _conv(cin: int, cout: int, kernel: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(cin, cout, (kernel, kernel), strides=(stride, stride), padding=kernel // 2, use_bias=False,
                    conv_general_dilated=conv_general_dilated, rngs=rngs)


def _norm(c: int, momentum: float, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(c, momentum=momentum, rngs=rngs)


class BasicBlock(nnx.Module):
    """ResNet's basic block: conv3-BN-ReLU-conv3-BN + shortcut (1 x 1 conv + BN when the shape changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, *, momentum: float, rngs: nnx.Rngs):
        self.conv1 = _conv(cin, cout, 3, stride, rngs)
        self.bn1 = _norm(cout, momentum, rngs)
        self.conv2 = _conv(cout, cout, 3, 1, rngs)
        self.bn2 = _norm(cout, momentum, rngs)
        if stride != 1 or cin != cout:
            self.shortcut = _conv(cin, cout, 1, stride, rngs)
            self.shortcut_bn = _norm(cout, momentum, rngs)
        else:
            self.shortcut = None
            self.shortcut_bn = None

    def __call__(self, x: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        skip = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
        return jax.nn.relu(h + skip)


class RegionCNN(nnx.Module):
    """Window -> logit of "a good kernel can be estimated from this window" (see the module docstring).

    Args:
      blocks: basic blocks per stage (ResNet34: (3, 4, 6, 3)).
      widths: channels per stage (ResNet34: (64, 128, 256, 512)).
      stem_width: channels of the stem conv (64).
      stem_kernel: side of the stride-2 stem conv (7).
      in_channels: 1 (gray).
      centre_input: subtract each window's mean before the stem.
      momentum: BatchNorm momentum (0.9, PyTorch's 0.1).
      rngs: nnx.Rngs for the initialisation.

    Call: x (N, H, W) or (N, H, W, C) float in [0, 1] -> (N,) logits.
    BatchNorm follows the module's mode (`.train()` / `.eval()`).
    """

    def __init__(self, *, blocks: Sequence[int] = (3, 4, 6, 3), widths: Sequence[int] = (64, 128, 256, 512),
                 stem_width: int = 64, stem_kernel: int = 7, in_channels: int = 1, centre_input: bool = True,
                 momentum: float = 0.9, rngs: nnx.Rngs):
        if len(blocks) != len(widths) or not blocks or min(blocks) < 1 or min(widths) < 1:
            raise ValueError(f"blocks and widths must be equally long, non-empty and positive, got {blocks}, {widths}")
        self.in_channels = in_channels
        self.centre_input = centre_input
        self.stem = _conv(in_channels, stem_width, stem_kernel, 2, rngs)
        self.stem_bn = _norm(stem_width, momentum, rngs)
        self.down = _conv(stem_width, stem_width, 3, 2, rngs)  # ResNet's max-pool, as a strided conv
        self.down_bn = _norm(stem_width, momentum, rngs)
        layers = []
        cin = stem_width
        for stage, (n, width) in enumerate(zip(blocks, widths)):
            for b in range(n):
                layers.append(BasicBlock(cin, width, 2 if (b == 0 and stage > 0) else 1, momentum=momentum,
                                         rngs=rngs))
                cin = width
        self.layers = nnx.List(layers) if hasattr(nnx, "List") else layers
        self.head = nnx.Linear(cin, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, jnp.float32)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f"RegionCNN expects windows (N, H, W) or (N, H, W, {self.in_channels}), got {x.shape}")
        if self.centre_input:
            x = x - jnp.mean(x, axis=(1, 2, 3), keepdims=True)
        h = jax.nn.relu(self.stem_bn(self.stem(x)))
        h = jax.nn.relu(self.down_bn(self.down(h)))
        for layer in self.layers:
            h = layer(h)
        return self.head(jnp.mean(h, axis=(1, 2)))[:, 0]


__all__ = ["BasicBlock", "RegionCNN"]
