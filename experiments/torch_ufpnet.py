"""UFPNet (Fang et al. 2023) in PyTorch, written from the facts of the authors' public code
(Fangzhenxuan/UFPDeblur), for the fidelity fixtures only.

Not part of the package (torch is never a dependency): `make_ufpnet_golden.py`
imports it. The facts, read from their `basicsr/models/archs/UFPNet_code_uncertainty_arch.py`,
`Flow_arch.py`, `my_module.py` and `arch_util.py` (read, not copied), and their
test options (`options/test/GoPro/UFPNet-GoPro.yml`: width 64, enc_blk_nums
[1, 1, 1, 28], middle 1, dec [1, 1, 1, 1]):

- ``UFPNet_code_uncertainty``: ``kernel_extra`` = code_extra_mean_var(19),
  ``flow`` = KernelPrior(n_blocks 5, input_size 361, hidden 25, n_hidden 1,
  kernel_size 19), then NAFNet's ``intro`` / ``encoders`` / ``downs`` /
  ``middle_blks`` / ``ups`` / ``decoders`` / ``ending`` plus ``kernel_down``
  (one 2x2 stride-2 conv 361 -> 361 per encoder level). An encoder level with
  exactly ONE block is a ``NAFBlock_kernel`` (kernel-conditioned) and is followed
  by ``kernel = kernel_down[i](kernel)``; other levels are plain NAFBlocks.
- forward: the input reflect-padded at the bottom / right to a multiple of
  2^levels; under no_grad: (code, var) = kernel_extra(inp); code standardised
  over its 19 x 19 taps per pixel ((c - mean) / std, unbiased std, no epsilon);
  code * sqrt(1 - var^2) + randn * var; flow.inverse then post_process
  (sigmoid, (s - alpha) / (1 - 2 alpha), times normalization; nothing else);
  kernel (B * H * W, 1, 19, 19) -> (B, H*W, 19, 19) -> permute(0, 2, 3, 1) ->
  reshape (B, 361, H, W) (channel a * 19 + b = tap (a, b)). Then NAFNet with
  the kernel map; ending(x) + inp, clamp to [0, 1], crop. Returns [kernels, image].
- NAFBlock_kernel: x = kernel_atttion(inp, kernel) (their spelling), then
  NAFBlock's body on x, but y = inp + body * beta (the residual from inp).
  kernel_attention: a = conv_1(inp) (conv3x3 + GELU); b = conv_kernel(kernel)
  (conv3x3 361 -> c, GELU, conv3x3, GELU); att = conv_2(cat(a, b)) (conv3x3 2c -> c,
  Sigmoid); out = a * att + inp.
- code_extra_mean_var: Encoding_Block1 (3 -> 64), Encoding_Block2 (64 -> 128):
  Conv_head conv3x3, ResBlock1, ResBlock2, ReLU (= skip), downsample conv3x3
  stride 2 padding 1; ResBlock: body = Sequential(ReLU, conv3x3, ReLU, conv3x3), + input;
  Conv_mid: body = 5 x (conv3x3, ReLU), 128 -> 256; Decoding_Block1 (256 -> 128),
  Decoding_Block2 (128 -> 64): Conv_t = ConvTranspose2d(3, stride 2, padding 1)
  with output_size = the skip's, cat(up, skip), Conv_head conv3x3 2c -> c,
  ResBlock1, ResBlock2, ReLU; Conv_tail (kernel_extra_conv_tail_mean_var):
  mean = Sequential(conv3x3 64 -> 64, ReLU, conv3x3 64 -> 361), Softmax2d (over
  channels), reshape (B, 19, 19, H*W) -> permute (B, H*W, 19, 19); var =
  Sequential(conv3x3, ReLU, conv3x3 64 -> 361, Sigmoid), the same reshape, mean
  over the 19 x 19 taps (one sigma per pixel), repeated over the taps.
- KernelPrior (FKP): buffers kernel_size, alpha (1e-6), normalization (1),
  base_dist_mean / var; net = FlowSequential(5 x [LinearMaskedCoupling, BatchNorm]);
  masks arange(d) % 2, flipped after each coupling (buffer ``mask``);
  s_net = Linear(d, h), Tanh, Linear(h, h), Tanh, Linear(h, d); t_net a deepcopy
  of s_net (the same initial weights) with the Tanh replaced by ReLU;
  inverse: x = mu + (1 - mask) * (u * exp(s(mu)) + t(mu)) with mu = u * mask.
  BatchNorm: log_gamma, beta (zeros), running_mean (0), running_var (1),
  eps 1e-5; inverse (eval) x = (y - beta) exp(-log_gamma) sqrt(var + eps) + mean.
- Initialisation: PyTorch's defaults everywhere (no init calls).

Generalised only where jaxdeblur is (defaults = the authors'): the kernel
size, the flow's hidden width, the code net's widths / middle, and a
`noise` argument for the code noise (their randn_like; zeros here for the
comparison). Module and attribute names, and so state-dict names, are theirs.
Not reproduced: the test-time local converter (UFPNet_code_uncertainty_Local).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from experiments.torch_nafnet import LayerNorm2d, NAFBlock, SimpleGate  # noqa: F401  (the same NAFNet pieces)


# ----- the flow prior (FKP's KernelPrior) -----
class LinearMaskedCoupling(nn.Module):
    def __init__(self, input_size, hidden_size, n_hidden, mask):
        super().__init__()
        self.register_buffer("mask", mask)
        s_net = [nn.Linear(input_size, hidden_size)]
        for _ in range(n_hidden):
            s_net += [nn.Tanh(), nn.Linear(hidden_size, hidden_size)]
        s_net += [nn.Tanh(), nn.Linear(hidden_size, input_size)]
        self.s_net = nn.Sequential(*s_net)
        self.t_net = copy.deepcopy(self.s_net)
        for i in range(len(self.t_net)):
            if not isinstance(self.t_net[i], nn.Linear):
                self.t_net[i] = nn.ReLU()

    def inverse(self, u):
        mu = u * self.mask
        log_s, t = self.s_net(mu), self.t_net(mu)
        return mu + (1 - self.mask) * (u * log_s.exp() + t)


class BatchNorm(nn.Module):
    def __init__(self, input_size, momentum=0.9, eps=1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.log_gamma = nn.Parameter(torch.zeros(input_size))
        self.beta = nn.Parameter(torch.zeros(input_size))
        self.register_buffer("running_mean", torch.zeros(input_size))
        self.register_buffer("running_var", torch.ones(input_size))

    def inverse(self, y):  # evaluation mode (UFPNet's generate_k calls model.eval())
        return (y - self.beta) * torch.exp(-self.log_gamma) * torch.sqrt(self.running_var + self.eps) + self.running_mean


class FlowSequential(nn.Sequential):
    def inverse(self, u):
        for module in reversed(self):
            u = module.inverse(u)
        return u


class KernelPrior(nn.Module):
    def __init__(self, n_blocks, input_size, hidden_size, n_hidden, kernel_size=0, alpha=1e-6, normalization=1):
        super().__init__()
        self.register_buffer("kernel_size", torch.ones(1) * kernel_size)
        self.register_buffer("alpha", torch.ones(1) * alpha)
        self.register_buffer("normalization", torch.ones(1) * normalization)
        self.register_buffer("base_dist_mean", torch.zeros(input_size))
        self.register_buffer("base_dist_var", torch.ones(input_size))
        modules, mask = [], torch.arange(input_size).float() % 2
        for _ in range(n_blocks):
            modules += [LinearMaskedCoupling(input_size, hidden_size, n_hidden, mask), BatchNorm(input_size)]
            mask = 1 - mask
        self.net = FlowSequential(*modules)

    def post_process(self, x):
        k = int(self.kernel_size)
        x = x.view(x.shape[0], 1, k, k)
        return (torch.sigmoid(x) - self.alpha) / (1 - 2 * self.alpha) * self.normalization


# ----- the kernel-code network (code_extra_mean_var) -----
class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x):
        return self.body(x) + x


class kernel_extra_Encoding_Block(nn.Module):  # noqa: N801 (their names)
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.Conv_head = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.ResBlock1, self.ResBlock2 = ResBlock(out_ch), ResBlock(out_ch)
        self.downsample = nn.Conv2d(out_ch, out_ch, 3, stride=2, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        skip = self.act(self.ResBlock2(self.ResBlock1(self.Conv_head(x))))
        return self.downsample(skip), skip


class kernel_extra_conv_mid(nn.Module):  # noqa: N801
    def __init__(self, in_ch, out_ch, convs=5):
        super().__init__()
        layers = []
        for i in range(convs):
            layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, 1, 1), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class kernel_extra_Decoding_Block(nn.Module):  # noqa: N801
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.Conv_t = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1)
        self.Conv_head = nn.Conv2d(out_ch * 2, out_ch, 3, 1, 1)
        self.ResBlock1, self.ResBlock2 = ResBlock(out_ch), ResBlock(out_ch)
        self.act = nn.ReLU()

    def forward(self, x, skip):
        x = self.Conv_t(x, output_size=list(skip.shape))
        x = self.Conv_head(torch.cat([x, skip], dim=1))
        return self.act(self.ResBlock2(self.ResBlock1(x)))


class kernel_extra_conv_tail_mean_var(nn.Module):  # noqa: N801
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.mean = nn.Sequential(nn.Conv2d(in_ch, in_ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.var = nn.Sequential(nn.Conv2d(in_ch, in_ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(in_ch, out_ch, 3, 1, 1),
                                 nn.Sigmoid())
        self.kernel_size = int(round(out_ch**0.5))

    def forward(self, x):
        k = self.kernel_size
        mean = torch.softmax(self.mean(x), dim=1)  # Softmax2d: over the channels
        b, _, h, w = mean.shape
        mean = mean.reshape(b, k, k, h * w).permute(0, 3, 1, 2)
        var = self.var(x).reshape(b, k, k, h * w).permute(0, 3, 1, 2)
        var = var.mean(dim=[2, 3], keepdim=True).repeat(1, 1, k, k)
        return mean, var


class code_extra_mean_var(nn.Module):  # noqa: N801
    def __init__(self, kernel_size, channels=3, widths=(64, 128), middle=256, middle_convs=5):
        super().__init__()
        c1, c2 = widths
        self.kernel_size = kernel_size
        self.Encoding_Block1 = kernel_extra_Encoding_Block(channels, c1)
        self.Encoding_Block2 = kernel_extra_Encoding_Block(c1, c2)
        self.Conv_mid = kernel_extra_conv_mid(c2, middle, middle_convs)
        self.Decoding_Block1 = kernel_extra_Decoding_Block(middle, c2)
        self.Decoding_Block2 = kernel_extra_Decoding_Block(c2, c1)
        self.Conv_tail = kernel_extra_conv_tail_mean_var(c1, kernel_size * kernel_size)

    def forward(self, x):
        x, skip1 = self.Encoding_Block1(x)
        x, skip2 = self.Encoding_Block2(x)
        x = self.Conv_mid(x)
        x = self.Decoding_Block2(self.Decoding_Block1(x, skip2), skip1)
        return self.Conv_tail(x)


# ----- the kernel-conditioned NAFNet -----
class kernel_attention(nn.Module):  # noqa: N801
    def __init__(self, kernel_size, in_ch, out_ch):
        super().__init__()
        self.conv_1 = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.GELU())
        self.conv_kernel = nn.Sequential(nn.Conv2d(kernel_size * kernel_size, out_ch, 3, 1, 1), nn.GELU(),
                                         nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.GELU())
        self.conv_2 = nn.Sequential(nn.Conv2d(out_ch * 2, out_ch, 3, 1, 1), nn.Sigmoid())

    def forward(self, x, kernel):
        a = self.conv_1(x)
        att = self.conv_2(torch.cat([a, self.conv_kernel(kernel)], dim=1))
        return a * att + x


class NAFBlock_kernel(NAFBlock):  # noqa: N801
    def __init__(self, c, kernel_size=21):
        super().__init__(c)
        self.kernel_atttion = kernel_attention(kernel_size, in_ch=c, out_ch=c)

    def forward(self, inp, kernel):
        x = self.kernel_atttion(inp, kernel)
        x = self.sg(self.conv2(self.conv1(self.norm1(x))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class UFPNet_code_uncertainty(nn.Module):  # noqa: N801
    def __init__(self, img_channel=3, width=64, middle_blk_num=1, enc_blk_nums=(1, 1, 1, 28),
                 dec_blk_nums=(1, 1, 1, 1), kernel_size=19, flow_hidden=25, code_widths=(64, 128), code_middle=256,
                 code_middle_convs=5):
        super().__init__()
        self.kernel_size = kernel_size
        self.kernel_extra = code_extra_mean_var(kernel_size, img_channel, code_widths, code_middle, code_middle_convs)
        self.flow = KernelPrior(5, kernel_size**2, flow_hidden, 1, kernel_size=kernel_size)
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders, self.decoders = nn.ModuleList(), nn.ModuleList()
        self.middle_blks = nn.ModuleList()
        self.ups, self.downs, self.kernel_down = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            if num == 1:
                self.encoders.append(nn.Sequential(NAFBlock_kernel(chan, kernel_size=kernel_size)))
            else:
                self.encoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            self.kernel_down.append(nn.Conv2d(kernel_size**2, kernel_size**2, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[NAFBlock(chan) for _ in range(middle_blk_num)])
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chan) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def check_image_size(self, x):
        h, w = x.shape[2:]
        m = self.padder_size
        return F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="reflect")

    def codes(self, inp):
        """(standardised mean codes (B, H*W, k, k), sigma (B, H*W, k, k)) of the padded input."""
        code, var = self.kernel_extra(inp)
        code = (code - torch.mean(code, dim=[2, 3], keepdim=True)) / torch.std(code, dim=[2, 3], keepdim=True)
        return code, var

    def kernels(self, inp, noise=None):
        """Kernels (B, H*W, k, k) of the padded input (their no_grad block, here differentiable)."""
        code, sigma = self.codes(inp)
        noise = torch.zeros_like(code) if noise is None else noise
        z = code * torch.sqrt(1 - torch.square(sigma)) + noise * sigma
        self.flow.eval()
        k = self.flow.post_process(self.flow.net.inverse(z.reshape(z.shape[0] * z.shape[1], -1)))
        return k.reshape(code.shape[0], code.shape[1], self.kernel_size, self.kernel_size)

    def deblur(self, inp, kernel_blur):
        """The NAFNet part on the padded input and its kernels (B, H*W, k, k): unclamped."""
        b, _, h, w = inp.shape
        kernel = kernel_blur.permute(0, 2, 3, 1).reshape(b, self.kernel_size**2, h, w)
        x, encs = self.intro(inp), []
        for encoder, down, kernel_down in zip(self.encoders, self.downs, self.kernel_down):
            if len(encoder) == 1:
                x = encoder[0](x, kernel)
                kernel = kernel_down(kernel)
            else:
                x = encoder(x)
            encs.append(x)
            x = down(x)
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, encs[::-1]):
            x = decoder(up(x) + skip)
        return self.ending(x) + inp

    def forward(self, inp, noise=None):
        h, w = inp.shape[2:]
        inp = self.check_image_size(inp)
        with torch.no_grad():
            kernel_blur = self.kernels(inp, noise)
        x = torch.clamp(self.deblur(inp, kernel_blur), 0.0, 1.0)
        return [kernel_blur, x[:, :, :h, :w]]
