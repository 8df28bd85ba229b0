"""`make demo` end to end: it runs, writes its files and reports honest numbers (a DIP run's files: tests/test_cli.py)."""

import json

import numpy as np
import pytest

from jaxdeblur import demo
from jaxdeblur.forward import blur
from jaxdeblur.outputs import OutputExistsError


def test_demo_problem_is_a_valid_blur_of_the_sharp_crop():
    blurred, sharp, kernel = demo.demo_problem()
    assert blurred.shape == sharp.shape == (demo.DEMO_SIZE - demo.DEMO_KERNEL_SIZE + 1,) * 2
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-5)
    # the sharp crop is aligned with the blurred image: re-blurring the full photo reproduces it up to noise
    from jaxdeblur.data import sample_photos
    full = sample_photos((demo.DEMO_PHOTO,), size=demo.DEMO_SIZE)[demo.DEMO_PHOTO]
    assert np.sqrt(np.mean((np.asarray(blur(full, kernel, "valid")) - blurred) ** 2)) < 2 * demo.DEMO_NOISE


def test_demo_runs_the_map_pipeline_writes_outputs_and_never_overwrites_unasked(tmp_path):
    """What `make demo` runs on a CPU (method auto = map, its tuned default + the learned step)."""
    report = demo.run_demo(tmp_path)
    assert report["method"] == "map" and report["isnr_db"] > 2.0 and report["kernel_similarity"] > 0.8
    psnr = report["aligned_psnr_db"]
    assert report["isnr_db"] == pytest.approx(psnr["restored"] - psnr["blurred"])
    assert report["isnr_deconvolved_db"] == pytest.approx(psnr["deconvolved"] - psnr["blurred"])
    for key in ("restored", "deconvolved", "kernel", "figure", "json"):
        assert (tmp_path / report["paths"][key].split("/")[-1]).is_file()
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["isnr_db"] == report["isnr_db"] and record["method"] == "map"
    before = (tmp_path / "demo_restored.png").read_bytes()
    with pytest.raises(OutputExistsError, match="demo_restored.png already exists"):
        demo.run_demo(tmp_path)  # refused before any work
    assert (tmp_path / "demo_restored.png").read_bytes() == before
