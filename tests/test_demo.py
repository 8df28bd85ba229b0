"""`make demo` end to end at the tiny preset: it runs, writes its files and reports honest numbers."""

import json

import numpy as np
import pytest

from jaxdeblur import demo
from jaxdeblur.forward import blur


def test_demo_problem_is_a_valid_blur_of_the_sharp_crop():
    blurred, sharp, kernel = demo.demo_problem()
    assert blurred.shape == sharp.shape == (demo.DEMO_SIZE - demo.DEMO_KERNEL_SIZE + 1,) * 2
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-5)
    # the sharp crop is aligned with the blurred image: re-blurring the full photo reproduces it up to noise
    from jaxdeblur.data import sample_photos
    full = sample_photos((demo.DEMO_PHOTO,), size=demo.DEMO_SIZE)[demo.DEMO_PHOTO]
    assert np.sqrt(np.mean((np.asarray(blur(full, kernel, "valid")) - blurred) ** 2)) < 2 * demo.DEMO_NOISE


def test_run_demo_writes_outputs(tmp_path):
    report = demo.run_demo(tmp_path, preset="tiny", iterations=4)
    assert report["iterations"] == 4 and np.isfinite(report["isnr_db"])
    gain = report["aligned_psnr_db"]["restored"] - report["aligned_psnr_db"]["blurred"]
    assert report["isnr_db"] == pytest.approx(gain)
    for key in ("restored", "kernel", "figure", "json"):
        assert (tmp_path / report["paths"][key].split("/")[-1]).is_file()
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["isnr_db"] == report["isnr_db"] and len(record["history"]["loss"]) == 4
