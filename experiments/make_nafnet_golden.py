"""Writes the NAFNet fidelity fixtures from the PyTorch reference (experiments/torch_nafnet.py; run once).

A tiny NAFNet (RGB, width 4, two levels, one block each, one middle block) as
the authors build it, with PyTorch's default init of every conv and random
LayerNorm scales / biases and block residual scales beta / gamma (at their
init, zeros, every block is the identity and the test would check nothing
but the convs around them). One forward of a batch of two 13 x 18 images
(not a multiple of 2^levels: the padding and crop are checked), the MSE to a
random target and its gradients, in float64 (`model.double()` on the same
weights), plus the float32 output. The suite checks the JAX network against it
without torch (tests/nets/test_nafnet_golden.py) and imports the .pth
(tests/models/test_torch_import.py).

  /work/torchenv/bin/python -m experiments.make_nafnet_golden
  /work/torchenv/bin/python -m experiments.make_nafnet_golden --reference /tmp/ref.npz --width 32 \
      --enc 1,1,1,28 --dec 1,1,1,1 --size 37,45     # a larger reference only (no fixtures), for
                                                    # experiments/nafnet_fidelity.py

Files:
  tests/nets/fixtures/nafnet_golden.npz: param/<state-dict name> (float32,
    PyTorch layouts), x (2, 3, 13, 18) and target float32, out and grad_x and
    grad/<name> and loss float64, out_float32, config (JSON string).
  tests/models/fixtures/nafnet_tiny.pth: torch.save({"params": state_dict}) of
    the same float32 module, as basicsr saves NAFNet's released checkpoints.
  tests/models/fixtures/pth_kinds.pth + pth_kinds.npz: a state dict of the
    tensor kinds a checkpoint may hold (float16, bfloat16, int64, bool, a
    Parameter, a transposed view and a slice sharing one storage, a scalar)
    and their values, for the restricted unpickler.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np
import torch

from experiments.torch_nafnet import NAFNet

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "nets" / "fixtures" / "nafnet_golden.npz"
PTH = ROOT / "tests" / "models" / "fixtures" / "nafnet_tiny.pth"
KINDS = ROOT / "tests" / "models" / "fixtures" / "pth_kinds.pth"
CONFIG = {"channels": 3, "width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1],
          "input_shape": [2, 3, 13, 18]}


def build(seed: int = 0):
    torch.manual_seed(seed)
    c = CONFIG
    model = NAFNet(c["channels"], c["width"], c["enc_blocks"], c["middle_blocks"], c["dec_blocks"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.uniform_(-1.0, 1.0)
            elif ".norm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.2, 0.2)
    x = torch.rand(*c["input_shape"])
    target = torch.rand(*c["input_shape"])
    return model, x, target


def kinds() -> dict:
    """A state dict of every tensor kind the unpickler must rebuild."""
    torch.manual_seed(1)
    base = torch.randn(4, 6)
    return collections.OrderedDict(
        half=torch.randn(3, 2).half(), bfloat=torch.randn(5).bfloat16(), long=torch.arange(-3, 4),
        flags=torch.tensor([True, False, True]), param=torch.nn.Parameter(torch.randn(2, 3)),
        base=base, transposed=base.t(), rows=base[1:3], column=base[:, 2], scalar=torch.tensor(2.5),
        double=torch.randn(2, 2, dtype=torch.float64))


def reference(out: Path, width: int, enc: list[int], dec: list[int], size: list[int], seed: int = 0):
    """Only the float64 reference of a NAFNet of another size (not committed: too large for the suite)."""
    CONFIG.update(width=width, enc_blocks=enc, dec_blocks=dec, input_shape=[1, CONFIG["channels"], *size])
    model, x, target = build(seed)
    arrays = {f"param/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    model = model.double()
    x64 = x.double().requires_grad_(True)
    y = model(x64)
    loss = (y - target.double()).pow(2).mean()
    loss.backward()
    arrays.update({f"grad/{k}": p.grad.numpy().copy() for k, p in model.named_parameters()})
    arrays.update(x=x.numpy(), target=target.numpy(), out=y.detach().numpy(), grad_x=x64.grad.numpy(),
                  loss=np.float64(loss.item()), config=np.array(json.dumps(CONFIG)))
    np.savez(out, **arrays)
    print(f"wrote {out}: {sum(v.numel() for v in model.parameters())} parameters, loss {loss.item():.6g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="write only a float64 reference of another size here")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--enc", default="1,1,1,28")
    parser.add_argument("--dec", default="1,1,1,1")
    parser.add_argument("--size", default="37,45")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    if args.reference is not None:
        ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
        return reference(args.reference, args.width, ints(args.enc), ints(args.dec), ints(args.size))
    model, x, target = build()
    arrays = {f"param/{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out32 = model(x)
    PTH.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": model.state_dict()}, PTH)
    model64 = model.double()
    x64 = x.double().requires_grad_(True)
    out = model64(x64)
    loss = (out - target.double()).pow(2).mean()
    loss.backward()
    arrays.update({f"grad/{k}": p.grad.numpy().copy() for k, p in model64.named_parameters()})
    arrays.update(x=x.numpy(), target=target.numpy(), out=out.detach().numpy(), out_float32=out32.numpy(),
                  grad_x=x64.grad.numpy(), loss=np.float64(loss.item()), config=np.array(json.dumps(CONFIG)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **{k: np.asarray(v) for k, v in arrays.items()})

    state = kinds()
    torch.save({"state_dict": state, "epoch": 3, "note": "kinds"}, KINDS)
    np.savez_compressed(KINDS.with_suffix(".npz"),
                        **{k: (v.detach().float() if v.dtype == torch.bfloat16 else v.detach()).numpy()
                           for k, v in state.items()})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes), {PTH} ({PTH.stat().st_size} bytes), {KINDS} "
          f"({KINDS.stat().st_size} bytes); torch {torch.__version__}; "
          f"{sum(v.numel() for v in model.parameters())} parameters, loss {loss.item():.6g}")


if __name__ == "__main__":
    main()
