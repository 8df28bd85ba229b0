"""UFPNet weights from the authors' PyTorch state dicts (Fangzhenxuan/UFPDeblur, ``UFPNet_code_uncertainty``'s
names and layouts; their released ``net_g_latest.pth`` files are basicsr's ``{"params": ...}``).

Their module tree and ours::

    intro, ending, downs, ups, encoders, middle_blks, decoders -> deblur.* (as NAFNet,
                                                  `jaxdeblur.models.nafnet.torch_weights`)
    encoders.i.0.kernel_atttion.conv_1.0 / conv_kernel.0 / conv_kernel.2 / conv_2.0
                                               -> deblur.kernel_attention[i].features / kernel1 / kernel2 / gate
    kernel_down.i                             -> deblur.kernel_downs[i] (i < conditioned levels - 1; theirs has
                                                  one per encoder level, the others never change the output: dropped)
    kernel_extra.Encoding_Block{1,2}.Conv_head / ResBlock{1,2}.body.{1,3} / downsample
                                               -> code_net.encoder{1,2}.head / blocks[0,1].conv{1,2} / down
    kernel_extra.Conv_mid.body.{2j}           -> code_net.middle[j]
    kernel_extra.Decoding_Block{1,2}.Conv_t / Conv_head / ResBlock{1,2}.body.{1,3}
                                               -> code_net.decoder{1,2}.up (ConvTranspose2d) / head / blocks
    kernel_extra.Conv_tail.mean.0 / mean.2 / var.0 / var.2
                                               -> code_net.mean_hidden / mean_out / sigma_hidden / sigma_out
    flow.net.{2c}.s_net.{0,2,4} / t_net.{0,2,4} -> flow.layers[2c].scale_net / shift_net .layers[0, 2, 4]
    flow.net.{2c+1}.log_gamma / beta / running_mean / running_var -> flow.layers[2c+1].* (statistics: BatchStat)
    flow.kernel_size / alpha / normalization  -> the flow's config (kernel size, alpha, norm)
    flow.net.{2c}.mask, flow.base_dist_*      -> checked (our masks are computed), not stored

Conv weights OIHW -> HWIO, Linear (out, in) -> (in, out), the transposed
convs flipped. The imported model is the reference's: its code net has the
361-channel sigma head (`code_sigma_per_tap`) and no epsilon in the code
standardisation, its flow decodes as UFPNet does (`raw_decode`: FKP's
post-process, not renormalised), every one-block encoder level of theirs is
kernel-conditioned (a prefix of the levels here). Not reproduced: their
test-time local converter (``UFPNet_code_uncertainty_Local``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Mapping

import numpy as np
from flax import nnx

from jaxdeblur.models.nafnet import torch_weights as nafnet_weights
from jaxdeblur.models.torch_import import assign_state_dict, conv_layout, transposed_conv_layout
from jaxdeblur.models.ufpnet.config import PAPER, UFPNetConfig

_LEAF = {"weight": "kernel", "bias": "bias"}
_ATTENTION = {"conv_1.0": "features", "conv_kernel.0": "kernel1", "conv_kernel.2": "kernel2", "conv_2.0": "gate"}
_BUFFERS = ("flow.kernel_size", "flow.alpha", "flow.normalization", "flow.base_dist_mean", "flow.base_dist_var")


def _indices(state, pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for name in state if (m := re.match(pattern, name))})


def architecture(state: Mapping[str, np.ndarray]) -> dict:
    """The networks' sizes and the flow's buffers of a UFPNet_code_uncertainty state dict:
    {channels, width, enc_blocks, middle_blocks, dec_blocks, conditioned_levels, code_widths,
    code_middle_width, code_middle_convs, kernel_size, couplings, hidden, num_hidden, batch_norm, alpha, norm}.

    Raises:
      ValueError: not a UFPNet state dict, or one whose conditioned levels are not the first ones.
    """
    needed = ("intro.weight", "kernel_extra.Encoding_Block1.Conv_head.weight", "flow.kernel_size",
              "kernel_extra.Conv_mid.body.0.weight")
    if any(n not in state for n in needed):
        raise ValueError(f"not a UFPNet state dict: no {[n for n in needed if n not in state][:2]} (keys start "
                         f"{sorted(state)[:4]})")
    nafnet = nafnet_weights.architecture({k: v for k, v in state.items() if not k.startswith(("flow.", "kernel_"))})
    conditioned = _indices(state, r"^encoders\.(\d+)\.0\.kernel_atttion\.")
    if conditioned != list(range(len(conditioned))):
        raise ValueError(f"kernel-conditioned encoder levels {conditioned} are not the first ones: not representable")
    kernel_size = int(round(float(np.asarray(state["flow.kernel_size"]).reshape(-1)[0])))
    couplings = _indices(state, r"^flow\.net\.(\d+)\.s_net\.0\.weight$")
    linears = _indices(state, r"^flow\.net\.0\.s_net\.(\d+)\.weight$")
    return dict(
        nafnet, conditioned_levels=len(conditioned),
        code_widths=(int(state["kernel_extra.Encoding_Block1.Conv_head.weight"].shape[0]),
                     int(state["kernel_extra.Encoding_Block2.Conv_head.weight"].shape[0])),
        code_middle_width=int(state["kernel_extra.Conv_mid.body.0.weight"].shape[0]),
        code_middle_convs=len(_indices(state, r"^kernel_extra\.Conv_mid\.body\.(\d+)\.weight$")),
        kernel_size=kernel_size, couplings=len(couplings), hidden=int(state["flow.net.0.s_net.0.weight"].shape[0]),
        num_hidden=len(linears) - 2, batch_norm="flow.net.1.log_gamma" in state,
        alpha=float(np.asarray(state["flow.alpha"]).reshape(-1)[0]),
        norm=float(np.asarray(state["flow.normalization"]).reshape(-1)[0]))


def config_from_state_dict(state: Mapping[str, np.ndarray], base: UFPNetConfig = PAPER) -> UFPNetConfig:
    """`base` (default: the paper preset) with the networks and flow of `state`, the reference's code net
    (361 sigmas, no epsilon), the flow's raw decode; a stage-1 config without pretrained parts (what `export`
    needs to write it; the imported weights hold every part)."""
    a = architecture(state)
    prior = dataclasses.replace(base.prior, kernel_size=a["kernel_size"], num_couplings=a["couplings"],
                                hidden=a["hidden"], num_hidden=a["num_hidden"], batch_norm=a["batch_norm"],
                                alpha=a["alpha"], norm=a["norm"], dequantization=0.0, raw_decode=True)
    m = 2 ** len(a["enc_blocks"])
    crop = max(base.data.degrade.crop, m * math.ceil((a["kernel_size"] + 1) / m))
    crop = m * math.ceil(crop / m)
    return dataclasses.replace(
        base, channels=a["channels"], width=a["width"], enc_blocks=a["enc_blocks"], middle_blocks=a["middle_blocks"],
        dec_blocks=a["dec_blocks"], conditioned_levels=a["conditioned_levels"], code_widths=a["code_widths"],
        code_middle_width=a["code_middle_width"], code_middle_convs=a["code_middle_convs"], code_sigma_per_tap=True,
        code_std_eps=0.0, prior=prior, prior_weights=None, stage="kernel", init_weights=None,
        data=dataclasses.replace(base.data, degrade=_degrade(base, a["kernel_size"], crop)))


def _degrade(base: UFPNetConfig, kernel_size: int, crop: int):
    """The training degradation of an imported model (it is trained already; `export` and `load` only need a
    valid config): the base's, with the model's kernel size (motion kernels only when that size differs)."""
    if kernel_size == base.data.degrade.kernel_size:
        return dataclasses.replace(base.data.degrade, crop=crop)
    return dataclasses.replace(base.data.degrade, kernel_size=kernel_size, crop=crop, kind_probs=(1.0, 0.0, 0.0))


def _code_net_path(rest: str, leaf: str) -> tuple:
    if m := re.fullmatch(r"(Encoding|Decoding)_Block([12])\.(Conv_head|downsample|Conv_t|ResBlock([12])\.body\.([13]))",
                         rest):
        part = ("encoder" if m.group(1) == "Encoding" else "decoder") + m.group(2)
        layer = m.group(3)
        if layer.startswith("ResBlock"):
            return ("code_net", part, "blocks", int(m.group(4)) - 1, "conv1" if m.group(5) == "1" else "conv2", "conv",
                    leaf)
        name = {"Conv_head": "head", "downsample": "down", "Conv_t": "up"}[layer]
        if (name == "down") != (part.startswith("encoder")) and name != "head":
            raise KeyError(rest)
        return ("code_net", part, name, "conv", leaf)
    if m := re.fullmatch(r"Conv_mid\.body\.(\d+)", rest):
        if int(m.group(1)) % 2:
            raise KeyError(rest)
        return ("code_net", "middle", int(m.group(1)) // 2, "conv", leaf)
    tail = {"Conv_tail.mean.0": ("mean_hidden", "conv"), "Conv_tail.mean.2": ("mean_out",),
            "Conv_tail.var.0": ("sigma_hidden", "conv"), "Conv_tail.var.2": ("sigma_out", "conv")}
    if rest in tail:
        return ("code_net", *tail[rest], leaf)
    raise KeyError(rest)


def flax_path(name: str) -> tuple:
    """Our path (as `nnx.to_flat_state` spells it) of an authors' state-dict name (parameters and the flow's
    running statistics).

    Raises:
      KeyError: a name that is not one of those (buffers included).
    """
    if m := re.fullmatch(r"flow\.net\.(\d+)\.(log_gamma|beta|running_mean|running_var)", name):
        return ("flow", "layers", int(m.group(1)), m.group(2))
    if not name.startswith(("flow.", "kernel_")) and ".kernel_atttion." not in name:
        return ("deblur", *nafnet_weights.flax_path(name))
    layer, _, leaf = name.rpartition(".")
    if leaf not in _LEAF:
        raise KeyError(name)
    leaf = _LEAF[leaf]
    if m := re.fullmatch(r"flow\.net\.(\d+)\.([st])_net\.(\d+)", layer):
        return ("flow", "layers", int(m.group(1)), "scale_net" if m.group(2) == "s" else "shift_net", "layers",
                int(m.group(3)), leaf)
    if layer.startswith("kernel_extra."):
        return _code_net_path(layer[len("kernel_extra."):], leaf)
    if m := re.fullmatch(r"encoders\.(\d+)\.0\.kernel_atttion\.(.+)", layer):
        if m.group(2) not in _ATTENTION:
            raise KeyError(name)
        return ("deblur", "kernel_attention", int(m.group(1)), _ATTENTION[m.group(2)], "conv", leaf)
    if m := re.fullmatch(r"kernel_down\.(\d+)", layer):
        return ("deblur", "kernel_downs", int(m.group(1)), leaf)
    raise KeyError(name)


def to_flax_layout(name: str, value: np.ndarray) -> np.ndarray:
    """A tensor in PyTorch's layout -> ours."""
    if name.endswith("Conv_t.weight"):
        return transposed_conv_layout(value)
    if name.endswith(("beta", "gamma")) and not name.startswith("flow."):
        return np.asarray(value).reshape(-1)
    return conv_layout(value)


