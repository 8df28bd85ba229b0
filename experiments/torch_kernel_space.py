"""Blur kernel space (Tran et al. 2021) in PyTorch, written from the facts of the authors' public code
(VinAIResearch/blur-kernel-space-exploring), for the fidelity fixtures only.

Not part of the package (torch is never a dependency): `make_kernel_space_golden.py`
imports it. The facts, read from their `models/kernel_encoding/kernel_wizard.py`,
`models/backbones/resnet.py`, `models/backbones/unet_parts.py` and
`models/arch_util.py` (read, not copied) with their training option files
(`options/kernel_encoding/*/woVAE.yml`: nf 64, front_RBs 10, back_RBs 20,
kernel_dim 512, KernelExtractor norm "none", use_sharp, n_blocks 4, reflect
padding, no dropout, Adapter norm "none", use_vae false):

- ``KernelWizard``: ``feature_extractor`` = Sequential(conv3x3 C -> nf, LReLU(0.1),
  conv3x3 stride 2, LReLU, conv3x3 stride 2, LReLU, front_RBs x ResidualBlock_noBN);
  ``kernel_extractor`` (G, the code of a pair) on both images' features;
  ``adapter`` (F's U-Net); ``recon_trunk`` = Sequential(back_RBs x ResidualBlock_noBN,
  conv3x3 nf -> 4 nf, PixelShuffle(2), LReLU(0.1), conv3x3 nf -> 64 * 4 (64 written
  out, = nf in their configs), PixelShuffle(2), LReLU, conv3x3 64 -> 64, LReLU,
  conv3x3 64 -> C). ``adaptKernel(x, k)`` = recon_trunk(adapter(features(x), k)) + x;
  ``forward(sharp, blur)`` = kernel_extractor(features(sharp), features(blur)).
- ResidualBlock_noBN: conv1, ReLU, conv2 (3x3, zero padding 1, biases), + input;
  both convs Kaiming normal (fan_in) times 0.1, zero biases.
- KernelExtractor.model = Sequential(ReflectionPad(3), conv7x7 2 nf -> nf, Identity
  (the "none" norm), ReLU, then 5 x [conv3x3 stride 2 (zero padding 1)
  min(nf 2^i, kd) -> min(nf 2^(i+1), kd), Identity, ReLU], then n_blocks x
  ResnetBlock(kd)); input: cat(sharp features, blurred features). With norm
  "none", ``use_bias = (norm_layer == InstanceNorm2d)`` is False: NO conv of
  the extractor has a bias.
- ResnetBlock: conv_block = Sequential(ReflectionPad(1), conv3x3, Identity, ReLU,
  ReflectionPad(1), conv3x3, Identity), x + conv_block(x); no biases (use_bias).
- KernelAdapter: UnetSkipConnectionBlock nested 5 deep, inner widths nf, 2 nf,
  4 nf, 8 nf, 8 nf (outermost first). Outermost: down = [conv4x4 s2 p1], up =
  [ReLU, ConvTranspose4x4 s2 p1 (2 nf -> nf, WITH bias), Tanh], out = up(sub(down(x))),
  no skip. Middle: down = [LReLU(0.2), conv4x4 s2 p1, Identity], up = [ReLU,
  ConvTranspose, Identity], out = cat(up(sub(down(x))), x). Innermost: down =
  [LReLU(0.2), conv], up = [ReLU, ConvTranspose (2 inner -> outer), Identity],
  out = cat(up(cat(down(x), code)), x). Every conv / transposed conv but the
  outermost up has no bias (use_bias False with norm "none").
- Initialisation: PyTorch's defaults, except the ResidualBlock_noBN convs.

Generalised only where jaxdeblur's network is (defaults = the authors'):
``feature_downsamples`` (2 written out), ``depth`` (5 written out),
``hidden`` (the 64 written out in the recon trunk), and the innermost up
conv's input (inner + code_dim, = 2 inner when code_dim = 8 nf as theirs).
Module and attribute names, and so state-dict names, are theirs.
"""

from __future__ import annotations

import torch
from torch import nn


def _kaiming_scaled(conv: nn.Conv2d, scale: float) -> nn.Conv2d:
    nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
    conv.weight.data *= scale
    conv.bias.data.zero_()
    return conv


class ResidualBlock_noBN(nn.Module):  # noqa: N801 (their name)
    def __init__(self, nf=64):
        super().__init__()
        self.conv1 = _kaiming_scaled(nn.Conv2d(nf, nf, 3, 1, 1, bias=True), 0.1)
        self.conv2 = _kaiming_scaled(nn.Conv2d(nf, nf, 3, 1, 1, bias=True), 0.1)

    def forward(self, x):
        return x + self.conv2(torch.relu(self.conv1(x)))


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False), nn.Identity(), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False), nn.Identity())

    def forward(self, x):
        return x + self.conv_block(x)


