"""`jaxdeblur train`: trains a registered model, exports its weights, refuses a mismatched resume."""

import json

import pytest
from typer.testing import CliRunner

from jaxdeblur import models
from jaxdeblur.cli import app


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(models.MODELS, "toy", "tests.train.toy")


def test_train_export_and_refusals(tmp_path):
    runner = CliRunner()
    workdir, weights = tmp_path / "run", tmp_path / "weights"
    done = runner.invoke(app, ["train", "toy", "--preset", "tiny", "--workdir", str(workdir), "--steps", "8",
                               "--export", str(weights), "--no-progress"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output[done.output.index("{"):])
    assert summary["steps"] == 8 and summary["eval"]["psnr"] > 0
    loaded = models.load("toy-tiny", root=weights)
    assert loaded.manifest["metrics"] == summary["eval"] and loaded.manifest["steps"] == 8

    other = runner.invoke(app, ["train", "toy", "--preset", "tiny", "--workdir", str(workdir), "--resume",
                                "--set", "lr=0.5", "--set", "train.log_every=1"])
    assert other.exit_code == 2 and "cannot resume" in other.output and "config.lr" in other.output
    unknown = runner.invoke(app, ["train", "toy", "--preset", "tiny", "--workdir", str(tmp_path / "x"),
                                  "--set", "train.nosuch=1"])
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
