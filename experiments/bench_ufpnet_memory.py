"""Peak memory and time of UFPNet inference against image size (CPU), chunked and unchunked kernel fields.

For every image size, in a FRESH subprocess (so the peak RSS belongs to that size alone):

- ``xla_*_mb``: XLA's compiled memory analysis of the jitted inference
  (`jax.jit(...).lower(...).compile().memory_analysis()`): the temporary
  buffers (``xla_temp_mb``, the working memory XLA plans for the program) and
  the arguments + outputs (``xla_args_out_mb``: weights, image, and the
  returned restoration, kernel field and sigma map);
- ``rss_peak_mb`` / ``rss_added_mb``: the process's peak resident set size
  (getrusage ru_maxrss) after one run, and its growth over the RSS measured
  just before the run (model and program already loaded and compiled);
- ``seconds``: wall time of one run after compilation (the CPU is shared, so
  treat it as indicative).

``--rows`` sets the kernel field's rows per chunk: "auto" (the default rule,
2**24 code elements per chunk) or "whole" (one chunk: the unchunked field),
to show what the chunking saves. The model is the `cpu` preset's network
(shipped weights when present; memory does not depend on the weight values),
or ``--preset paper`` (compile-time analysis only with ``--no-run``).

    .venv/bin/python -m experiments.bench_ufpnet_memory                     # cpu preset, default sizes
    .venv/bin/python -m experiments.bench_ufpnet_memory --rows whole --sizes 256x256 640x360

Writes experiments/results/bench_ufpnet_memory_<preset>.json (rows keyed by
size and chunking) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = ("128x128", "256x256", "512x512", "360x640", "720x1280")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(preset: str, height: int, width: int, rows: str, run: bool) -> dict:
    """One size in this process: XLA memory analysis, then (with `run`) one timed run and the peak RSS."""
    import jax
    from flax import nnx

    from jaxdeblur import models
    from jaxdeblur.models import ufpnet
    from jaxdeblur.nets.ufpnet import restore

    name = f"ufpnet-{preset}"
    if name in models.available():
        loaded = models.load(name)
        model, weights = loaded.model, "shipped"
    else:
        model, weights = ufpnet.build_model(ufpnet.PRESETS[preset], rngs=nnx.Rngs(0)), "random init"
    graphdef, state = nnx.split(model)
    rows_per_chunk = None if rows == "auto" else height

    @jax.jit
    def infer(state, x, key):
        return restore(nnx.merge(graphdef, state), x, key, rows_per_chunk=rows_per_chunk)

    channels = ufpnet.PRESETS[preset].channels
    x = jax.random.uniform(jax.random.key(0), (1, height, width, channels))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = infer.lower(state, x, key).compile()
    compile_s = time.perf_counter() - t0
    analysis = compiled.memory_analysis()
    row = {"preset": preset, "height": height, "width": width, "megapixels": height * width / 1e6, "rows": rows,
           "weights": weights, "compile_s": round(compile_s, 1),
           "xla_temp_mb": round(analysis.temp_size_in_bytes / 2**20, 1),
           "xla_args_out_mb": round((analysis.argument_size_in_bytes + analysis.output_size_in_bytes) / 2**20, 1),
           "field_mb": round(height * width * model.flow.dim * 4 / 2**20, 1)}
    if run:
        before = _rss_mb()
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(state, x, key))
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["seconds_per_mp"] = round(row["seconds"] / row["megapixels"], 2)
        row["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        row["rss_added_mb"] = round(row["rss_peak_mb"] - before, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="HxW (height x width)")
    parser.add_argument("--rows", choices=("auto", "whole"), default="auto")
    parser.add_argument("--no-run", dest="run", action="store_false", help="compile-time memory analysis only")
    parser.add_argument("--child", nargs=2, metavar=("H", "W"), type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.preset, *args.child, args.rows, args.run)))
        return
    out_path = RESULTS / f"bench_ufpnet_memory_{args.preset}.json"
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    rows = {r["key"]: r for r in previous.get("rows", [])}
    for size in args.sizes:
        h, w = (int(v) for v in size.lower().split("x"))
        command = [sys.executable, "-m", "experiments.bench_ufpnet_memory", "--preset", args.preset,
                   "--rows", args.rows, "--child", str(h), str(w)]
        if not args.run:
            command.append("--no-run")
        done = subprocess.run(command, capture_output=True, text=True, cwd=RESULTS.parents[1])
        if done.returncode:
            print(f"{size}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["key"] = f"{h}x{w}-{args.rows}"
        rows[row["key"]] = row
        print(json.dumps(row), flush=True)
        result = {"machine": f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs",
                  "what": "UFPNet inference (kernel field + restoration) of one gray image; xla_*: compiled "
                          "memory analysis, rss_*: process peak RSS (ru_maxrss) of a fresh process per size",
                  "rows": sorted(rows.values(), key=lambda r: (r["rows"], r["height"] * r["width"]))}
        RESULTS.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
