"""NAFNet in PyTorch, checked against the authors' public code (megvii-research/NAFNet), for benchmarks and
the fidelity fixtures only.

Not part of the package (torch is never a dependency): `bench_train.py`,
`make_nafnet_golden.py` and `nafnet_fidelity.py` import it when torch is
installed. Written from the facts of the authors' `NAFNet_arch.py` and
`arch_util.LayerNorm2d` (read, not copied): the same modules, attribute names
and so the same state-dict names as their checkpoints (``encoders.0.0.conv1.weight``,
``encoders.0.0.sca.1.weight``, ``middle_blks.0.beta``, ``ups.0.0.weight``, ...),
so `load_state_dict` takes their released ``.pth`` files (``torch.load(f)["params"]``).

The facts: block = LayerNorm2d (eps 1e-6, its own backward formula), conv1
1x1 c -> 2c, conv2 3x3 depthwise (zero padding 1), SimpleGate (first half
times second), SCA = Sequential(AdaptiveAvgPool2d(1), 1x1 conv c -> c), x *
sca(x), conv3 1x1, ``y = inp + x * beta``; conv4 1x1 c -> 2c on norm2(y),
SimpleGate, conv5 1x1, ``y + x * gamma``; beta and gamma (1, c, 1, 1) zeros.
Network: the input zero-padded at the bottom / right to a multiple of
2^levels, intro 3x3 conv, per level the blocks then a 2x2 stride-2 conv
(c -> 2c), the middle blocks, per decoder level Sequential(1x1 conv c -> 2c
without bias, PixelShuffle(2)) + the skip, its blocks, ending 3x3 conv, plus
the padded input, cropped back. Every layer keeps PyTorch's default
initialisation (the arch calls no init function). The authors' test configs
wrap it as NAFNetLocal (test-time local converter: the SCA's global pool
becomes a local average pool); that is not reproduced here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _LayerNorm2dFunction(torch.autograd.Function):
    """Per-pixel LayerNorm over channels with the reference's hand-written backward pass."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + eps).sqrt()
        ctx.eps = eps
        ctx.save_for_backward(y, var, weight)
        return weight.view(1, -1, 1, 1) * y + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad_out):
        y, var, weight = ctx.saved_tensors
        g = grad_out * weight.view(1, -1, 1, 1)
        gx = (g - y * (g * y).mean(1, keepdim=True) - g.mean(1, keepdim=True)) / (var + ctx.eps).sqrt()
        return gx, (grad_out * y).sum((0, 2, 3)), grad_out.sum((0, 2, 3)), None


class LayerNorm2d(nn.Module):
    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        return _LayerNorm2dFunction.apply(x, self.weight, self.bias, self.eps)


class SimpleGate(nn.Module):
    def forward(self, x):
        first, second = x.chunk(2, dim=1)
        return first * second


class NAFBlock(nn.Module):
    def __init__(self, c, dw_expand=2, ffn_expand=2):
        super().__init__()
        dw, ffn = c * dw_expand, c * ffn_expand
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, c, 1)
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class NAFNet(nn.Module):
    """Arguments in jaxdeblur's order (channels, width, enc, middle, dec); the authors' are
    (img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums)."""

    def __init__(self, channels=3, width=32, enc=(1, 1, 1, 28), middle=1, dec=(1, 1, 1, 1)):
        super().__init__()
        self.intro = nn.Conv2d(channels, width, 3, padding=1)
        self.ending = nn.Conv2d(width, channels, 3, padding=1)
        self.encoders, self.decoders = nn.ModuleList(), nn.ModuleList()
        self.middle_blks = nn.Sequential()  # (registered here: the reference's state-dict order)
        self.ups, self.downs = nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, 2))
            c *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(c) for _ in range(middle)])
        for n in dec:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.padder_size = 2 ** len(self.encoders)

    def forward(self, inp):
        h, w = inp.shape[2:]
        m = self.padder_size
        inp = F.pad(inp, (0, (m - w % m) % m, 0, (m - h % m) % m))
        x, skips = self.intro(inp), []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, skips[::-1]):
            x = decoder(up(x) + skip)
        return (self.ending(x) + inp)[:, :, :h, :w]


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
