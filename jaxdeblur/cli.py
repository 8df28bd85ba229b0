"""The `jaxdeblur` command: `jaxdeblur deblur ...`, `jaxdeblur demo`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Blind image deblurring with deep image priors (JAX).")


@app.command()
def deblur(
    inputs: List[Path] = typer.Argument(..., help="Blurred image files (several make one batched run)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory."),
    kernel_size: int = typer.Option(..., "-k", "--kernel-size", help="Kernel support to estimate (pixels)."),
    method: str = typer.Option("selfdeblur", help="DIP method: selfdeblur, kotera, uncertainty."),
    preset: str = typer.Option("paper", help="paper | fast | tiny."),
    iterations: Optional[int] = typer.Option(None, help="Override the preset's iteration count."),
    seed: int = typer.Option(0, help="Seed of the first input (the next inputs get seed+1, ...)."),
    color: str = typer.Option("y", help="y: deblur luma, keep chroma; rgb: 3-channel generator."),
    resume: bool = typer.Option(False, help="Continue from the checkpoints in OUT/checkpoints."),
    checkpoint_every: int = typer.Option(500, help="Iterations between checkpoints."),
    set_: List[str] = typer.Option([], "--set", help="Config override NAME=VALUE (repeatable)."),
):
    """Deblur INPUT images blindly; writes restored image, kernel, figure and JSON per input."""
    from jaxdeblur.api import deblur_batch
    from jaxdeblur.config import parse_overrides
    from jaxdeblur.outputs import write_outputs
    from jaxdeblur.engine.runner import EngineOptions
    from jaxdeblur.io import load_image

    images = [load_image(p, mode="rgb" if color == "rgb" else "gray") for p in inputs]
    options = EngineOptions(checkpoint_dir=str((out / "checkpoints").absolute()), checkpoint_every=checkpoint_every,
                            resume=resume)
    t0 = time.perf_counter()
    results = deblur_batch(images, kernel_size, method, preset=preset, iterations=iterations,
                           seeds=[seed + i for i in range(len(images))], config=parse_overrides(set_) or None,
                           color=color, options=options)
    wall = time.perf_counter() - t0
    for path, image, result in zip(inputs, images, results):
        written = write_outputs(out, path.stem, image, result, extra={"wall_s": wall})
        typer.echo(f"{path}: restored -> {written['restored']} (figure {written['figure']})")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_output"), "-o", "--out", help="Output directory."),
    preset: str = typer.Option("fast", help="paper | fast | tiny."),
    iterations: Optional[int] = typer.Option(None, help="Override the preset's iteration count."),
    seed: int = typer.Option(0),
):
    """Deblur a photo shipped with scikit-image, blurred by a fixed motion kernel; prints the ISNR."""
    from jaxdeblur.demo import run_demo

    report = run_demo(out, preset=preset, iterations=iterations, seed=seed)
    typer.echo(json.dumps(report, indent=1))
    typer.echo(f"ISNR {report['isnr_db']:+.2f} dB; figure: {report['paths']['figure']}")


if __name__ == "__main__":
    app()
