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
