"""Configs as JSON records: round trip, dotted overrides, differences."""

import dataclasses

import pytest

from jaxdeblur.train import TrainSettings, config_from_record, config_record, override_nested
from jaxdeblur.train.records import record_differences


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
