"""`jaxdeblur train MODEL --preset P --workdir DIR [--data DIR] [--resume] [--set NAME=VALUE ...] [--steps N]`.

Registered in jaxdeblur.cli, whose wrapper turns errors into one line (exit 2) and
Ctrl-C into a line saying where --resume continues. The heavy imports happen
when the command runs, so the `jaxdeblur` command starts fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


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
