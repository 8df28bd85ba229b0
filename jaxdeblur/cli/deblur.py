"""`jaxdeblur deblur` (blind deblurring of image files) and `jaxdeblur demo`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List, Optional

import typer

from jaxdeblur.cli.base import app, say


def _kernel_size_option(value: str):
    """-k: a positive int, or "auto" (any case)."""
    text = str(value).strip()
    if text.lower() == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1 or str(size) != text.lstrip("+"):
        raise typer.BadParameter(f"{value!r} is neither a positive integer (pixels) nor 'auto'")
    return size


def _say_kernel_size_and_confidence(source, result) -> None:
    """One line each (stderr), for method map: the size "auto" chose; a doubtful estimate."""
    choice = result.extras.get("kernel_size")
    if choice and choice.get("how") == "auto":
        extent = "x".join(str(n) for n in choice["extent"])
        say(f"{source}: kernel size auto -> {choice['chosen'][0]} x {choice['chosen'][1]} (first pass at "
             f"{choice['initial'][0]} px measured a {extent} px kernel"
             + ("; it filled that support, the blur may be larger" if choice["saturated"] else "") + ")")
    confidence = result.extras.get("confidence")
    if confidence and not confidence["confident"]:
        say(f"{source}: low confidence in the kernel estimate: {'; '.join(confidence['reasons'])}")


@app.command()
def deblur(
    inputs: List[Path] = typer.Argument(..., help="Blurred image files (several make one batched run)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder."),
    kernel_size: str = typer.Option("auto", "-k", "--kernel-size", callback=_kernel_size_option,
                                    help="Kernel support to estimate (pixels), or auto (method map only: "
                                         "measured per image by a first estimation; the size chosen is printed "
                                         "and written to the JSON). DIP methods need a number."),
    method: str = typer.Option("auto", help="auto (map on a CPU, selfdeblur on a GPU/TPU; the chosen one is "
                                            "printed) | map: MAP kernel estimation + learned non-blind step "
                                            "(seconds on a CPU) | DIP: selfdeblur, kotera, uncertainty, "
                                            "kernel_space."),
    preset: str = typer.Option("auto", help="auto (paper on a GPU/TPU, fast on a CPU; for map its tuned default) "
                                            "| paper | fast | tiny (| default for map)."),
    iterations: Optional[int] = typer.Option(None, help="Run length, the preset's schedule compressed to keep its "
                                                        "proportions (the raw field: --set iterations=N)."),
    seed: int = typer.Option(0, help="Seed of the first input (the next inputs get seed+1, ...)."),
    color: str = typer.Option("y", help="y: deblur the luma, keep the input's chroma (colour in, colour out); "
                                        "rgb: 3-channel generator (a grey input stays grey)."),
    finish: bool = typer.Option(True, "--finish/--no-finish", help="Also deconvolve the input non-blind with the "
                                                                   "estimated kernel (written as *_deconvolved.png)."),
    region: Optional[str] = typer.Option(None, help="Estimate the kernel on a window only, then deconvolve the whole "
                                                    "image: x,y,w,h in pixels, auto (the most textured "
                                                    "256-pixel window) or cnn (the window a trained CNN rates "
                                                    "best, jaxdeblur.select_region). For large photos."),
    resume: bool = typer.Option(False, help="Continue this run from its checkpoints in OUT/checkpoints."),
    overwrite: bool = typer.Option(False, help="Replace existing results (and this run's checkpoints) in OUT."),
    checkpoint_every: int = typer.Option(500, help="Iterations between checkpoints (honoured exactly)."),
    set_: List[str] = typer.Option([], "--set", help="Config override NAME=VALUE (repeatable)."),
    init: Optional[str] = typer.Option(None, help="map: start a DIP method (selfdeblur, kotera, uncertainty) from "
                                                  "the MAP estimator: its generators are first fitted to MAP's "
                                                  "kernel and non-blind image."),
    init_set: List[str] = typer.Option([], "--init-set", help="Override of the MAP initialisation NAME=VALUE "
                                                              "(repeatable; fit_max_iterations=500, "
                                                              "map.nonblind=hyper_laplacian, ...)."),
):
    """Deblur INPUT images blindly; writes the restored image, kernel, figure and JSON per input."""
    from jaxdeblur import outputs
    from jaxdeblur.api import package_version, plan_batch, run_plan
    from jaxdeblur.config import parse_overrides
    from jaxdeblur.engine.checkpoint import newest_step
    from jaxdeblur.engine.runner import EngineOptions
    from jaxdeblur.io import load_image
    from jaxdeblur.regions import parse_region

    outputs.check_out_dir(out)
    if iterations is not None and iterations < 1:
        raise ValueError(f"--iterations must be at least 1, got {iterations}")
    if checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be a positive number of iterations (e.g. 100, 500), "
                         f"got {checkpoint_every}")
    box = None if region is None else parse_region(region)
    images = [load_image(p, mode="auto") for p in inputs]
    plan = plan_batch(images, kernel_size, method, preset=preset, iterations=iterations,
                      seeds=[seed + i for i in range(len(images))], config=parse_overrides(set_) or None,
                      color=color, finish=finish, region=box, labels=[str(p) for p in inputs], init=init,
                      init_config=parse_overrides(init_set) or None)
    files = outputs.plan_outputs(inputs, out, files=outputs.deblur_files(finish=finish, region=box is not None))
    outputs.check_writable(files, overwrite=overwrite)
    root = (out / "checkpoints").absolute()
    for group in plan.groups:
        folder = plan.checkpoint_dir(root, group)
        step = newest_step(folder) if folder.is_dir() else None
        if step is not None and not resume:
            if not overwrite:
                raise FileExistsError(f"{folder} holds checkpoints of this same run (iteration {step}): pass "
                                      "--resume to continue it, or --overwrite to start again")
            say(f"--overwrite: removing the checkpoints of the earlier run in {folder}")
            shutil.rmtree(folder)
    for plan_i in files:
        if plan_i.renamed:
            say(f"{plan_i.source} -> {out / plan_i.stem}_* (another input has the same name)")
    for path, record in zip(inputs, plan.colors):
        if record["note"]:
            say(f"{path}: {record['note']}")

    options = EngineOptions(checkpoint_dir=str(root), checkpoint_every=checkpoint_every, resume=resume, log=say)
    results = run_plan(plan, options=options)
    for file_plan, image, result in zip(files, images, results):
        written = outputs.write_deblur_outputs(file_plan, image, result, extra={"version": package_version()})
        typer.echo(f"{file_plan.source}:")
        for kind, path in written.items():
            typer.echo(f"  {path}: {outputs.WHAT_EACH_FILE_IS[kind]}")
        _say_kernel_size_and_confidence(file_plan.source, result)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_output"), "-o", "--out", help="Output folder."),
    method: str = typer.Option("auto", help="auto (map on a CPU, selfdeblur on a GPU/TPU) | map | selfdeblur | "
                                            "kotera | uncertainty | kernel_space."),
    preset: str = typer.Option("auto", help="auto | paper | fast | tiny (| default for map)."),
    iterations: Optional[int] = typer.Option(None, help="Run length (DIP: the preset's schedule compressed; map: "
                                                        "alternations per scale)."),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False, help="Replace the files of an earlier demo in OUT."),
):
    """Deblur a photo shipped with scikit-image, blurred by a fixed motion kernel; prints the ISNR."""
    import json

    from jaxdeblur.demo import run_demo

    if iterations is not None and iterations < 1:
        raise ValueError(f"--iterations must be at least 1, got {iterations}")
    report = run_demo(out, method=method, preset=preset, iterations=iterations, seed=seed, overwrite=overwrite)
    typer.echo(json.dumps(report, indent=1))
    typer.echo(f"{report['method']}: ISNR {report['isnr_db']:+.2f} dB (restored), {report['isnr_deconvolved_db']:+.2f} "
               f"dB (deconvolved with the estimated kernel); figure: {report['paths']['figure']}")
