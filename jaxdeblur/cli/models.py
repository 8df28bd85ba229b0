"""The commands of the trained models: `jaxdeblur train`, `restore`, `transfer`, `import-weights`.

The heavy imports happen when a command runs, so the `jaxdeblur` command
starts fast. The work is in the library: `jaxdeblur.train` (the one trainer),
`jaxdeblur.restoration` (`restore`), `jaxdeblur.blur_transfer`
(`transfer_blur`), `jaxdeblur.models.torch_import` (`import_torch`); the
commands read files, write outputs through `jaxdeblur.outputs` (unique names,
no overwrite without --overwrite, atomic files) and print.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

from jaxdeblur.blur_transfer import DEFAULT_WEIGHTS, TRANSFER_FILES
from jaxdeblur.restoration import DEFAULT_MODEL, KERNEL_FIELD_FILE, RESTORE_FILES

_RENAMED = "{source} -> {stem}_* (another input has the same name)"


def train_command(
    model: str = typer.Argument(..., help="Registered model name (see jaxdeblur.models), e.g. nafnet."),
    preset: str = typer.Option(..., help="Preset of the model's config, e.g. cpu, paper, tiny."),
    workdir: Path = typer.Option(..., help="Folder of the run: checkpoints/, metrics.jsonl, run.json."),
    data: Optional[Path] = typer.Option(None, help="Training data folder (default: the model's own data)."),
    val_data: Optional[Path] = typer.Option(None, help="Validation data folder (default: part of the training "
                                                       "data held out, for models that take data)."),
    resume: bool = typer.Option(False, help="Continue the run in WORKDIR from its newest checkpoint."),
    set_: List[str] = typer.Option([], "--set", help="Config override NAME=VALUE (repeatable); nested "
                                                      "fields with dots, e.g. train.batch_size=8."),
    steps: Optional[int] = typer.Option(None, help="Override train.steps."),
    export_to: Optional[Path] = typer.Option(None, "--export", help="Afterwards write the weights to EXPORT/"
                                                                     "<model>/<preset>/ (e.g. checkpoints; "
                                                                     "replaced if present)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Train MODEL (supervised) with the one trainer; optionally export its weights."""
    from jaxdeblur.config import parse_overrides, resolve
    from jaxdeblur.models import get_model
    from jaxdeblur.train import export, override_nested, train

    module = get_model(model)
    overrides = parse_overrides(set_)
    if steps is not None:
        overrides["train.steps"] = steps
    config = override_nested(resolve(module.PRESETS, preset, None), overrides)
    folders = {"data": data, "val_data": val_data}
    task = module.make_task(config, **{k: str(v) for k, v in folders.items() if v is not None})
    result = train(task, workdir, resume=resume, progress=progress)
    summary = {"model": model, "preset": preset, "steps": int(result.state.step),
               "skipped": int(result.state.skipped), "eval": result.eval_metrics, "best_step": result.best_step,
               "workdir": str(result.workdir)}
    if export_to is not None:
        metrics = dict(result.eval_metrics)
        if hasattr(module, "check_metrics"):  # a data-free check that `load` users and tests can recompute
            metrics.update(module.check_metrics(module.make_inference(result.model(), config), config))
        folder = export(task, result, export_to, preset=preset, metrics=metrics, overwrite=True,
                        data={**{k: None if v is None else str(v) for k, v in folders.items()},
                              "overrides": overrides})
        summary["exported"] = str(folder)
    typer.echo(json.dumps(summary, indent=1))


