"""NAFNet weights from the authors' PyTorch state dicts (megvii-research/NAFNet's names and layouts).

The authors' module tree and ours, name for name (a block's names; ``i`` a
level, ``j`` a block)::

    intro, ending, downs.i                 -> intro, ending, downs[i]
    ups.i.0 (1x1 conv, no bias)            -> ups[i]
    encoders.i.j / middle_blks.j / decoders.i.j -> encoders[i][j] / middle[j] / decoders[i][j]
    block: conv1 conv2 conv3 sca.1 conv4 conv5 -> expand depthwise project attention ffn_expand ffn_project
           norm1 norm2 (weight, bias)      -> norm1 norm2 (scale, bias)
           beta gamma (1, c, 1, 1)          -> beta gamma (c,)

Conv weights go from PyTorch's OIHW to Flax's HWIO (the depthwise (2c, 1, 3, 3)
to (3, 3, 1, 2c)). `architecture` reads the network's size from the shapes
and key names, so any NAFNet checkpoint (width 32 / 64 GoPro, other block
counts) builds the matching `NAFNetConfig`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdeblur.models.nafnet.config import PAPER, NAFNetConfig
from jaxdeblur.nets.nafnet import NAFNet

_BLOCK = {"conv1": "expand", "conv2": "depthwise", "conv3": "project", "sca.1": "attention",
          "conv4": "ffn_expand", "conv5": "ffn_project", "norm1": "norm1", "norm2": "norm2"}
_LEAF = {"weight": "kernel", "bias": "bias"}
_NORM_LEAF = {"weight": "scale", "bias": "bias"}
_BLOCK_KEY = re.compile(r"^(encoders|decoders)\.(\d+)\.(\d+)\.(.+)$|^(middle_blks)\.(\d+)\.(.+)$")
_TOP_KEY = re.compile(r"^(intro|ending)\.(weight|bias)$|^(downs)\.(\d+)\.(weight|bias)$|^(ups)\.(\d+)\.0\.(weight)$")


def _block_leaf(rest: str) -> tuple:
    """A block's torch name below the block ("conv1.weight", "beta") -> our path below the block."""
    if rest in ("beta", "gamma"):
        return (rest,)
    layer, _, leaf = rest.rpartition(".")
    if layer not in _BLOCK or leaf not in _LEAF:
        raise KeyError(rest)
    return (_BLOCK[layer], (_NORM_LEAF if layer.startswith("norm") else _LEAF)[leaf])


def flax_path(name: str) -> tuple:
    """Our parameter path (as `nnx.to_flat_state` spells it) of an authors' state-dict name.

    Raises:
      KeyError: a name that is not a NAFNet parameter.
    """
    block = _BLOCK_KEY.match(name)
    if block:
        if block.group(1):
            return (block.group(1), int(block.group(2)), int(block.group(3)), *_block_leaf(block.group(4)))
        return ("middle", int(block.group(6)), *_block_leaf(block.group(7)))
    top = _TOP_KEY.match(name)
    if top:
        if top.group(1):
            return (top.group(1), _LEAF[top.group(2)])
        if top.group(3):
            return ("downs", int(top.group(4)), _LEAF[top.group(5)])
        return ("ups", int(top.group(7)), "kernel")
    raise KeyError(name)


def to_flax_layout(name: str, value: np.ndarray) -> np.ndarray:
    """A parameter in PyTorch's layout -> ours: OIHW conv weights to HWIO, (1, c, 1, 1) scales to (c,)."""
    if name.endswith(("beta", "gamma")):
        return value.reshape(-1)
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    return value


def _count(state: Mapping[str, np.ndarray], part: str) -> list[int]:
    """Blocks per level of `part` ("encoders", "decoders"): [count of level 0, ...]."""
    blocks: dict[int, set] = {}
    for name in state:
        m = re.match(rf"^{part}\.(\d+)\.(\d+)\.", name)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if sorted(blocks) != list(range(len(blocks))):
        raise ValueError(f"not a NAFNet state dict: levels {sorted(blocks)} of {part} are not 0..n-1")
    return [len(blocks[level]) for level in range(len(blocks))]


