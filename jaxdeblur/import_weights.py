"""`jaxdeblur import-weights MODEL FILE.pth -o DIR`: the authors' PyTorch checkpoints as jaxdeblur weights.

The command only; the work is `jaxdeblur.models.torch_import.import_torch`
(imported on use, so `jaxdeblur --help` stays light). No torch needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def import_weights_command(
    model: str = typer.Argument(..., help="Model to import (nafnet, kernel_space, ufpnet)."),
    file: Path = typer.Argument(..., help="The authors' PyTorch checkpoint (.pth, torch.save's zip format)."),
    out: Path = typer.Option(..., "-o", "--out", help="Checkpoints root: writes OUT/MODEL/PRESET/."),
    preset: Optional[str] = typer.Option(None, help="Preset name of the weights (default: from the file name)."),
    key: Optional[str] = typer.Option(None, help="Key of the state dict in the file (default: found)."),
    overwrite: bool = typer.Option(False, help="Replace weights already in OUT/MODEL/PRESET."),
):
    """Convert an authors' PyTorch checkpoint (e.g. NAFNet-GoPro-width32.pth) to jaxdeblur weights; no torch needed."""
    from jaxdeblur.models.torch_import import import_torch

    try:
        pretrained = import_torch(model, file, out=out, preset=preset, key=key, overwrite=overwrite)
    except FileExistsError as error:
        raise FileExistsError(f"{error.args[0].split(';')[0]}; pass --overwrite to replace it") from None
    cfg = pretrained.config
    typer.echo(f"{file} -> {pretrained.folder} ({pretrained.manifest['parameters']} parameters)")
    if model == "nafnet":
        typer.echo(f"NAFNet width {cfg.width}, {cfg.channels} channels, blocks {list(cfg.enc_blocks)} / "
                   f"{cfg.middle_blocks} / {list(cfg.dec_blocks)}")
    typer.echo(f"use: jaxdeblur.models.load({pretrained.name!r}, root={str(out)!r}), or "
               f"JAXDEBLUR_CHECKPOINTS={out} jaxdeblur restore --model {pretrained.name} IMAGE -o DIR")
