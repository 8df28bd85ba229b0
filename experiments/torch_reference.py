"""PyTorch reference of SelfDeblur's networks and step, for benchmarks and the golden fixture only.

Written from the facts in ../shared/REFERENCE.md (SelfDeblur, Ren et al.
2020, and its public code): the Deep Image Prior skip generator G_x with
non-local blocks, the kernel FCN G_k, one Adam with a learning rate per
network, MSE through a 'valid' 2-D convolution. Module and attribute names
follow `jaxdeblur.nets` (`levels.skip.conv.weight` <-> the Flax path
levels/skip/conv/kernel), so a state dict maps onto the Flax modules one to
one (see tests/nets/test_golden.py).

torch is NOT a dependency of jaxdeblur: this file is imported only by
experiments/bench_dip.py (when torch is installed) and by
experiments/make_golden_fixture.py. The non-local block computes the
(HW x Np) attention matrix as the original code does.

Layouts: NCHW images, OIHW conv weights, (out, in) linear weights.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2


class ConvBlock(nn.Module):
    """Reflection pad -> conv -> BatchNorm2d -> LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.leaky_relu(self.norm(self.conv(x)), LEAKY_SLOPE)


class NonLocalBlock(nn.Module):
    """Embedded dot-product non-local block: x + BN(W((theta phi^T / Np) g)), 2x2 max-pooled phi and g."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out_conv = nn.Conv2d(inner, channels, 1)
        self.out_norm = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.out_norm.weight)
        nn.init.zeros_(self.out_norm.bias)

    def forward(self, x):
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)          # (N, HW, Ci)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)             # (N, Ci, Np)
        g = F.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)  # (N, Np, Ci)
        attention = theta @ phi / phi.shape[-1]                    # (N, HW, Np)
        y = (attention @ g).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.out_norm(self.out_conv(y))


def concat_center_crop(a, b):
    """DIP's Concat: crop both to the common min H, W (start (size - min) // 2), concat channels."""
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])

    def crop(t):
        top, left = (t.shape[2] - h) // 2, (t.shape[3] - w) // 2
        return t[:, :, top:top + h, left:left + w]

    return torch.cat([crop(a), crop(b)], dim=1)


class SkipLevel(nn.Module):
    """One level of the skip encoder-decoder and, recursively, the deeper ones."""

    def __init__(self, in_channels, level, down, up, skip, nonlocal_levels):
        super().__init__()
        d, u, s = down[level], up[level], skip[level]
        self.skip = ConvBlock(in_channels, s, 1) if s > 0 else None
        self.down = ConvBlock(in_channels, d, 3, stride=2)
        self.nonlocal_block = NonLocalBlock(d) if level in nonlocal_levels else None
        self.conv = ConvBlock(d, d, 3)
        self.deeper = SkipLevel(d, level + 1, down, up, skip, nonlocal_levels) if level + 1 < len(down) else None
        deeper_channels = up[level + 1] if self.deeper is not None else d
        self.concat_norm = nn.BatchNorm2d(s + deeper_channels)
        self.up = ConvBlock(s + deeper_channels, u, 3)
        self.up_1x1 = ConvBlock(u, u, 1)

    def forward(self, x):
        y = self.down(x)
        if self.nonlocal_block is not None:
            y = self.nonlocal_block(y)
        y = self.conv(y)
        if self.deeper is not None:
            y = self.deeper(y)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        if self.skip is not None:
            y = concat_center_crop(self.skip(x), y)
        return self.up_1x1(self.up(self.concat_norm(y)))


class SkipGenerator(nn.Module):
    """G_x: (N, in_channels, H, W) noise -> (N, out_channels, H, W) image in (0, 1)."""

    def __init__(self, in_channels: int = 8, out_channels: int = 1, *, channels_down: Sequence[int] = (128,) * 5,
                 channels_up: Sequence[int] = (128,) * 5, channels_skip: Sequence[int] = (16,) * 5,
                 nonlocal_levels: Sequence[int] = (2, 3, 4)):
        super().__init__()
        self.levels = SkipLevel(in_channels, 0, tuple(channels_down), tuple(channels_up), tuple(channels_skip),
                                tuple(nonlocal_levels))
        self.head = nn.Conv2d(channels_up[0], out_channels, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(self.levels(x)))


class KernelGenerator(nn.Module):
    """G_k: z (in_features,) -> Linear -> ReLU6 -> Linear -> softmax -> kernel (kh, kw)."""

    def __init__(self, kernel_size: tuple[int, int], *, in_features: int = 200, hidden: int = 1000):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.hidden_layer = nn.Linear(in_features, hidden)
        self.output_layer = nn.Linear(hidden, self.kernel_size[0] * self.kernel_size[1])

    def forward(self, z):
        logits = self.output_layer(F.relu6(self.hidden_layer(z)))
        return torch.softmax(logits, dim=-1).reshape(self.kernel_size)


def reblur_mse(latent, kernel, y):
    """MSE of y (1, C, H, W) against the 'valid' TRUE convolution of latent with kernel (jaxdeblur.blur)."""
    weight = torch.flip(kernel, (0, 1))[None, None].expand(latent.shape[1], 1, *kernel.shape)
    reblurred = F.conv2d(latent, weight.contiguous(), groups=latent.shape[1])
    return torch.mean((reblurred - y) ** 2)


class SelfDeblurReference:
    """SelfDeblur's networks, inputs and Adam for one image, configured by a `jaxdeblur` DIPConfig.

    y: (H, W) or (H, W, C) float array (the blurred image); kernel_size (kh, kw).
    `step()` runs one iteration (noise on the input, forward, MSE, backward,
    Adam); `time(iterations)` returns ms per iteration.
    """

    def __init__(self, cfg, y, kernel_size: tuple[int, int], *, seed: int = 0):
        torch.manual_seed(seed)
        y = torch.as_tensor(y, dtype=torch.float32)
        y = y[None, None] if y.ndim == 2 else y.permute(2, 0, 1)[None]
        kh, kw = kernel_size
        self.cfg, self.y = cfg, y
        self.image_net = SkipGenerator(cfg.input_channels, y.shape[1], channels_down=cfg.channels_down,
                                       channels_up=cfg.channels_up, channels_skip=cfg.channels_skip,
                                       nonlocal_levels=cfg.nonlocal_levels)
        self.kernel_net = KernelGenerator((kh, kw), in_features=cfg.kernel_code, hidden=cfg.kernel_hidden)
        h, w = y.shape[2] + kh - 1, y.shape[3] + kw - 1
        self.z_image = cfg.input_scale * torch.rand(1, cfg.input_channels, h, w)
        self.z_kernel = cfg.input_scale * torch.rand(cfg.kernel_code)
        self.optimizer = torch.optim.Adam([{"params": self.image_net.parameters(), "lr": cfg.lr_image},
                                           {"params": self.kernel_net.parameters(), "lr": cfg.lr_kernel}])

    def step(self) -> float:
        z = self.z_image + self.cfg.input_noise_std * torch.randn_like(self.z_image)
        self.optimizer.zero_grad(set_to_none=True)
        loss = reblur_mse(self.image_net(z), self.kernel_net(self.z_kernel), self.y)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def time(self, iterations: int) -> float:
        """Runs `iterations` steps; returns milliseconds per iteration."""
        t0 = time.perf_counter()
        for _ in range(iterations):
            self.step()
        return 1e3 * (time.perf_counter() - t0) / iterations
