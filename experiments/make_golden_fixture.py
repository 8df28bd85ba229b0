"""Writes tests/nets/fixtures/selfdeblur_golden.npz from the PyTorch reference networks (run once).

A small-width SelfDeblur pair (skip generator with non-local blocks at two
levels, kernel FCN) in PyTorch (experiments/torch_reference.py), with every
BatchNorm scale and bias drawn at random (at their init the non-local blocks
are the identity and would test nothing), one forward and backward of the
reblur MSE, and one Adam step with SelfDeblur's two learning rates. The
suite checks the JAX networks against it without torch (tests/nets/test_golden.py).

  python -m experiments.make_golden_fixture

Arrays, all float32 and in PyTorch layouts (NCHW, OIHW, (out, in)):
  param/image/<name>, param/kernel/<name>   the weights (state-dict names)
  grad/image/<name>, grad/kernel/<name>     d loss / d weight at those weights
  z_image (1, 8, 26, 26), z_kernel (16,), y (1, 1, 22, 22)
  latent (1, 1, 26, 26), kernel (5, 5), loss (), loss_after_step ()
  config: the widths as a JSON string.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from experiments.torch_reference import KernelGenerator, SkipGenerator, reblur_mse

OUT = Path(__file__).resolve().parents[1] / "tests" / "nets" / "fixtures" / "selfdeblur_golden.npz"
CONFIG = {"in_channels": 8, "channels_down": [8, 8, 8], "channels_up": [8, 8, 8], "channels_skip": [4, 4, 4],
          "nonlocal_levels": [1, 2], "kernel_size": [5, 5], "kernel_code": 16, "kernel_hidden": 32,
          "lr_image": 1e-2, "lr_kernel": 1e-4, "image_size": [22, 22]}


def build(seed: int = 0):
    torch.manual_seed(seed)
    c = CONFIG
    image_net = SkipGenerator(c["in_channels"], 1, channels_down=c["channels_down"], channels_up=c["channels_up"],
                              channels_skip=c["channels_skip"], nonlocal_levels=c["nonlocal_levels"])
    kernel_net = KernelGenerator(tuple(c["kernel_size"]), in_features=c["kernel_code"], hidden=c["kernel_hidden"])
    with torch.no_grad():
        for module in image_net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    (h, w), (kh, kw) = c["image_size"], c["kernel_size"]
    z_image = 0.1 * torch.rand(1, c["in_channels"], h + kh - 1, w + kw - 1)
    z_kernel = 0.1 * torch.rand(c["kernel_code"])
    y = torch.rand(1, 1, h, w)
    return image_net, kernel_net, z_image, z_kernel, y


def main():
    torch.use_deterministic_algorithms(True)
    image_net, kernel_net, z_image, z_kernel, y = build()
    arrays = {f"param/{net}/{k}": v.detach().numpy().copy()
              for net, module in (("image", image_net), ("kernel", kernel_net))
              for k, v in module.named_parameters()}
    latent, kernel = image_net(z_image), kernel_net(z_kernel)
    loss = reblur_mse(latent, kernel, y)
    loss.backward()
    arrays.update({f"grad/{net}/{k}": v.grad.numpy().copy()
                   for net, module in (("image", image_net), ("kernel", kernel_net))
                   for k, v in module.named_parameters()})
    optimizer = torch.optim.Adam([{"params": image_net.parameters(), "lr": CONFIG["lr_image"]},
                                  {"params": kernel_net.parameters(), "lr": CONFIG["lr_kernel"]}])
    optimizer.step()
    with torch.no_grad():
        loss_after_step = reblur_mse(image_net(z_image), kernel_net(z_kernel), y)
    arrays.update(z_image=z_image.numpy(), z_kernel=z_kernel.numpy(), y=y.numpy(),
                  latent=latent.detach().numpy(), kernel=kernel.detach().numpy(),
                  loss=np.float32(loss.item()), loss_after_step=np.float32(loss_after_step.item()),
                  config=np.array(json.dumps(CONFIG)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **{k: np.asarray(v) for k, v in arrays.items()})
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(arrays)} arrays); torch {torch.__version__}, "
          f"loss {loss.item():.6g} -> {loss_after_step.item():.6g}")


if __name__ == "__main__":
    main()
