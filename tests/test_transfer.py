"""`jaxdeblur.transfer_blur` / `jaxdeblur transfer`: blur transfer with the shipped kernel-space weights, small."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import jaxdeblur
from jaxdeblur.cli import app


def _save(path, array):
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0.1, 0.9, size=(2, 21, 19, 1)).astype(np.float32)
    blurred = np.clip(0.5 * (sharp + np.roll(sharp, 2, axis=2)), 0, 1)  # a horizontal two-tap blur
    return sharp, blurred, rng.uniform(size=(2, 17, 23, 1)).astype(np.float32)


def test_batched_any_size_and_channels(pairs):
    a, y, b = pairs
    out = jaxdeblur.transfer_blur(a, y, b)  # pair i -> image i, b another (odd) size than a
    assert out.shape == b.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert np.abs(out - b).mean() > 1e-3  # it blurs
    np.testing.assert_allclose(jaxdeblur.transfer_blur(a[1], y[1], b[1]), out[1], atol=1e-5)  # batch == single
    one_pair = jaxdeblur.transfer_blur(a[0, ..., 0], y[0, ..., 0], b)  # one (H, W) pair's blur on every image
    np.testing.assert_allclose(one_pair[0], out[0], atol=1e-5)
    colour = jaxdeblur.transfer_blur(a[0], y[0], np.repeat(b[0], 3, axis=-1))  # gray pair, colour image
    assert colour.shape == (17, 23, 3)
    np.testing.assert_allclose(colour[..., 2], out[0, ..., 0], atol=1e-5)  # channel by channel
    gray = jaxdeblur.transfer_blur(np.repeat(a[0], 3, -1), np.repeat(y[0], 3, -1), b[0, ..., 0])  # colour pair
    np.testing.assert_allclose(gray, out[0, ..., 0], atol=1e-5)


@pytest.mark.parametrize("change, match", [
    (lambda a, y, b: (a, y[:, :20], b), "sharp_a .* and blurred_a .* same shape"),
    (lambda a, y, b: (a, y, np.concatenate([b, b[:1]])), "one pair or as many"),
    (lambda a, y, b: (a, np.where(y > 0.5, np.nan, y), b), "blurred_a must be non-empty and finite"),
    (lambda a, y, b: (a, y, b * 255), r"sharp_b must hold values in \[0, 1\]"),
    (lambda a, y, b: (a[..., 0][..., None, None], y, b), "sharp_a must be"),
])
def test_bad_inputs_are_one_line_value_errors(pairs, change, match):
    with pytest.raises(ValueError, match=match) as error:
        jaxdeblur.transfer_blur(*change(*pairs))
    assert "\n" not in str(error.value)


def test_command_writes_unique_outputs_in_the_inputs_modes_and_never_overwrites(pairs, tmp_path):
    a, y, _ = pairs
    rng = np.random.default_rng(1)
    for name, image in (("a", a[0, ..., 0]), ("a_blurred", y[0, ..., 0])):
        _save(tmp_path / f"{name}.png", image)
    (tmp_path / "x").mkdir()
    (tmp_path / "z").mkdir()
    _save(tmp_path / "x" / "img.png", rng.uniform(size=(15, 18)))
    _save(tmp_path / "z" / "img.png", rng.uniform(size=(15, 18, 3)))
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["transfer", str(tmp_path / "a.png"), str(tmp_path / "a_blurred.png"), str(tmp_path / "x" / "img.png"),
            str(tmp_path / "z" / "img.png"), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    grey, colour = Image.open(out / "x_img_transferred.png"), Image.open(out / "z_img_transferred.png")
    assert grey.mode == "L" and colour.mode == "RGB" and grey.size == colour.size == (18, 15)
    assert (out / "x_img.json").is_file() and (out / "z_img_figure.png").is_file()
    before = (out / "x_img_transferred.png").stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output and again.output.count("\n") == 1
    assert (out / "x_img_transferred.png").stat().st_mtime_ns == before
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0
    missing = runner.invoke(app, ["transfer", str(tmp_path / "a.png"), str(tmp_path / "nope.png"),
                                  str(tmp_path / "x" / "img.png"), "-o", str(tmp_path / "o2")])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1 and "nope.png" in missing.output
    unknown = runner.invoke(app, args[:4] + ["-o", str(tmp_path / "o3"), "--weights", "kernel_space-huge"])
    assert unknown.exit_code == 2 and "kernel_space-huge" in unknown.output
    mismatch = runner.invoke(app, ["transfer", str(tmp_path / "a.png"), str(tmp_path / "x" / "img.png"),
                                   str(tmp_path / "z" / "img.png"), "-o", str(tmp_path / "o4")])
    assert mismatch.exit_code == 2 and "same shape" in mismatch.output and not (tmp_path / "o4").exists()
