"""Writes the blur-kernel-space fidelity fixtures from the PyTorch reference (experiments/torch_kernel_space.py;
run once).

A tiny KernelWizard as the authors build it (RGB, nf 4, 1 front / 1 back
residual block, 1 extractor block, an 8-d code, a 3-level U-Net, one feature
downsampling: a code cell per 16 x 16 px; their recon trunk's 64 channels set
to nf), with PyTorch's default init and the residual blocks' 0.1 x Kaiming
weights, and random biases in the residual blocks (zeros at their init, and
would check nothing). G on a pair of random 32 x 48 images -> the code map
(2 x 3 cells), F(sharp, code) -> the re-blurred image, the MSE of that to a
random target and its gradients w.r.t. every parameter and both images, in
float64 (`model.double()` on the same weights), plus the float32 code and output.

  /work/torchenv/bin/python -m experiments.make_kernel_space_golden
  /work/torchenv/bin/python -m experiments.make_kernel_space_golden --reference /tmp/ks_paper.npz --paper
      # the authors' full network (nf 64, 10 / 20 blocks, code 512, depth 5: 49 M parameters) on a
      # 256 x 256 pair (their smallest: a 1 x 1 code map fails their reflection padding), not
      # committed, for experiments/kernel_space_fidelity.py

Files:
  tests/nets/fixtures/kernel_space_golden.npz: param/<state-dict name> (float32,
    PyTorch layouts), sharp, blurred, target (float32, NCHW), code, out, grad_sharp,
    grad_blurred, grad/<name>, loss (float64), code_float32, out_float32, config (JSON).
  tests/models/fixtures/kernel_space_tiny.pth: torch.save(state_dict) of the same
    float32 module, as the authors' trainer saves it (a bare state dict).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from experiments._golden import golden_arguments, write_arrays
from experiments.torch_kernel_space import KernelWizard

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "nets" / "fixtures" / "kernel_space_golden.npz"
PTH = ROOT / "tests" / "models" / "fixtures" / "kernel_space_tiny.pth"
TINY = {"channels": 3, "nf": 4, "front_blocks": 1, "back_blocks": 1, "code_dim": 8, "extractor_blocks": 1,
        "depth": 3, "feature_downsamples": 1, "input_shape": [1, 3, 32, 48]}
PAPER = {"channels": 3, "nf": 64, "front_blocks": 10, "back_blocks": 20, "code_dim": 512, "extractor_blocks": 4,
         "depth": 5, "feature_downsamples": 2, "input_shape": [1, 3, 256, 256]}


def build(config: dict, seed: int = 0):
    torch.manual_seed(seed)
    sizes = {k: v for k, v in config.items() if k != "input_shape"}
    model = KernelWizard(**sizes, hidden=config["nf"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".conv1.bias" in name or ".conv2.bias" in name:  # the residual blocks' zero-initialised biases
                p.uniform_(-0.1, 0.1)
    sharp, blurred, target = (torch.rand(*config["input_shape"]) for _ in range(3))
    return model, sharp, blurred, target


def run(model, sharp, blurred, target, dtype):
    """G then F in `dtype`, the MSE and its gradients: a dict of NumPy arrays."""
    model = model.to(dtype)
    model.zero_grad(set_to_none=True)
    s = sharp.to(dtype).requires_grad_(True)
    b = blurred.to(dtype).requires_grad_(True)
    code = model(s, b)
    out = model.adaptKernel(s, code)
    loss = (out - target.to(dtype)).pow(2).mean()
    loss.backward()
    result = {"code": code.detach().numpy().copy(), "out": out.detach().numpy().copy(),
              "grad_sharp": s.grad.numpy().copy(), "grad_blurred": b.grad.numpy().copy(),
              "loss": np.float64(loss.item())}
    result.update({f"grad/{k}": p.grad.numpy().copy() for k, p in model.named_parameters()})
    return result


def main():
    args = golden_arguments(__doc__)
    torch.use_deterministic_algorithms(True)
    config = PAPER if args.paper else TINY
    model, sharp, blurred, target = build(config)
    arrays = {f"param/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    if args.reference is None:
        PTH.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), PTH)
        with torch.no_grad():
            code32 = model(sharp, blurred)
            out32 = model.adaptKernel(sharp, code32)
        arrays.update(code_float32=code32.numpy(), out_float32=out32.numpy())
    arrays.update(run(model, sharp, blurred, target, torch.float64))
    arrays.update(sharp=sharp.numpy(), blurred=blurred.numpy(), target=target.numpy(),
                  config=np.array(json.dumps(config)))
    path = write_arrays(args.reference or OUT, arrays, compressed=args.reference is None)
    n = sum(v.numel() for v in model.parameters())
    print(f"wrote {path} ({path.stat().st_size} bytes){'' if args.reference else f', {PTH} ({PTH.stat().st_size} bytes)'}"
          f"; torch {torch.__version__}; {n} parameters, loss {float(arrays['loss']):.6g}")


if __name__ == "__main__":
    main()
