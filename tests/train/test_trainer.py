"""The trainer on the toy task: learning, logs, checkpoints (latest + best), resume, refusals, NaN guard.

Every run here trains the same config, so they share one compiled step.
"""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from jaxdeblur import models
from jaxdeblur.train import export, train
from jaxdeblur.train.lock import WorkdirInUse, workdir_lock
from jaxdeblur.train.trainer import _due
from tests.train import toy

TASK = toy.make_task(toy.PRESETS["tiny"])  # 8 steps, batch 8; eval every 4, checkpoint every 2, keep 2


def lines(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def assert_same_tree(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: (result, workdir)."""
    workdir = tmp_path_factory.mktemp("reference")
    return train(TASK, workdir, progress=False), workdir


def test_training_lowers_the_loss_and_updates_batch_statistics(reference):
    result, workdir = reference
    losses = [line["train"]["loss"] for line in lines(workdir) if "train" in line]
    assert losses[-1] < 0.5 * losses[0]
    evals = [line["eval"]["psnr"] for line in lines(workdir) if "eval" in line]
    assert evals[-1] > evals[0] and result.eval_metrics["psnr"] == evals[-1]
    assert int(result.state.step) == 8 and int(result.state.skipped) == 0
    assert np.abs(np.asarray(result.model().norm.mean[...])).max() > 1e-3  # BatchNorm statistics left 0


def test_metrics_json_lines(reference):
    _, workdir = reference
    records = lines(workdir)
    assert [r["step"] for r in records] == [2, 4, 6, 8]  # log every 2
    assert [r["step"] for r in records if "eval" in r] == [4, 8]
    assert "compile_s" in records[0] and all("compile_s" not in r for r in records[1:])
    for r in records:
        assert set(r["train"]) == {"loss", "mse"} and r["skipped"] == 0 and r["images_per_s"] > 0
    assert json.loads((workdir / "run.json").read_text())["task"] == "toy"


def test_keeps_latest_and_best_checkpoints(reference, tmp_path):
    result, workdir = reference
    # Checkpoints at 2, 4 (evaluated), 6, 8 (evaluated): the newest two, the best is the last.
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [6, 8]
    assert result.best_step == 8
    # Ranked the other way, step 4 is the best and is kept beside the newest two.
    worst_is_best = dataclasses.replace(TASK, best_metric=("psnr", "min"))
    other = train(worst_is_best, tmp_path, progress=False)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [4, 6, 8]
    assert other.best_step == 4


def test_interrupted_and_resumed_equals_uninterrupted(reference, tmp_path):
    result, _ = reference
    with pytest.raises(KeyboardInterrupt) as interrupted:
        train(dataclasses.replace(TASK, interrupt_at=5), tmp_path, progress=False)
    assert interrupted.value.step == 5 and interrupted.value.checkpoint_dir == str(tmp_path / "checkpoints")
    assert 5 in [int(p.name) for p in (tmp_path / "checkpoints").iterdir()]  # saved on the interrupt
    resumed = train(TASK, tmp_path, resume=True, progress=False)
    assert_same_tree(resumed.state, result.state)
    assert resumed.eval_metrics == result.eval_metrics
    assert [r["step"] for r in lines(tmp_path)] == [2, 4, 6, 8]  # no duplicated lines after the resume


def test_refuses_to_restart_or_resume_another_config(reference):
    _, workdir = reference
    with pytest.raises(FileExistsError, match="resume"):
        train(TASK, workdir, progress=False)
    other = toy.make_task(dataclasses.replace(toy.PRESETS["tiny"], lr=0.5))
    with pytest.raises(ValueError, match=r"\['config\.lr'\]"):
        train(other, workdir, resume=True, progress=False)


def test_non_finite_steps_are_skipped_and_counted(tmp_path):
    result = train(dataclasses.replace(TASK, poison_at=(2, 5)), tmp_path, progress=False)
    assert int(result.state.skipped) == 2 and int(result.state.step) == 8
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(result.state))
    records = lines(tmp_path)
    assert [r["skipped"] for r in records] == [0, 1, 2, 2]
    assert all(np.isfinite(r["train"]["loss"]) for r in records)  # means over the finite steps


def test_exported_weights_reproduce_the_evaluation(reference, tmp_path, monkeypatch):
    result, _ = reference
    monkeypatch.setitem(models.MODELS, "toy", "tests.train.toy")
    export(TASK, result.state, tmp_path, preset="tiny", data={"source": "toy"}, metrics=result.eval_metrics)
    loaded = models.load("toy-tiny", root=tmp_path)
    batches = TASK.eval_batches()  # equal sizes: the mean of batch means is the trainer's weighted mean
    psnr = np.mean([float(toy.psnr(loaded(b["noisy"]), b["clean"])) for b in batches])
    assert psnr == pytest.approx(loaded.manifest["metrics"]["psnr"], abs=1e-4)
    assert loaded.manifest["steps"] == 8


def test_events_at_call_boundaries():
    assert _due(4, 0, 4, 10) and not _due(4, 4, 7, 10) and _due(4, 7, 10, 10)  # crossing 8, the last step
    assert _due(4, 3, 6, 12) and not _due(4, 0, 3, 12)


def test_a_second_training_in_a_busy_workdir_stops_before_any_work(tmp_path):
    with workdir_lock(tmp_path):  # as a run still going in another process would hold it
        with pytest.raises(WorkdirInUse, match=f"in use by another training \\(pid {os.getpid()}\\)"):
            train(TASK, tmp_path, resume=True, progress=False)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()
