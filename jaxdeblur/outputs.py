"""What a command writes, written so that no result is lost, overwritten unasked or mislabelled.

Every command that writes files (deblur, demo; restore and train reuse this)
goes through three steps:

1. `plan_outputs(sources, out_dir, files=...)`: one `OutputPlan` per input
   with unique names: when two inputs share a stem (a/img.png, b/img.png)
   each gets a distinguishing name (the parent folder: a_img, b_img; then an
   index); `OutputPlan.renamed` says which were changed, for the command to
   print.
2. `check_writable(plans, overwrite=...)`: before any work, stops with one
   line (OutputExistsError) naming an existing file unless overwrite.
3. Atomic writers (`write_image`, `write_kernel`, `write_json`,
   `write_figure`, `write_text`): each file is written to a temporary name in
   its own folder, flushed to disk and renamed into place, so a killed run
   leaves every file either complete or absent.

`write_deblur_outputs(plan, blurred, result)` writes a deblurring result:
<stem>_restored.png (the generator's image; <stem>_window.png when the kernel
was estimated on a window), <stem>_deconvolved.png (the finishing step),
<stem>_kernel.png, <stem>_figure.png and <stem>.json (settings, which
channels were deblurred, which file is which, losses).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from jaxdeblur.io import save_image, save_kernel

DEBLUR_FILES = {
    "restored": "{stem}_restored.png",
    "deconvolved": "{stem}_deconvolved.png",
    "kernel": "{stem}_kernel.png",
    "figure": "{stem}_figure.png",
    "json": "{stem}.json",
}

WHAT_EACH_FILE_IS = {
    "restored": "the method's image (a DIP method: the generator's; map: the deconvolution with its kernel)",
    "window": "the method's image of the kernel-estimation window",
    "deconvolved": "the whole input deconvolved non-blind with the estimated kernel (finishing step)",
    "kernel": "the estimated blur kernel (scaled so its maximum is white)",
    "figure": "blurred input, results, kernel and loss curves",
    "json": "settings, colour channels, timings and losses of the run",
}


class OutputExistsError(FileExistsError):
    """A file a command would write already exists and overwriting was not asked for."""


def deblur_files(*, finish: bool, region: bool) -> dict[str, str]:
    """The file patterns `deblur` writes: without the finishing step no _deconvolved; with a region, _window."""
    files = dict(DEBLUR_FILES)
    if region:
        del files["restored"]
        files = {"window": "{stem}_window.png", **files}
    if not finish:
        del files["deconvolved"]
    return files


@dataclasses.dataclass(frozen=True)
class OutputPlan:
    """The files of one input: `paths` {kind: path}; `renamed` when the stem was changed to be unique."""

    source: Path
    stem: str
    paths: Mapping[str, Path]
    renamed: bool


def _duplicates(names: Sequence[str]) -> set[str]:
    return {n for n, c in collections.Counter(names).items() if c > 1}


def unique_stems(sources: Sequence[str | Path]) -> list[str]:
    """File stems made unique: a repeated stem gets its parent folder's name, then its 1-based index."""
    paths = [Path(s) for s in sources]
    stems = [p.stem for p in paths]
    repeated = _duplicates(stems)
    stems = [f"{p.parent.name}_{s}" if s in repeated and p.parent.name else s for p, s in zip(paths, stems)]
    while repeated := _duplicates(stems):
        stems = [f"{s}_{i + 1}" if s in repeated else s for i, s in enumerate(stems)]
    return stems


