"""`jaxdeblur train`: trains a registered model, exports its weights, refuses a mismatched resume."""

import json

import pytest
from typer.testing import CliRunner

from jaxdeblur import models
from jaxdeblur.cli import app
from tests.train import toy


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
    stored = loaded.manifest["metrics"]
    assert {name: stored[name] for name in summary["eval"]} == summary["eval"] and loaded.manifest["steps"] == 8
    # the model's data-free check metric, stored at export, reproduced after load
    assert stored["check_psnr"] == pytest.approx(toy.check_metrics(loaded, loaded.config)["check_psnr"], abs=1e-4)

    other = runner.invoke(app, ["train", "toy", "--preset", "tiny", "--workdir", str(workdir), "--resume",
                                "--set", "lr=0.5", "--set", "train.log_every=1"])
    assert other.exit_code == 2 and "cannot resume" in other.output and "config.lr" in other.output
    unknown = runner.invoke(app, ["train", "toy", "--preset", "tiny", "--workdir", str(tmp_path / "x"),
                                  "--set", "train.nosuch=1"])
    assert unknown.exit_code == 2 and "nosuch" in unknown.output
