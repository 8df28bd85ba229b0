"""Writes the UFPNet fidelity fixtures from the PyTorch reference (experiments/torch_ufpnet.py; run once).

A tiny UFPNet_code_uncertainty as the authors build it (RGB, NAFNet width 4,
encoder [1, 1] (both levels kernel-conditioned, as every one-block level of
theirs), middle 1, decoder [1, 1]; 3 x 3 kernels; flow hidden width 8; code net
widths (2, 4), middle 2 convs at 4) with PyTorch's default init, random
LayerNorm scales / biases, NAFNet beta / gamma and flow batch-norm parameters and
running statistics (zeros / ones at their init: the identity), and the kernel
attention's first conv on the kernel map 20 x larger (taps of ~1 / 9 barely move
the output otherwise), the code heads' hidden biases positive (2 ReLU channels
die easily: codes constant over the image). On one random
14 x 18 image (reflect-padded to 16 x 20 inside), in float64 (`model.double()`):

- the standardised mean codes, sigma and the kernel field (code noise zero),
  and the gradients of the MSE of the kernels to random kernels w.r.t. the code
  net's and the flow's parameters (their forward computes the kernels under
  no_grad; the reference module here lets them be differentiated);
- the restoration (unclamped and clamped, cropped), and the gradients of the
  unclamped restoration's MSE to a random target w.r.t. the deblurring
  network's parameters and the image (kernels held fixed, as their no_grad);
- the float32 kernels and restoration.

  /work/torchenv/bin/python -m experiments.make_ufpnet_golden
  /work/torchenv/bin/python -m experiments.make_ufpnet_golden --reference /tmp/ufp_paper.npz --paper
      # the authors' full network (width 64, [1, 1, 1, 28], 19 x 19 kernels, hidden 25, code net
      # (64, 128) / 5 x 256: 80 M parameters) on a 1 x 3 x 64 x 64 image, not committed, for
      # experiments/ufpnet_fidelity.py

Files:
  tests/nets/fixtures/ufpnet_golden.npz: param/<state-dict name> (float32, PyTorch
    layouts, buffers included), x, target, target_kernels (float32), codes, sigma,
    kernels, restored, restored_clamped, grad/<name>, grad_x, loss_kernels,
    loss_restored (float64), kernels_float32, restored_float32, config (JSON).
  tests/models/fixtures/ufpnet_tiny.pth: torch.save({"params": state_dict}) of the
    same float32 module (basicsr's format, as their net_g_latest.pth).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from experiments._golden import golden_arguments, write_arrays
from experiments.torch_ufpnet import UFPNet_code_uncertainty

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "nets" / "fixtures" / "ufpnet_golden.npz"
PTH = ROOT / "tests" / "models" / "fixtures" / "ufpnet_tiny.pth"
TINY = {"img_channel": 3, "width": 4, "middle_blk_num": 1, "enc_blk_nums": [1, 1], "dec_blk_nums": [1, 1],
        "kernel_size": 3, "flow_hidden": 8, "code_widths": [2, 4], "code_middle": 4, "code_middle_convs": 2,
        "input_shape": [1, 3, 14, 18]}
PAPER = {"img_channel": 3, "width": 64, "middle_blk_num": 1, "enc_blk_nums": [1, 1, 1, 28],
         "dec_blk_nums": [1, 1, 1, 1], "kernel_size": 19, "flow_hidden": 25, "code_widths": [64, 128],
         "code_middle": 256, "code_middle_convs": 5, "input_shape": [1, 3, 64, 64]}


def build(config: dict, seed: int = 0):
    torch.manual_seed(seed)
    model = UFPNet_code_uncertainty(**{k: v for k, v in config.items() if k != "input_shape"})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")) and not name.startswith("flow."):
                p.uniform_(-1.0, 1.0)
            elif ".norm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.2, 0.2)
            elif name.startswith("flow.") and name.endswith(("log_gamma", "beta")):
                p.uniform_(-0.3, 0.3)
            elif "kernel_atttion.conv_kernel.0.weight" in name:  # kernel maps of ~1 / k^2: make them matter
                p.mul_(20.0)
            elif name.startswith("kernel_extra.Conv_tail.") and name.endswith(".0.bias"):
                p.uniform_(0.3, 0.6)  # the heads' hidden ReLUs alive (2 channels die easily)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.uniform_(-0.5, 0.5)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    shape = config["input_shape"]
    x, target = torch.rand(*shape), torch.rand(*shape)
    m = model.padder_size
    hw = (shape[2] + (-shape[2]) % m) * (shape[3] + (-shape[3]) % m)
    target_kernels = torch.rand(shape[0], hw, config["kernel_size"], config["kernel_size"]) / config["kernel_size"] ** 2
    return model, x, target, target_kernels


def run(model, x, target, target_kernels, dtype):
    model = model.to(dtype)
    model.zero_grad(set_to_none=True)
    h, w = x.shape[2:]
    xg = x.to(dtype).requires_grad_(True)
    inp = model.check_image_size(xg)
    codes, sigma = model.codes(inp.detach())
    kernels = model.kernels(inp.detach())
    loss_k = (kernels - target_kernels.to(dtype)).pow(2).mean()
    loss_k.backward()
    restored = model.deblur(inp, kernels.detach())[:, :, :h, :w]
    loss_r = (restored - target.to(dtype)).pow(2).mean()
    loss_r.backward()
    with torch.no_grad():
        kernels_fwd, clamped = model(x.to(dtype))
    assert torch.equal(kernels_fwd, kernels.detach()), "forward and the differentiable pieces disagree"
    b = x.shape[0]
    out = {"codes": codes.detach().reshape(b, *inp.shape[2:], -1).numpy().copy(),
           "sigma": sigma.detach()[:, :, 0, 0].reshape(b, *inp.shape[2:]).numpy().copy(),
           "kernels": kernels.detach().reshape(b, *inp.shape[2:], *kernels.shape[2:]).numpy().copy(),
           "restored": restored.detach().numpy().copy(), "restored_clamped": clamped.numpy().copy(),
           "grad_x": xg.grad.numpy().copy(), "loss_kernels": np.float64(loss_k.item()),
           "loss_restored": np.float64(loss_r.item())}
    out.update({f"grad/{k}": p.grad.numpy().copy() for k, p in model.named_parameters() if p.grad is not None})
    return out


def main():
    args = golden_arguments(__doc__)
    torch.use_deterministic_algorithms(True)
    config = PAPER if args.paper else TINY
    model, x, target, target_kernels = build(config)
    arrays = {f"param/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if args.reference is None:
        PTH.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"params": model.state_dict()}, PTH)
        with torch.no_grad():
            k32 = model.kernels(model.check_image_size(x))
            r32 = model.deblur(model.check_image_size(x), k32)[:, :, :x.shape[2], :x.shape[3]]
        arrays.update(kernels_float32=k32.reshape(x.shape[0], -1, *k32.shape[2:]).numpy(), restored_float32=r32.numpy())
    result = run(model, x, target, target_kernels, torch.float64)
    missing = [k for k, _ in model.named_parameters() if f"grad/{k}" not in result]
    arrays.update(result)
    arrays.update(x=x.numpy(), target=target.numpy(), target_kernels=target_kernels.numpy(),
                  config=np.array(json.dumps(config)))
    path = write_arrays(args.reference or OUT, arrays, compressed=args.reference is None)
    n = sum(v.numel() for v in model.parameters())
    print(f"wrote {path} ({path.stat().st_size} bytes){'' if args.reference else f', {PTH} ({PTH.stat().st_size} bytes)'}"
          f"; torch {torch.__version__}; {n} parameters ({len(missing)} without a gradient: {missing[:6]}), "
          f"losses {float(arrays['loss_kernels']):.6g} / {float(arrays['loss_restored']):.6g}")


if __name__ == "__main__":
    main()
