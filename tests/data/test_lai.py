"""The Lai et al. folder loader and its Y-channel evaluation, on a tiny folder written here."""

import numpy as np
import pytest

from jaxdeblur import data
from jaxdeblur.color import rgb_to_y
from jaxdeblur.forward import blur
from jaxdeblur.io import save_image


def _write_lai(root, kernel_folder="kernels"):
    rng = np.random.default_rng(0)
    for folder in ("ground_truth", kernel_folder, "blurred"):
        (root / folder).mkdir(parents=True)
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, :] = 1.0
    kernel[1, 4] = 2.0  # not symmetric: the orientation is observable
    save_image(root / kernel_folder / "kernel_01.png", kernel / kernel.max())
    sharp = {name: rng.uniform(0, 1, (40, 48, 3)).astype(np.float32) for name in ("manmade_01", "text_02")}
    for name, img in sharp.items():
        save_image(root / "ground_truth" / f"{name}.png", img)
        save_image(root / "blurred" / f"{name}_kernel_01.png", np.clip(np.asarray(blur(img, kernel / kernel.sum(), "same")), 0, 1))
    return kernel / kernel.sum(), sharp


def test_lai_loader(tmp_path):
    kernel, sharp = _write_lai(tmp_path)
    items = data.lai(tmp_path)
    assert [it.name for it in items] == ["manmade_01_kernel_01", "text_02_kernel_01"]
    for it in items:
        assert it.blurred.shape == it.sharp.shape == (40, 48, 3) and it.blurred.dtype == np.float32
        np.testing.assert_allclose(it.sharp, np.round(sharp[it.name.split("_kernel")[0]] * 255) / 255, atol=1e-6)
        np.testing.assert_allclose(it.kernel.sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(it.kernel, kernel, atol=2e-3)
    np.testing.assert_allclose(data.lai(tmp_path, flip_kernels=True)[0].kernel, kernel[::-1, ::-1], atol=2e-3)
    assert [it.name for it in data.lai(tmp_path, categories=("text",))] == ["text_02_kernel_01"]


def test_lai_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ground_truth"):
        data.lai(tmp_path)
    _write_lai(tmp_path, kernel_folder="kernel")  # the singular folder name works too
    assert len(data.lai(tmp_path)) == 2
    save_image(tmp_path / "blurred" / "people_03_kernel_02.png", np.zeros((40, 48, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="people_03"):
        data.lai(tmp_path)
    (tmp_path / "blurred" / "people_03_kernel_02.png").rename(tmp_path / "blurred" / "oddname.png")
    with pytest.raises(ValueError, match="oddname"):
        data.lai(tmp_path)


def test_lai_psnr_ssim_on_matlab_y():
    rng = np.random.default_rng(1)
    sharp = rng.uniform(0, 1, (48, 48, 3)).astype(np.float32)
    p, s = data.lai_psnr_ssim(sharp, sharp)
    assert p > 60 and s == pytest.approx(1.0, abs=1e-4)
    noisy = np.clip(sharp + 0.02 * rng.standard_normal(sharp.shape).astype(np.float32), 0, 1)
    p, s = data.lai_psnr_ssim(noisy, sharp)
    y_noisy, y_sharp = np.asarray(rgb_to_y(noisy)), np.asarray(rgb_to_y(sharp))
    p_y, s_y = data.lai_psnr_ssim(y_noisy, y_sharp)  # gray input is taken as Y already
    assert (p, s) == pytest.approx((p_y, s_y), abs=1e-4)
    crop = y_sharp[15:-15, 15:-15]
    expected = 10 * np.log10(1.0 / np.mean((y_noisy[15:-15, 15:-15] - crop) ** 2))
    assert p >= expected - 1e-3  # the shift search can only improve on the unshifted PSNR
