"""Blur-kernel-space weights from the authors' PyTorch state dicts (VinAIResearch/blur-kernel-space-exploring,
``KernelWizard``'s names and layouts; the model trained with their woVAE options: norm "none").

Their module tree and ours (``fd`` feature downsamples, ``d`` depth, ``F``
front, ``B`` back, ``E`` extractor blocks; ``sub^i`` = ``submodule.`` i times)::

    feature_extractor.0                       -> stem
    feature_extractor.{2 + 2j}   (j < fd)     -> feature_downs[j]
    feature_extractor.{2 fd + 2 + b}.conv1/2  -> front[b].conv1/2
    kernel_extractor.model.1                  -> extractor.stem          (no biases in G)
    kernel_extractor.model.{4 + 3i}  (i < d)  -> extractor.downs[i]
    kernel_extractor.model.{4 + 3d + b}.conv_block.1/5 -> extractor.blocks[b].conv1/2
    adapter.model.sub^i.down.{0 | 1}          -> unet.downs[i]           (0 at the outermost level)
    adapter.model.sub^i.up.1                  -> unet.ups[i]             (ConvTranspose2d; bias only at i = 0)
    recon_trunk.{b}.conv1/2                   -> back[b].conv1/2
    recon_trunk.{B + 3j}         (j < fd)     -> ups[j]                  (conv before PixelShuffle)
    recon_trunk.{B + 3 fd}, .{B + 3 fd + 2}   -> last_hidden, last

Conv weights go OIHW -> HWIO; the transposed convs' (in, out, 4, 4) are
flipped to the kernel of our conv over the zero-dilated input. `architecture`
reads every size from the state dict (the authors' GoPro / REDS models: RGB,
nf 64, 10 / 20 blocks, 4 extractor blocks, code 512, depth 5, 2 feature
downsamples). Their recon trunk writes 64 channels where ours has nf: a
checkpoint with nf != 64 does not fit (a shape error names the layer).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import numpy as np
from flax import nnx

from jaxdeblur.models.kernel_space.config import PAPER, KernelSpaceConfig
from jaxdeblur.models.torch_import import assign_state_dict, conv_layout, transposed_conv_layout
from jaxdeblur.nets.kernel_space import KernelSpace

_LEAF = {"weight": "kernel", "bias": "bias"}


def _indices(state: Mapping[str, np.ndarray], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for name in state if (m := re.match(pattern, name))})


def architecture(state: Mapping[str, np.ndarray]) -> dict:
    """{channels, nf, front_blocks, back_blocks, code_dim, extractor_blocks, depth, feature_downsamples}.

    Raises:
      ValueError: not a KernelWizard state dict.
    """
    if "feature_extractor.0.weight" not in state or not any(n.startswith("adapter.model.") for n in state):
        raise ValueError("not a blur-kernel-space (KernelWizard) state dict: no feature_extractor.0.weight / "
                         f"adapter.model.* (keys start {sorted(state)[:4]})")
    nf, channels = (int(v) for v in state["feature_extractor.0.weight"].shape[:2])
    convs = [i for i in _indices(state, r"^feature_extractor\.(\d+)\.weight$") if i > 0]
    front = _indices(state, r"^feature_extractor\.(\d+)\.conv1\.weight$")
    back = _indices(state, r"^recon_trunk\.(\d+)\.conv1\.weight$")
    extractor = _indices(state, r"^kernel_extractor\.model\.(\d+)\.conv_block\.1\.weight$")
    depth = max(name.count("submodule.") for name in state if name.startswith("adapter.model.")) + 1
    fd = len(convs)
    if convs != [2 + 2 * j for j in range(fd)] or front != [2 + 2 * fd + b for b in range(len(front))] \
            or back != list(range(len(back))):
        raise ValueError("not a blur-kernel-space state dict: unexpected layer indices in feature_extractor / "
                         "recon_trunk")
    inner = "adapter.model." + "submodule." * (depth - 1)
    try:
        code_dim = int(state[inner + "up.1.weight"].shape[0] - state[inner + "down.1.weight"].shape[0])
    except KeyError as error:
        raise ValueError(f"not a blur-kernel-space state dict: no {error.args[0]}") from None
    return dict(channels=channels, nf=nf, front_blocks=len(front), back_blocks=len(back), code_dim=code_dim,
                extractor_blocks=len(extractor), depth=depth, feature_downsamples=fd)


def flax_path(name: str, arch: Mapping[str, int]) -> tuple:
    """Our parameter path of an authors' state-dict name, for a network of architecture `arch`.

    Raises:
      KeyError: not a parameter of that network.
    """
    fd, depth, back = arch["feature_downsamples"], arch["depth"], arch["back_blocks"]
    layer, _, leaf = name.rpartition(".")
    if leaf not in _LEAF:
        raise KeyError(name)
    leaf = _LEAF[leaf]
    if m := re.fullmatch(r"feature_extractor\.(\d+)(\.conv[12])?", layer):
        i = int(m.group(1))
        if m.group(2):
            return ("front", i - 2 - 2 * fd, m.group(2)[1:], "conv", leaf)
        if i == 0:
            return ("stem", "conv", leaf)
        return ("feature_downs", (i - 2) // 2, "conv", leaf)
    if m := re.fullmatch(r"kernel_extractor\.model\.(\d+)(\.conv_block\.[15])?", layer):
        i = int(m.group(1))
        if m.group(2):
            return ("extractor", "blocks", i - 4 - 3 * depth, "conv1" if m.group(2).endswith("1") else "conv2",
                    "conv", leaf)
        if i == 1:
            return ("extractor", "stem", "conv", leaf)
        if (i - 4) % 3 == 0 and 0 <= (i - 4) // 3 < depth:
            return ("extractor", "downs", (i - 4) // 3, "conv", leaf)
        raise KeyError(name)
    if m := re.fullmatch(r"adapter\.model\.((?:submodule\.)*)(down\.[01]|up\.1)", layer):
        level = m.group(1).count("submodule.")
        if m.group(2) == "up.1":
            return ("unet", "ups", level, "conv", leaf)
        if m.group(2) == ("down.0" if level == 0 else "down.1"):
            return ("unet", "downs", level, "conv", leaf)
        raise KeyError(name)
    if m := re.fullmatch(r"recon_trunk\.(\d+)(\.conv[12])?", layer):
        i = int(m.group(1))
        if m.group(2):
            return ("back", i, m.group(2)[1:], "conv", leaf)
        j = i - back
        if j % 3 == 0 and 0 <= j // 3 < fd:
            return ("ups", j // 3, "conv", leaf)
        if j == 3 * fd:
            return ("last_hidden", "conv", leaf)
        if j == 3 * fd + 2:
            return ("last", "conv", leaf)
    raise KeyError(name)


def to_flax_layout(name: str, value: np.ndarray) -> np.ndarray:
    """A parameter in PyTorch's layout -> ours (the adapter's up convs are ConvTranspose2d)."""
    if re.match(r"^adapter\.model\.(submodule\.)*up\.1\.weight$", name):
        return transposed_conv_layout(value)
    return conv_layout(value)


def config_from_state_dict(state: Mapping[str, np.ndarray], base: KernelSpaceConfig = PAPER) -> KernelSpaceConfig:
    """`base` (default: the paper's recipe) with the network of `state` and the authors' biases."""
    return dataclasses.replace(base, **architecture(state), all_biases=False)


def from_state_dict(state: Mapping[str, np.ndarray], *,
                    base: KernelSpaceConfig = PAPER) -> tuple[KernelSpaceConfig, KernelSpace]:
    """(config, KernelSpace) of an authors' KernelWizard state dict, with its weights (built abstract: every
    parameter comes from `state`).

    Raises:
      ValueError: not a KernelWizard state dict, or one that does not fit (names missing / unexpected / shapes).
    """
    from jaxdeblur.models.kernel_space.task import build_network

    config = config_from_state_dict(state, base)
    arch = architecture(state)
    model = nnx.eval_shape(lambda: build_network(config, nnx.Rngs(0)))
    return config, assign_state_dict(model, state, lambda n: flax_path(n, arch), to_flax_layout,
                                     "blur-kernel-space network")