def architecture(state: Mapping[str, np.ndarray]) -> dict:
    """{channels, width, enc_blocks, middle_blocks, dec_blocks} of a NAFNet state dict.

    Levels without blocks (a count of 0) are not representable in a state
    dict: the downs / ups convs give the number of levels, the block keys the counts.

    Raises:
      ValueError: not a NAFNet state dict (names what is missing).
    """
    if "intro.weight" not in state or "ending.weight" not in state:
        raise ValueError("not a NAFNet state dict: no intro.weight / ending.weight (keys start "
                         f"{sorted(state)[:4]})")
    width, channels = (int(n) for n in state["intro.weight"].shape[:2])
    levels = len({n.split(".")[1] for n in state if n.startswith("downs.")})
    if levels != len({n.split(".")[1] for n in state if n.startswith("ups.")}):
        raise ValueError("not a NAFNet state dict: unequal numbers of downs and ups")
    enc, dec = _count(state, "encoders"), _count(state, "decoders")
    enc += [0] * (levels - len(enc))
    dec += [0] * (levels - len(dec))
    middle = len({n.split(".")[1] for n in state if n.startswith("middle_blks.")})
    if len(enc) != levels or len(dec) != levels:
        raise ValueError(f"not a NAFNet state dict: {levels} levels but blocks at {len(enc)} / {len(dec)}")
    return dict(channels=channels, width=width, enc_blocks=tuple(enc), middle_blocks=middle, dec_blocks=tuple(dec))


def config_from_state_dict(state: Mapping[str, np.ndarray], base: NAFNetConfig = PAPER) -> NAFNetConfig:
    """`base` (default: the paper's GoPro recipe) with the network of `state`."""
    return dataclasses.replace(base, **architecture(state))


def load_state_dict(model: NAFNet, state: Mapping[str, np.ndarray]) -> NAFNet:
    """Sets every parameter of `model` from the authors' state dict `state` (in place; returns `model`).

    Strict as `load_state_dict(strict=True)`: every parameter of the model
    must be in `state` with its shape, and nothing else may be.
    Values keep their dtype's precision as float32 (or float64 when JAX's x64 mode is on).

    Raises:
      ValueError: unexpected or missing names, or a shape mismatch (each named).
    """
    params = nnx.state(model, nnx.Param)
    flat = dict(nnx.to_flat_state(params))
    found, unexpected = {}, []
    for name, value in state.items():
        try:
            found[flax_path(name)] = (name, to_flax_layout(name, np.asarray(value)))
        except KeyError:
            unexpected.append(name)
    missing = [".".join(map(str, p)) for p in flat if p not in found]
    unexpected += [found[p][0] for p in found if p not in flat]
    if missing or unexpected:
        raise ValueError(f"the state dict does not fit this NAFNet: {len(missing)} parameters missing "
                         f"{missing[:4]}, {len(unexpected)} unexpected {unexpected[:4]}")
    wrong = [f"{found[p][0]} {found[p][1].shape} vs {v.shape}" for p, v in flat.items() if found[p][1].shape != v.shape]
    if wrong:
        raise ValueError(f"the state dict does not fit this NAFNet: shapes differ: {wrong[:4]}")
    dtype = jnp.zeros((), float).dtype  # float32, or float64 under x64
    for path, variable in flat.items():
        variable.set_value(jnp.asarray(found[path][1], dtype=dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


def from_state_dict(state: Mapping[str, np.ndarray], *,
                    base: NAFNetConfig = PAPER) -> tuple[NAFNetConfig, NAFNet]:
    """(config, NAFNet) of an authors' state dict: the network it describes, with its weights (no random
    initialisation is run: the module is built abstract and every parameter comes from `state`)."""
    config = config_from_state_dict(state, base)
    model = nnx.eval_shape(lambda: NAFNet(config.channels, config.width, config.enc_blocks, config.middle_blocks,
                                          config.dec_blocks, rngs=nnx.Rngs(0)))
    return config, load_state_dict(model, state)