def _parameters_only(state: Mapping[str, np.ndarray], config: UFPNetConfig) -> dict:
    """`state` without the buffers we compute (masks, base distribution: checked) or hold in the config, and
    without the kernel_down convs whose output is never used."""
    out = {}
    dim = config.prior.kernel_size ** 2
    for name, value in state.items():
        if name in _BUFFERS:
            if name.startswith("flow.base_dist_"):
                expected = 0.0 if name.endswith("mean") else 1.0
                if np.asarray(value).shape != (dim,) or not np.all(np.asarray(value) == expected):
                    raise ValueError(f"{name} is not the standard normal's {expected} (a conditional or changed flow)")
            continue
        if m := re.fullmatch(r"flow\.net\.(\d+)\.mask", name):
            parity = (int(m.group(1)) // 2) % 2
            if not np.array_equal(np.asarray(value), (np.arange(dim) + parity) % 2):
                raise ValueError(f"{name} is not FKP's alternating mask of coupling {int(m.group(1)) // 2}")
            continue
        if (m := re.fullmatch(r"kernel_down\.(\d+)\.(weight|bias)", name)) and \
                int(m.group(1)) >= config.conditioned_levels - 1:
            continue
        out[name] = value
    return out


def from_state_dict(state: Mapping[str, np.ndarray], *,
                    base: UFPNetConfig = PAPER) -> tuple[UFPNetConfig, "UFPNet"]:  # noqa: F821
    """(config, UFPNet) of an authors' UFPNet_code_uncertainty state dict, with its weights and the flow's
    running statistics (built abstract: every variable comes from `state`).

    Raises:
      ValueError: not a UFPNet state dict, or one that does not fit (names missing / unexpected / shapes).
    """
    from jaxdeblur.models.ufpnet.task import build_network

    config = config_from_state_dict(state, base)
    params = _parameters_only(state, config)  # (checks the buffers before the network is built)
    model = nnx.eval_shape(lambda: build_network(config, nnx.Rngs(0)))
    return config, assign_state_dict(model, params, flax_path, to_flax_layout, "UFPNet",
                                     variables=nnx.Any(nnx.Param, nnx.BatchStat))
