"""The shipped UFPNet weights (checkpoints/ufpnet/cpu): load() reproduces the metrics stored at export."""

import dataclasses

import numpy as np
import pytest

from jaxdeblur import models
from jaxdeblur.models import ufpnet


def test_shipped_cpu_weights_reproduce_their_manifest():
    if "ufpnet-cpu" not in models.available():
        pytest.fail("checkpoints/ufpnet/cpu is missing: the CPU UFPNet weights must ship with the package")
    loaded = models.load("ufpnet-cpu")
    # trained with the current cpu preset (stage 2, from a stage-1 folder)
    assert dataclasses.replace(loaded.config, init_weights=None) == ufpnet.CPU
    measured = ufpnet.check_metrics(loaded, loaded.config)
    stored = loaded.manifest["metrics"]
    for name in ("check_psnr", "check_psnr_input", "check_reblur_l1"):
        assert measured[name] == pytest.approx(stored[name], abs=1e-3), name
    assert np.isfinite(stored["psnr"]) and stored["psnr"] > stored["psnr_input"]  # it deblurs the validation crops


def test_restore_api_and_command_with_the_kernel_field(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    import jaxdeblur
    from jaxdeblur.cli import app

    x = np.random.default_rng(0).uniform(0.2, 0.8, (20, 21)).astype(np.float32)
    restored = jaxdeblur.restore(x, model="ufpnet-cpu")
    assert restored.shape == x.shape and restored.dtype == np.float32
    Image.fromarray((x * 255).round().astype(np.uint8)).save(tmp_path / "shot.png")
    result = CliRunner().invoke(app, ["restore", str(tmp_path / "shot.png"), "-o", str(tmp_path / "out"),
                                      "--model", "ufpnet-cpu"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "shot_kernels.png") as figure:  # kernels on a grid + the sigma map
        assert figure.size[0] > figure.size[1] > 100
    with Image.open(tmp_path / "out" / "shot_restored.png") as img:
        assert (img.mode, img.size) == ("L", (21, 20))
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left
