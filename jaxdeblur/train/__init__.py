"""The one supervised trainer: a `Task` (jaxdeblur.train.task) trained by `train`, shipped by `export`.

    from jaxdeblur.train import train, export
    result = train(task, "runs/nafnet-cpu")                    # resume=True continues a run
    export(task, result, "checkpoints", preset="cpu", data={...}, metrics=result.eval_metrics)

Modules: task (TrainSettings, Task, Loader: the contract), state (TrainState),
program (the jitted step / call / evaluation), parallel (mesh and shardings),
checkpoints (orbax), log (JSON lines), lock (one run per workdir), trainer (the loop), export (weights
folders), records (configs as JSON); the `jaxdeblur train` command is in jaxdeblur.cli.models.
"""

from jaxdeblur.train.export import export
from jaxdeblur.train.records import config_from_record, config_record, override_nested
from jaxdeblur.train.state import TrainState
from jaxdeblur.train.task import Loader, Task, TrainSettings
from jaxdeblur.train.trainer import TrainResult, train

__all__ = ["Loader", "Task", "TrainResult", "TrainSettings", "TrainState", "config_from_record", "config_record",
           "export", "override_nested", "train"]
