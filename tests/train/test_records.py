"""Configs as JSON records: round trip, dotted overrides, differences."""

import dataclasses
import typing

import pytest

from jaxdeblur.train import TrainSettings, config_from_record, config_record, override_nested
from jaxdeblur.train.records import record_differences, upgrade_record, upgrade_stamp


@dataclasses.dataclass(frozen=True)
class Config:
    width: int = 16
    blocks: tuple = (1, 2)
    lr: float = 1e-3
    train: TrainSettings = TrainSettings(steps=10, batch_size=4)


def test_round_trip_keeps_types():
    config = Config(width=8, blocks=(3, 4, 5), train=TrainSettings(steps=3, batch_size=2, compute_dtype="bfloat16"))
    record = config_record(config)
    assert record["blocks"] == [3, 4, 5] and record["train"]["steps"] == 3
    assert config_from_record(Config(), record) == config
    assert config_from_record(Config(), {"width": 2}) == Config(width=2)  # absent fields keep the template's
    with pytest.raises(ValueError, match="unknown"):
        config_from_record(Config(), {"depth": 2})
    with pytest.raises(TypeError, match="dataclass"):
        config_record({"width": 2})


def test_dotted_overrides():
    config = override_nested(Config(), {"width": "32", "train.steps": 5, "train.compute_dtype": "bfloat16"})
    assert config.width == 32 and config.train.steps == 5 and config.train.compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="nosuch"):
        override_nested(Config(), {"train.nosuch": 1})
    with pytest.raises(ValueError, match="nested"):
        override_nested(Config(), {"width.x": 1})
    with pytest.raises(ValueError, match="steps"):
        override_nested(Config(), {"train.steps": 0})  # TrainSettings checks its values


def test_differences():
    a, b = config_record(Config()), config_record(Config(lr=0.1, train=TrainSettings(steps=11, batch_size=4)))
    assert record_differences(a, b) == ["lr", "train.steps"] and record_differences(a, a) == []


@dataclasses.dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class Moved:
    """`Config` after its `lr` moved into a nested `optim` (as the models' optim / data sub-configs did)."""

    record_moves: typing.ClassVar[dict] = {"lr": "optim.lr", "decay": "optim.decay"}
    width: int = 16
    blocks: tuple = (1, 2)
    optim: Optim = Optim()
    train: TrainSettings = TrainSettings(steps=10, batch_size=4)


def test_records_and_overrides_of_moved_fields_are_read_at_their_new_place():
    old = config_record(Config(width=8, lr=0.5))  # the flat layout, as an older manifest holds it
    assert config_from_record(Moved(), old) == Moved(width=8, optim=Optim(lr=0.5))
    assert upgrade_record(Moved(), old)["optim"] == {"lr": 0.5}
    new = config_record(Moved(width=8, optim=Optim(lr=0.5)))
    assert upgrade_record(Moved(), new) == new
    assert config_from_record(Moved(), new) == Moved(width=8, optim=Optim(lr=0.5))
    assert override_nested(Moved(), {"lr": "0.25", "optim.decay": 0.1}).optim == Optim(lr=0.25, decay=0.1)
    with pytest.raises(ValueError, match="unknown"):
        config_from_record(Moved(), {"depth": 2})


def test_a_stamp_of_the_flat_layout_resumes_and_other_stamps_stay_as_they_are():
    class Task:
        config = Moved(width=8, optim=Optim(lr=0.5))

    flat = {"task": "t", "config": config_record(Config(width=8, lr=0.5))}
    assert upgrade_stamp(Task, flat) == {"task": "t", "config": config_record(Task.config)}
    changed = {"task": "t", "config": {**flat["config"], "lr": 0.1}}
    assert record_differences(upgrade_stamp(Task, changed), {"task": "t", "config": config_record(Task.config)}) == [
        "config.optim.lr"]
    current = {"task": "t", "config": config_record(Task.config)}
    assert upgrade_stamp(Task, current) == current

    class Plain:
        config = Config()

    assert upgrade_stamp(Plain, flat) == flat


@pytest.mark.parametrize("name", ["nafnet", "ufpnet", "kernel_space"])
def test_the_shipped_manifests_flat_configs_rebuild_the_presets(name):
    """The weights shipped before the optim / data sub-configs keep their (hashed) manifests: load reads them."""
    import json
    from pathlib import Path

    from jaxdeblur.models import get_model

    module = get_model(name)
    manifest = json.loads((Path(__file__).resolve().parents[2] / "checkpoints" / name / "cpu" / "manifest.json")
                          .read_text())
    assert "lr" in manifest["config"] and "degrade" in manifest["config"]  # the flat layout
    expected = module.PRESETS["cpu"]
    config = config_from_record(expected, manifest["config"])  # the template `load` takes: the preset's
    if name == "ufpnet":  # trained from a stage-1 folder
        expected = dataclasses.replace(expected, init_weights=manifest["config"]["init_weights"])
    assert config == expected
    record = config_record(config)
    moved = [name for name in manifest["config"] if name in type(config).record_moves]
    assert "lr" in moved and "degrade" in moved
    for name in moved:  # every flat entry is read at its new place
        sub, field = type(config).record_moves[name].split(".")
        assert record[sub][field] == manifest["config"][name], name
