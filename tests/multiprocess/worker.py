"""One process of the multi-process tests (tests/multiprocess/test_multiprocess.py), or their one-process reference.

    python -m tests.multiprocess.worker SCENARIO OUT

imports every module of jaxdeblur (none may start a JAX backend at import:
`jax.distributed.initialize()` must come first), joins the others through
`jaxdeblur.distributed.initialize()` (the JAXDEBLUR_* env vars the test sets;
none: one process), runs SCENARIO and writes OUT/process<i>.json (a record)
and OUT/process<i>.npz (arrays). Scenarios:

- "multi" (run as 2 processes): first the checks that every process holds the
  same job (process 1 gets another image for deblur_batch and other evaluation
  batches for the training) and the refusal of the DIP engine's checkpoints
  (not supported on several processes yet): the error each raises goes into
  the record; then
  "train" and "deblur" below.
- "reference" (one process, as many devices as the processes above hold
  together): "train" with `--uninterrupted`, and "deblur".
- "join": `initialize()` alone (the test starts one process of two: it must
  fail within the init timeout).

"train": the toy task (tests/train/toy.py), whose loader yields this process's
block of each global batch of 8, stopped by a simulated Ctrl-C before global
batch 4 (a checkpoint at step 4, written by all processes together), then
resumed to step 8; `--uninterrupted`: straight to step 8. Records the final
parameters (+ BatchNorm statistics), the loader states in the step-4
checkpoint and the metrics.jsonl lines (process 0 writes them).

"deblur": `jaxdeblur.deblur_batch` of 4 tiny images (24 x 24, kernel 5,
SelfDeblur's tiny preset, 10 iterations, seeds 7-10: the engine tests'
program), its runs spread over every process's devices; every process gets
every result.

A `ValueError` / `DistributedError` ends the process with "error: <message>"
on stderr, {"failed_after_init_s": seconds since `initialize()` was called} on
stdout and exit status 2.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import numpy as np

from jaxdeblur.distributed import DistributedError, initialize

SCENARIOS = ("multi", "reference", "join")
WATCHDOG_ENV = "JAXDEBLUR_TEST_WATCHDOG_S"
STOP_AT = 4  # the simulated Ctrl-C: before the loader's batch number 4 (one step per call)


def import_everything() -> list[str]:
    """Imports every module of the package; returns those that started a JAX backend (must be none)."""
    import jaxdeblur
    from jax._src import xla_bridge
    started = []
    for module in pkgutil.walk_packages(jaxdeblur.__path__, "jaxdeblur."):
        importlib.import_module(module.name)
        if xla_bridge.backends_are_initialized() and not started:
            started.append(module.name)
    return started


def sharded_task(**changes):
    """The toy task whose loader yields this process's rows; `eval_shift` moves the evaluation batches."""
    import jax
    from tests.train import toy

    class ShardedLoader(toy.CounterLoader):
        """Global batch j holds indices j*B .. (j+1)*B-1; process p yields block p of it (B / P rows)."""

        def __next__(self):
            batch = super().__next__()
            rows = self.batch_size // jax.process_count()
            block = slice(jax.process_index() * rows, (jax.process_index() + 1) * rows)
            return {name: value[block] for name, value in batch.items()}

        def get_state(self):
            return {"position": self.position, "process": jax.process_index()}

        def set_state(self, state):
            if state["process"] != jax.process_index():  # each process must get back its own position
                raise AssertionError(f"process {jax.process_index()} got the loader state of {state['process']}")
            self.position = state["position"]

    @dataclasses.dataclass(frozen=True)
    class ShardedToyTask(toy.ToyTask):
        eval_shift: float = dataclasses.field(default=0.0, compare=False)

        def train_loader(self, seed):
            return ShardedLoader(self.config.train.batch_size, interrupt_at=self.interrupt_at)

        def eval_batches(self):
            return [{k: v + np.float32(self.eval_shift) for k, v in b.items()} for b in super().eval_batches()]

    return ShardedToyTask(toy.PRESETS["tiny"], **changes)


def _loader_item(step_dir: Path):
    """The JSON of a train checkpoint's "loader" item (orbax JsonSave), or None."""
    for path in sorted((step_dir / "loader").glob("*")):
        try:
            value = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, IsADirectoryError):
            continue
        if isinstance(value, dict) and "state" in value:
            return value
    return None


