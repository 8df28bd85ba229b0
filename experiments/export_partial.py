"""Export the newest checkpoint of a training that was stopped early, labelled as such.

A training that could not finish in a session (a shared CPU, a time limit)
still leaves its newest orbax checkpoint; this writes it as shipped weights
(checkpoints/<model>/<preset>/) with the measured evaluation and check
metrics, and a manifest that says at which step of how many it stopped and
how to resume (`jaxdeblur train ... --resume` continues the same run).

  python -m experiments.export_partial nafnet --preset cpu --workdir runs/nafnet-cpu \
      --data /work/shared/data/train400 --val-data /work/shared/data/bsd68
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jaxdeblur.config import resolve
from jaxdeblur.models import get_model
from jaxdeblur.train import export
from jaxdeblur.train.checkpoints import TrainCheckpoints
from jaxdeblur.train.parallel import data_mesh
from jaxdeblur.train.program import program_for


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--val-data", default=None)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1] / "checkpoints")
    args = parser.parse_args()

    module = get_model(args.model)
    config = resolve(module.PRESETS, args.preset, None)
    folders = {"data": args.data, "val_data": args.val_data}
    task = module.make_task(config, **{k: v for k, v in folders.items() if v is not None})
    stamp = json.loads((args.workdir / "run.json").read_text())
    checkpoints = TrainCheckpoints(args.workdir / "checkpoints", keep=config.train.keep_checkpoints,
                                   best_metric=task.best_metric)
    checkpoints.check_stamp(stamp)  # the workdir was written by this task and config
    program = program_for(task, data_mesh())
    state, _ = checkpoints.restore(program.initial_state(config.train.seed))
    checkpoints.close()
    step = int(state.step)
    metrics = program.evaluate(state, program.device_eval_batches(task.eval_batches()))
    if hasattr(module, "check_metrics"):
        metrics.update(module.check_metrics(module.make_inference(program.model(state), config), config))
    data = {**folders, "stopped_at_step": step, "of_steps": config.train.steps,
            "note": (f"training stopped at step {step} of {config.train.steps} (a shared 2-core CPU ran out of "
                     f"session time); resume with: jaxdeblur train {args.model} --preset {args.preset} "
                     f"--workdir {args.workdir} --data ... --val-data ... --resume --export checkpoints")}
    folder = export(task, state, args.root, preset=args.preset, data=data, metrics=metrics, steps=step,
                    overwrite=True)
    print(json.dumps({"exported": str(folder), "step": step, "metrics": metrics}, indent=1))


if __name__ == "__main__":
    main()