def check_out_dir(out_dir: str | Path) -> Path:
    """`out_dir` as a Path; NotADirectoryError when it exists and is not a folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"output folder {out_dir} is a file, not a folder: choose another -o/--out")
    return out_dir


def plan_outputs(sources: Sequence[str | Path], out_dir: str | Path, *,
                 files: Mapping[str, str] = DEBLUR_FILES) -> list[OutputPlan]:
    """One plan per source: unique stems, paths out_dir / pattern.format(stem=...) per kind."""
    out_dir = check_out_dir(out_dir)
    stems = unique_stems(sources)
    return [OutputPlan(source=Path(src), stem=stem, paths={k: out_dir / f.format(stem=stem) for k, f in files.items()},
                       renamed=stem != Path(src).stem)
            for src, stem in zip(sources, stems)]


def check_writable(plans: Sequence[OutputPlan], *, overwrite: bool) -> None:
    """Raises OutputExistsError naming the first existing file (and how many), unless overwrite."""
    if overwrite:
        return
    existing = [p for plan in plans for p in plan.paths.values() if p.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(f"{existing[0]} already exists{more}; pass --overwrite to replace it, or choose "
                                "another output folder")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffix); on success it is flushed and renamed onto `path`.

    On an exception (or a kill) the temporary file is removed (or left under
    a hidden name), never a half-written `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic(path, write: Callable[[Path], object]) -> Path:
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_image(path, x) -> Path:
    """`jaxdeblur.io.save_image`, atomically."""
    return _atomic(path, lambda tmp: save_image(tmp, x))


def write_kernel(path, kernel, *, upscale: int = 1) -> Path:
    """`jaxdeblur.io.save_kernel`, atomically."""
    return _atomic(path, lambda tmp: save_kernel(tmp, kernel, upscale=upscale))


def write_text(path, text: str) -> Path:
    return _atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path, record) -> Path:
    """A JSON file (indented), atomically; NumPy scalars and arrays are written as numbers and lists."""
    return write_text(path, json.dumps(record, indent=1, default=_json_default))


def write_figure(path, **figure) -> Path:
    """`jaxdeblur.viz.result_figure(path, **figure)`, atomically."""
    from jaxdeblur.viz import result_figure  # matplotlib only when a figure is drawn

    return _atomic(path, lambda tmp: result_figure(tmp, **figure))


def write_before_after(path, before, after, *, title: str = "") -> Path:
    """`jaxdeblur.viz.before_after_figure`, atomically."""
    from jaxdeblur.viz import before_after_figure

    return _atomic(path, lambda tmp: before_after_figure(tmp, before, after, title=title))


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def write_deblur_outputs(plan: OutputPlan, blurred, result, *, extra: dict | None = None,
                         figure: dict | None = None) -> dict[str, str]:
    """Writes the files of `plan` for a `DeblurResult` (atomically); returns {kind: path}.

    blurred: the input as loaded ((H, W) or (H, W, 3)); the written images
    keep its mode (grey or RGB) and shape. extra: more JSON fields; figure:
    more `result_figure` arguments (e.g. sharp=, true_kernel=).
    """
    paths = plan.paths
    image_kind = "window" if "window" in paths else "restored"
    write_image(paths[image_kind], result.image)
    if "deconvolved" in paths:
        if result.deconvolved is None:
            raise ValueError("the plan has a deconvolved image but the result has none (finish=False)")
        write_image(paths["deconvolved"], result.deconvolved)
    write_kernel(paths["kernel"], result.kernel)
    dip = "loss" in result.history  # a DIP run: generator's image, finishing step and loss curves apart
    write_figure(paths["figure"], blurred=blurred, restored=result.image, kernel=result.kernel,
                 deconvolved=result.deconvolved if dip else None, history=result.history if dip else None,
                 region=result.region, kernel_variance=result.extras.get("kernel_variance"),
                 restored_title=None if dip else "restored (estimated kernel, non-blind step)",
                 title=f"{plan.stem}: {result.method} ({result.preset})", **(figure or {}))
    record = {
        "input": str(plan.source), "method": result.method, "preset": result.preset, "seed": result.seed,
        "kernel_size": list(result.kernel.shape), "color": result.color,
        "region": None if result.region is None else dict(zip(("x", "y", "w", "h"), result.region)),
        "files": {kind: {"path": paths[kind].name, "is": WHAT_EACH_FILE_IS[kind]} for kind in paths},
        "config": dataclasses.asdict(result.config), "device": result.device, "timings": result.timings,
        "stamp": result.stamp, "checkpoint_dir": result.checkpoint_dir, "init": getattr(result, "init", None),
        # generator fits per stage (MAP init, Kotera's scales): iterations and RMSE, null where not fitted
        "fits": {k: [None if x != x else x for x in np.asarray(v).ravel().tolist()]
                 for k, v in result.extras.items() if k.startswith("fit_")},
        # method="map": how the kernel size was chosen ("auto" or given) and how far to trust the estimate
        **{name: result.extras[key] for key, name in (("kernel_size", "kernel_size_choice"),
                                                       ("confidence", "confidence")) if key in result.extras},
        "final_losses": {k: float(v[-1]) for k, v in result.history.items() if len(v)},
        "history": {k: [float(x) for x in v] for k, v in result.history.items()},
        **(extra or {}),
    }
    write_json(paths["json"], record)
    return {k: str(v) for k, v in paths.items()}


__all__ = ["DEBLUR_FILES", "WHAT_EACH_FILE_IS", "OutputExistsError", "OutputPlan", "deblur_files", "unique_stems",
           "check_out_dir", "plan_outputs", "check_writable", "atomic_path", "write_image", "write_kernel",
           "write_text", "write_json", "write_figure", "write_before_after", "write_deblur_outputs"]
