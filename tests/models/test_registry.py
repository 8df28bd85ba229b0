"""The model registry and shipped weights: export, load, hash checks, search roots."""

import json
import shutil

import numpy as np
import pytest
from flax import nnx

from jaxdeblur import models
from jaxdeblur.models import weights
from jaxdeblur.train import export
from tests.train import toy

CONFIG = toy.PRESETS["tiny"]
TASK = toy.make_task(CONFIG)


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(models.MODELS, "toy", "tests.train.toy")


def psnr_of(fn, batches):
    return float(np.mean([float(toy.psnr(fn(b["noisy"]), b["clean"])) for b in batches]))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(root, stored psnr): a toy model with distinctive weights and BatchNorm statistics, exported."""
    model = toy.build_model(CONFIG, rngs=nnx.Rngs(3))
    model.norm.mean[...] = 0.1 * np.arange(CONFIG.width, dtype=np.float32)  # non-trainable state travels too
    root = tmp_path_factory.mktemp("weights")
    stored = psnr_of(toy.make_inference(model, CONFIG), TASK.eval_batches())
    export(TASK, model, root, preset="tiny", data={"source": "toy"}, metrics={"psnr": stored}, steps=7)
    return root, stored


def test_load_reproduces_the_stored_metric(exported):
    root, stored = exported
    loaded = models.load("toy-tiny", root=root)
    assert loaded.manifest["metrics"]["psnr"] == pytest.approx(stored, abs=1e-6)
    assert psnr_of(loaded, TASK.eval_batches()) == pytest.approx(stored, abs=1e-5)
    np.testing.assert_allclose(np.asarray(loaded.model.norm.mean[...]), 0.1 * np.arange(CONFIG.width), rtol=1e-6)
    assert loaded.config == CONFIG and loaded.name == "toy-tiny"
    assert models.load("toy", preset="tiny", root=root).manifest == loaded.manifest


def test_manifest(exported):
    root, _ = exported
    manifest = json.loads((root / "toy" / "tiny" / "manifest.json").read_text())
    assert (manifest["model"], manifest["preset"], manifest["steps"]) == ("toy", "tiny", 7)
    assert manifest["data"] == {"source": "toy"} and manifest["config"]["train"]["batch_size"] == 8
    assert manifest["parameters"] == 9 * CONFIG.width + 2 * CONFIG.width + 9 * CONFIG.width + 1
    assert set(manifest["versions"]) >= {"jax", "flax", "orbax-checkpoint"} and manifest["size_mb"] < 20
    assert manifest["files"] and all(name.startswith("params/") for name in manifest["files"])
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def largest_file(folder):
    return max((p for p in (folder / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_corrupt_or_missing_file_is_named(exported, tmp_path):
    root, _ = exported
    shutil.copytree(root, tmp_path / "copy")
    folder = tmp_path / "copy" / "toy" / "tiny"
    victim = largest_file(folder)
    name = victim.relative_to(folder).as_posix()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"corrupt.*{name}"):
        models.load("toy-tiny", root=tmp_path / "copy")
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=f"missing.*{name}"):
        models.load("toy-tiny", root=tmp_path / "copy")


def test_export_refuses_to_overwrite_and_limits_size(exported, tmp_path):
    root, _ = exported
    model = toy.build_model(CONFIG, rngs=nnx.Rngs(0))
    with pytest.raises(FileExistsError, match="overwrite"):
        export(TASK, model, root, preset="tiny", data=None, metrics={})
    with pytest.raises(ValueError, match="max_mb"):
        export(TASK, model, tmp_path, preset="tiny", data=None, metrics={}, max_mb=1e-6)
    assert not (tmp_path / "toy" / "tiny").exists()


def test_registry_and_names(exported, monkeypatch):
    root, _ = exported
    with pytest.raises(ValueError, match="registered models"):
        models.get_model("no-such-model")
    monkeypatch.setitem(models.MODELS, "broken", "json")
    with pytest.raises(TypeError, match="PRESETS"):
        models.get_model("broken")
    with pytest.raises(ValueError, match="<model>-<preset>"):
        models.load("toy", root=root)
    with pytest.raises(FileNotFoundError, match="toy-tiny"):
        models.load("toy-paper", root=root)
    assert models.available(root=root) == ["toy-tiny"]
    assert "toy" in models.model_names()


def test_search_roots(exported, monkeypatch):
    root, _ = exported
    monkeypatch.setenv(weights.ENV_ROOT, str(root))
    assert weights.checkpoint_roots()[0] == root
    assert models.find_weights("toy", "tiny") == root / "toy" / "tiny"
    assert "toy-tiny" in models.available()