def train_scenario(out: Path, uninterrupted: bool) -> tuple[dict, dict]:
    import jax
    from jaxdeblur.engine.runner import RunInterrupted
    from jaxdeblur.train import train

    workdir = out / "workdir"
    record = {}
    if not uninterrupted:
        try:
            train(sharded_task(interrupt_at=STOP_AT), workdir, progress=False)
            raise AssertionError("the simulated Ctrl-C did not stop the training")
        except RunInterrupted as stop:
            record["stopped_at"] = stop.step
        record["checkpoint_loader"] = _loader_item(workdir / "checkpoints" / str(STOP_AT))
    result = train(sharded_task(), workdir, resume=not uninterrupted, progress=False)
    leaves = jax.tree.leaves((result.state.params, result.state.rest))
    params = {f"param_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    record["eval"] = result.eval_metrics
    record["step"] = int(result.state.step)
    metrics = workdir / "metrics.jsonl"
    if jax.process_index() == 0:
        record["metrics"] = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return record, params


def deblur_images(shift_process: int | None = None) -> list[np.ndarray]:
    """The 4 blurred 24 x 24 images; process `shift_process` gets image 2 brighter by 0.01."""
    import jax
    from tests.engine.test_engine import blurred_pair
    ys = [blurred_pair(s)[0] for s in range(4)]
    if shift_process is not None and jax.process_index() == shift_process:
        ys[2] = np.clip(ys[2] + np.float32(0.01), 0, 1)
    return ys


def deblur_scenario(ys, checkpoint_dir=None) -> tuple[dict, dict]:
    import jaxdeblur
    from jaxdeblur.engine.runner import EngineOptions
    options = EngineOptions(progress=False, chunk=10, checkpoint_dir=checkpoint_dir)
    results = jaxdeblur.deblur_batch(ys, 5, preset="tiny", seeds=[7, 8, 9, 10], config={"iterations": 10},
                                     options=options)
    arrays = {}
    for i, r in enumerate(results):
        arrays[f"image_{i}"], arrays[f"kernel_{i}"], arrays[f"loss_{i}"] = r.image, r.kernel, r.history["loss"]
    return {"runs": len(results)}, arrays


def differ_scenario(out: Path) -> dict:
    """The errors (or None) when process 1 holds another image / other evaluation batches than process 0."""
    import jax
    from jaxdeblur.train import train
    errors = {}
    index = jax.process_index()
    for what, run in (("deblur", lambda: deblur_scenario(deblur_images(shift_process=1))),
                      ("checkpoints", lambda: deblur_scenario(deblur_images(), checkpoint_dir=str(out / "dip"))),
                      ("train", lambda: train(sharded_task(eval_shift=0.01 * index), out / "differ",
                                              progress=False))):
        t0 = time.perf_counter()
        try:
            run()
            errors[what] = None
        except ValueError as err:
            errors[what] = str(err)
        errors[f"{what}_s"] = round(time.perf_counter() - t0, 2)
    return errors


def main(argv: list[str]) -> int:
    scenario, out = argv[0], Path(argv[1])
    if scenario not in SCENARIOS:
        raise SystemExit(f"unknown scenario {scenario!r}; one of {SCENARIOS}")
    if os.environ.get(WATCHDOG_ENV):  # a hung worker prints every thread's stack and exits (status 1)
        faulthandler.dump_traceback_later(float(os.environ[WATCHDOG_ENV]), exit=True)
    t0 = time.perf_counter()
    record = {"backend_started_by": import_everything(), "import_s": round(time.perf_counter() - t0, 2)}
    t_init = time.perf_counter()
    try:
        record["joined"] = initialize()
        import jax
        index = jax.process_index()
        record.update(process=index, processes=jax.process_count(), devices=jax.device_count(),
                      local_devices=jax.local_device_count(), init_s=round(time.perf_counter() - t_init, 2))
        arrays = {}
        if scenario == "multi":
            record["errors"] = differ_scenario(out)
        if scenario in ("multi", "reference"):
            t1 = time.perf_counter()
            more, arrays = train_scenario(out, uninterrupted=scenario == "reference")
            record.update(more, train_s=round(time.perf_counter() - t1, 2))
            t1 = time.perf_counter()
            more, deblurred = deblur_scenario(deblur_images())
            record.update(more, deblur_s=round(time.perf_counter() - t1, 2))
            arrays.update(deblurred)
    except (ValueError, DistributedError) as err:
        print(f"error: {err}", file=sys.stderr)
        print(json.dumps({"failed_after_init_s": round(time.perf_counter() - t_init, 2)}))
        return 2
    record["wall_s"] = round(time.perf_counter() - t0, 2)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"process{index}.json").write_text(json.dumps(record, indent=1))
    np.savez(out / f"process{index}.npz", **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