class KernelExtractor(nn.Module):
    def __init__(self, nf=64, kernel_dim=512, n_blocks=4, depth=5):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(2 * nf, nf, 7, padding=0, bias=False), nn.Identity(), nn.ReLU(True)]
        for i in range(depth):
            inc, ouc = min(nf * 2**i, kernel_dim), min(nf * 2 ** (i + 1), kernel_dim)
            model += [nn.Conv2d(inc, ouc, 3, stride=2, padding=1, bias=False), nn.Identity(), nn.ReLU(True)]
        model += [ResnetBlock(kernel_dim) for _ in range(n_blocks)]
        self.model = nn.Sequential(*model)

    def forward(self, sharp, blur):
        return self.model(torch.cat((sharp, blur), dim=1))


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 code_dim=None):
        super().__init__()
        self.outermost, self.innermost = outermost, innermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=False)
        if outermost:
            self.down = nn.Sequential(downconv)
            self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh())
        elif innermost:
            up_in = inner_nc + (inner_nc if code_dim is None else code_dim)
            self.down = nn.Sequential(nn.LeakyReLU(0.2, True), downconv)
            self.up = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(up_in, outer_nc, 4, 2, 1, bias=False),
                                    nn.Identity())
        else:
            self.down = nn.Sequential(nn.LeakyReLU(0.2, True), downconv, nn.Identity())
            self.submodule = submodule
            self.up = nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False),
                                    nn.Identity())

    def forward(self, x, code):
        if self.outermost:
            return self.up(self.submodule(self.down(x), code))
        if self.innermost:
            return torch.cat((self.up(torch.cat((self.down(x), code), dim=1)), x), dim=1)
        return torch.cat((self.up(self.submodule(self.down(x), code)), x), dim=1)


class KernelAdapter(nn.Module):
    def __init__(self, nf=64, depth=5, code_dim=None):
        super().__init__()
        widths = [nf * min(2**i, 8) for i in range(depth)]
        block = UnetSkipConnectionBlock(widths[-2] if depth > 1 else nf, widths[-1], innermost=True,
                                        code_dim=code_dim, input_nc=None if depth > 1 else nf)
        for i in reversed(range(1, depth - 1)):
            block = UnetSkipConnectionBlock(widths[i - 1], widths[i], submodule=block)
        if depth > 1:
            block = UnetSkipConnectionBlock(nf, widths[0], input_nc=nf, submodule=block, outermost=True)
        self.model = block

    def forward(self, x, k):
        return self.model(x, k)


class KernelWizard(nn.Module):
    """Arguments as jaxdeblur's KernelSpace (channels, nf, front_blocks, back_blocks, code_dim,
    extractor_blocks, depth, feature_downsamples) plus `hidden` (their recon trunk's 64)."""

    def __init__(self, channels=3, nf=64, front_blocks=10, back_blocks=20, code_dim=512, extractor_blocks=4,
                 depth=5, feature_downsamples=2, hidden=64):
        super().__init__()
        if depth < 2:
            raise ValueError("the authors' U-Net has an outermost and an innermost level: depth >= 2")
        lrelu = nn.LeakyReLU(negative_slope=0.1)
        features = [nn.Conv2d(channels, nf, 3, 1, 1, bias=True), lrelu]
        for _ in range(feature_downsamples):
            features += [nn.Conv2d(nf, nf, 3, 2, 1, bias=True), lrelu]
        features += [ResidualBlock_noBN(nf) for _ in range(front_blocks)]
        self.feature_extractor = nn.Sequential(*features)
        self.kernel_extractor = KernelExtractor(nf, code_dim, extractor_blocks, depth)
        self.adapter = KernelAdapter(nf, depth, code_dim)
        trunk = [ResidualBlock_noBN(nf) for _ in range(back_blocks)]
        for i in range(feature_downsamples):
            out = hidden if i == feature_downsamples - 1 else nf
            trunk += [nn.Conv2d(nf, out * 4, 3, 1, 1, bias=True), nn.PixelShuffle(2), lrelu]
        last = hidden if feature_downsamples else nf
        trunk += [nn.Conv2d(last, hidden, 3, 1, 1, bias=True), lrelu, nn.Conv2d(hidden, channels, 3, 1, 1, bias=True)]
        self.recon_trunk = nn.Sequential(*trunk)

    def adaptKernel(self, x_sharp, kernel):  # noqa: N802 (their name)
        return self.recon_trunk(self.adapter(self.feature_extractor(x_sharp), kernel)) + x_sharp

    def forward(self, x_sharp, x_blur):
        return self.kernel_extractor(self.feature_extractor(x_sharp), self.feature_extractor(x_blur))
