"""What a deblurring run writes: restored image, kernel, figure and a JSON record per input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jaxdeblur.io import save_image, save_kernel
from jaxdeblur.viz import result_figure


def write_outputs(out_dir: Path, stem: str, blurred, result, *, extra: dict | None = None) -> dict:
    """Writes <stem>_restored.png, _kernel.png, _figure.png and <stem>.json; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"restored": out_dir / f"{stem}_restored.png", "kernel": out_dir / f"{stem}_kernel.png",
             "figure": out_dir / f"{stem}_figure.png", "json": out_dir / f"{stem}.json"}
    save_image(paths["restored"], result.image)
    save_kernel(paths["kernel"], result.kernel)
    result_figure(paths["figure"], blurred, result.image, result.kernel, history=result.history,
                  kernel_variance=result.extras.get("kernel_variance"),
                  title=f"{stem}: {result.method} ({result.preset})", **(extra or {}).get("figure", {}))
    record = {
        "input": stem, "method": result.method, "preset": result.preset, "seed": result.seed,
        "kernel_size": list(result.kernel.shape), "config": dataclasses.asdict(result.config),
        "device": result.device, "timings": result.timings,
        "final_losses": {k: float(v[-1]) for k, v in result.history.items() if len(v)},
        "history": {k: [float(x) for x in v] for k, v in result.history.items()},
        **{k: v for k, v in (extra or {}).items() if k != "figure"},
    }
    paths["json"].write_text(json.dumps(record, indent=1))
    return {k: str(v) for k, v in paths.items()}
