"""Checkpoints: written at exactly the asked iterations, verified on restore, damaged steps skipped.

Through the API at the tiny preset (24 x 24, 5 x 5 kernel, one run, checkpoints every 10 of 20
iterations: one compiled chunk of 10, shared with tests/test_cli.py).
"""

import dataclasses

import jax
import numpy as np
import pytest

from jaxdeblur.api import deblur
from jaxdeblur.engine import checkpoint as checkpoint_module
from jaxdeblur.engine.runner import EngineOptions

SIZE, K = 24, 5
EVERY_10 = EngineOptions(progress=False, chunk=10, checkpoint_every=10)


def grey(seed=0):
    return np.random.default_rng(seed).uniform(0.1, 0.9, (SIZE, SIZE)).astype(np.float32)


def run(root, **changes):
    return deblur(grey(), K, preset="tiny", seed=2, finish=False,
                  options=dataclasses.replace(EVERY_10, checkpoint_dir=str(root), **changes))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run (checkpoints every 10 iterations)."""
    return run(tmp_path_factory.mktemp("straight"))


def test_checkpoint_every_is_honoured_exactly(tmp_path, monkeypatch, straight):
    saved = []
    real_save = checkpoint_module.RunCheckpointer.save

    def recording(self, step, *args, **kwargs):
        saved.append(step)
        real_save(self, step, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", recording)
    result = run(tmp_path, chunk=100)  # chunks are cut at the checkpoints, not the other way round
    assert saved == [10, 20]
    np.testing.assert_array_equal(result.image, straight.image)
    with pytest.raises(ValueError, match=r"checkpoint_every must be a positive number .* \(e.g. 10 or 50\), got 0"):
        run(tmp_path / "zero", checkpoint_every=0)


def _truncate(step_dir):
    for path in (step_dir / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])


def _poisoned_save(monkeypatch, at_step):
    """Checkpoints at `at_step` get a NaN state, with a digest that matches it (only the values are bad)."""
    real_save = checkpoint_module.RunCheckpointer.save

    def save(self, step, state, *args, **kwargs):
        if step == at_step:
            state = jax.tree.map(lambda x: x * np.nan if np.issubdtype(x.dtype, np.floating) else x, state)
        real_save(self, step, state, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", save)
    return real_save


@pytest.mark.parametrize("damage", ["truncated", "not finite"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, monkeypatch, straight, damage):
    if damage == "not finite":
        real_save = _poisoned_save(monkeypatch, 20)
    run(tmp_path)
    if damage == "not finite":
        monkeypatch.setattr(checkpoint_module.RunCheckpointer, "save", real_save)
    [folder] = [r.directory for r in checkpoint_module.find_runs(tmp_path)]
    if damage == "truncated":
        _truncate(folder / "20")
    said = []
    resumed = run(tmp_path, resume=True, log=said.append)
    problems = [line for line in said if "unusable" in line]
    assert len(problems) == 1 and str(folder / "20") in problems[0], said
    assert ("NaN" in problems[0]) == (damage == "not finite")
    assert resumed.timings["iterations_run"] == 10  # continued from iteration 10
    np.testing.assert_allclose(resumed.image, straight.image, atol=1e-6)
    np.testing.assert_allclose(resumed.kernel, straight.kernel, atol=1e-7)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-6)
    assert checkpoint_module.RunCheckpointer(folder).steps() == [10, 20]  # the bad step was rewritten


def test_with_no_usable_checkpoint_the_run_starts_again(tmp_path, straight):
    run(tmp_path)
    [folder] = [r.directory for r in checkpoint_module.find_runs(tmp_path)]
    for step in (10, 20):
        _truncate(folder / str(step))
    said = []
    resumed = run(tmp_path, resume=True, log=said.append)
    assert sum("unusable" in line for line in said) == 2 and any("starting from the beginning" in s for s in said)
    assert resumed.timings["iterations_run"] == 20
    np.testing.assert_allclose(resumed.image, straight.image, atol=1e-6)


def test_digest_covers_every_leaf():
    tree = {"a": np.arange(4, dtype=np.float32), "b": np.zeros((2, 2), np.uint32)}
    other = {"a": np.arange(4, dtype=np.float32), "b": np.ones((2, 2), np.uint32)}
    assert checkpoint_module.state_digest(tree) == checkpoint_module.state_digest(dict(tree))
    assert checkpoint_module.state_digest(tree) != checkpoint_module.state_digest(other)
