"""NAFNet in PyTorch, built from the facts in ../shared/REFERENCE.md, for side-by-side benchmarks only.

Not part of the package (torch is never a dependency): `bench_train.py`
imports it when torch is installed. Same layers, widths and block counts as
`jaxdeblur.nets.nafnet.NAFNet` (NCHW here).
"""

from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c)), eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        return (x - mu) / (var + self.eps).sqrt() * self.weight[:, None, None] + self.bias[:, None, None]


def gate(x):
    a, b = x.chunk(2, dim=1)
    return a * b


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.conv1, self.conv2 = nn.Conv2d(c, 2 * c, 1), nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.sca, self.conv3 = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.conv4, self.conv5 = nn.Conv2d(c, 2 * c, 1), nn.Conv2d(c, c, 1)
        self.beta, self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        h = gate(self.conv2(self.conv1(self.norm1(x))))
        h = h * self.sca(h.mean((2, 3), keepdim=True))
        y = x + self.conv3(h) * self.beta
        return y + self.conv5(gate(self.conv4(self.norm2(y)))) * self.gamma


class NAFNet(nn.Module):
    def __init__(self, channels=3, width=32, enc=(1, 1, 1, 28), middle=1, dec=(1, 1, 1, 1)):
        super().__init__()
        self.intro, self.ending = nn.Conv2d(channels, width, 3, padding=1), nn.Conv2d(width, channels, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[Block(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[Block(c) for _ in range(middle)])
        for n in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[Block(c) for _ in range(n)]))

    def forward(self, inp):
        x, skips = self.intro(inp), []
        for enc, down in zip(self.encoders, self.downs):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = dec(up(x) + skip)
        return self.ending(x) + inp


def train_step_fn(model, lr=1e-3, clip=0.01):
    """One NAFNet-recipe step (PSNR loss, global-norm clipping, AdamW betas (0.9, 0.9)) as a closure."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.9), weight_decay=1e-3)

    def step(blurred, sharp):
        opt.zero_grad(set_to_none=True)
        mse = (model(blurred) - sharp).pow(2).mean((1, 2, 3))
        loss = (10.0 * torch.log10(mse + 1e-8)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return float(loss)

    return step