def restore_command(
    inputs: List[Path] = typer.Argument(..., help="Blurred image files."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    model: str = typer.Option(DEFAULT_MODEL, help="Shipped model (see `jaxdeblur.models.available()`)."),
    overwrite: bool = typer.Option(False, help="Replace results already in OUT."),
):
    """Restore INPUT images with a trained network; writes the restored image, a figure and JSON per input."""
    from jaxdeblur import outputs
    from jaxdeblur.io import load_image
    from jaxdeblur.restoration import WHAT_EACH_FILE_IS, pretrained_model, restored_image

    pretrained = pretrained_model(model)
    field = getattr(pretrained.fn, "estimates_kernels", False)
    plans = outputs.plan_outputs(inputs, out, files={**RESTORE_FILES, **(KERNEL_FIELD_FILE if field else {})})
    outputs.check_writable(plans, overwrite=overwrite)
    images = [load_image(p, mode="auto") for p in inputs]  # every file read (and checked) before any work
    for plan, image in zip(plans, images):
        if plan.renamed:
            typer.echo(_RENAMED.format(source=plan.source, stem=plan.stem), err=True)
        t0 = time.perf_counter()
        result = pretrained(image)
        restored = restored_image(result)
        seconds = time.perf_counter() - t0
        paths = plan.paths
        outputs.write_image(paths["restored"], restored)
        if field:
            from jaxdeblur.models.ufpnet.figures import kernel_field_figure

            with outputs.atomic_path(paths["kernels"]) as tmp:
                kernel_field_figure(tmp, image, result, title=f"{plan.stem}: {model}")
        outputs.write_before_after(paths["figure"], image, restored, title=f"{plan.stem}: {model}")
        outputs.write_json(paths["json"], {
            "input": str(plan.source), "model": model, "shape": list(image.shape), "seconds": round(seconds, 3),
            "files": {k: {"path": p.name, "is": WHAT_EACH_FILE_IS[k]} for k, p in paths.items()},
            "manifest": {k: v for k, v in pretrained.manifest.items() if k != "files"}})
        typer.echo(f"{plan.source}: {paths['restored']} ({seconds:.1f} s)")


def transfer_command(
    sharp_a: Path = typer.Argument(..., help="Sharp image of the pair whose blur is transferred."),
    blurred_a: Path = typer.Argument(..., help="The same image, blurred (same size as SHARP_A)."),
    sharp_b: List[Path] = typer.Argument(..., help="Sharp images to blur like the pair."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    weights: str = typer.Option(DEFAULT_WEIGHTS, help="Kernel-space weights: a shipped name or a weights folder."),
    overwrite: bool = typer.Option(False, help="Replace results already in OUT."),
):
    """Blur SHARP_B images like BLURRED_A blurs SHARP_A (learned blur kernel space); writes image, figure, JSON."""
    from jaxdeblur import outputs
    from jaxdeblur.blur_transfer import WHAT_EACH_FILE_IS, transfer_blur
    from jaxdeblur.io import load_image
    from jaxdeblur.models.kernel_space.transfer import load_weights

    plans = outputs.plan_outputs(sharp_b, out, files=TRANSFER_FILES)
    outputs.check_writable(plans, overwrite=overwrite)
    pair = [load_image(p, mode="auto") for p in (sharp_a, blurred_a)]
    images = [load_image(p, mode="auto") for p in sharp_b]  # every file read (and checked) before any work
    pretrained = load_weights(weights)
    for plan, image in zip(plans, images):
        if plan.renamed:
            typer.echo(_RENAMED.format(source=plan.source, stem=plan.stem), err=True)
        t0 = time.perf_counter()
        transferred = transfer_blur(*pair, image, weights=pretrained)
        seconds = time.perf_counter() - t0
        paths = plan.paths
        outputs.write_image(paths["transferred"], transferred)
        outputs.write_before_after(paths["figure"], image, transferred,
                                   title=f"{plan.stem}: the blur of {blurred_a.name}")
        outputs.write_json(paths["json"], {
            "input": str(plan.source), "sharp_a": str(sharp_a), "blurred_a": str(blurred_a),
            "weights": pretrained.name, "shape": list(image.shape), "seconds": round(seconds, 3),
            "files": {k: {"path": p.name, "is": WHAT_EACH_FILE_IS[k]} for k, p in paths.items()},
            "manifest": {k: v for k, v in pretrained.manifest.items() if k != "files"}})
        typer.echo(f"{plan.source}: {paths['transferred']} ({seconds:.1f} s)")


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


__all__ = ["train_command", "restore_command", "transfer_command", "import_weights_command"]
