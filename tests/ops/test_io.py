"""Image reading/writing: bit depths, palettes, alpha, EXIF orientation, errors."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxdeblur import color, io
from jaxdeblur.io import load_image, save_image, save_kernel


def _rgb8(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_8bit_gray_and_rgb_round_trip(tmp_path):
    x = np.random.default_rng(0).random((6, 9), dtype=np.float32)
    gray = load_image(save_image(tmp_path / "g.png", x))
    assert gray.shape == (6, 9) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, x, atol=0.5 / 255 + 1e-7)
    c = np.random.default_rng(1).random((6, 9, 3), dtype=np.float32)
    rgb = load_image(save_image(tmp_path / "c.png", c), mode="rgb")
    assert rgb.shape == (6, 9, 3)
    np.testing.assert_allclose(rgb, c, atol=0.5 / 255 + 1e-7)


def test_gray_from_rgb_is_float_bt601_and_rgb_from_gray_repeats(tmp_path):
    pixels = _rgb8()
    Image.fromarray(pixels).save(tmp_path / "c.png")
    expected = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255
    np.testing.assert_allclose(load_image(tmp_path / "c.png", mode="gray"), expected, atol=1e-6)
    Image.fromarray(pixels[..., 0]).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png", mode="rgb")
    np.testing.assert_array_equal(rgb, np.repeat(pixels[..., :1], 3, axis=-1) / np.float32(255))


def test_16bit_png_keeps_precision(tmp_path):
    values = np.array([[0, 1, 257, 1000], [30000, 40001, 65534, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as img:
        assert img.mode.startswith("I")
    got = load_image(tmp_path / "d.png")
    np.testing.assert_allclose(got, values / 65535.0, atol=1e-7)
    assert len(np.unique(np.round(got * 255))) < len(np.unique(got))  # not squeezed to 8 bits
    np.testing.assert_allclose(load_image(tmp_path / "d.png", mode="rgb")[..., 2], values / 65535.0, atol=1e-7)


def test_palette_image(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]], np.uint8)
    index = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    img = Image.fromarray(index, mode="P")
    img.putpalette(palette.ravel().tolist())
    img.save(tmp_path / "p.png")
    np.testing.assert_allclose(load_image(tmp_path / "p.png", mode="rgb"), palette[index] / 255.0, atol=1e-7)
    gray = palette[index].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255
    np.testing.assert_allclose(load_image(tmp_path / "p.png"), gray, atol=1e-6)


def test_alpha_dropped_with_warning_only_when_not_opaque(tmp_path):
    rgba = np.concatenate([_rgb8(), np.full((5, 7, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(tmp_path / "opaque.png", mode="rgb")
    np.testing.assert_allclose(out, rgba[..., :3] / 255.0, atol=1e-7)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.warns(UserWarning, match="alpha"):
        out = load_image(tmp_path / "alpha.png", mode="rgb")
    np.testing.assert_allclose(out, rgba[..., :3] / 255.0, atol=1e-7)  # colours kept as stored
    la = np.stack([rgba[..., 0], rgba[..., 3]], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    with pytest.warns(UserWarning, match="alpha"):
        gray = load_image(tmp_path / "la.png")
    np.testing.assert_allclose(gray, rgba[..., 0] / 255.0, atol=1e-7)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    Image.fromarray(pixels).save(tmp_path / "rot.png", exif=exif)
    got = load_image(tmp_path / "rot.png")
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, np.rot90(pixels, k=-1) / 255.0, atol=1e-7)


def test_missing_corrupt_truncated_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(ValueError, match="junk.png"):
        load_image(tmp_path / "junk.png")
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="mode"):
        load_image(tmp_path / "full.png", mode="rgba")


def test_save_image_clips_accepts_jax_and_creates_folders(tmp_path):
    x = jnp.array([[-0.5, 0.0, 0.5], [1.0, 1.5, 0.25]])[..., None]  # (H, W, 1)
    path = save_image(tmp_path / "a" / "b" / "x.png", x)
    with Image.open(path) as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), [[0, 0, 128], [255, 255, 64]])


def test_save_image_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        save_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        save_image(tmp_path / "x.png", np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty"):
        save_image(tmp_path / "x.png", np.zeros((0, 4), np.float32))
    with pytest.raises(TypeError, match="float"):
        save_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))


def test_save_kernel_scales_by_max_and_upscales(tmp_path):
    k = np.array([[0.0, 0.1, -0.05], [0.1, 0.5, 0.1], [0.0, 0.25, 0.0]], np.float32)
    path = save_kernel(tmp_path / "k.png", k, upscale=4)
    with Image.open(path) as img:
        view = np.asarray(img)
    assert view.shape == (12, 12)
    np.testing.assert_array_equal(view[::4, ::4], np.round(np.clip(k, 0, None) / 0.5 * 255))
    np.testing.assert_array_equal(view[4:8, 4:8], 255)
    with pytest.raises(ValueError, match="upscale"):
        save_kernel(tmp_path / "k.png", k, upscale=0)
    with pytest.raises(ValueError, match="kh, kw"):
        save_kernel(tmp_path / "k.png", k[None])


def test_reexports_color_conversions():
    assert io.rgb_to_ycbcr is color.rgb_to_ycbcr
    assert io.ycbcr_to_rgb is color.ycbcr_to_rgb


def test_load_kernel_png(tmp_path):
    raw = np.zeros((5, 7), np.uint8)
    raw[1, 2], raw[3, 5], raw[2, 3] = 255, 85, 170
    Image.fromarray(raw).save(tmp_path / "k.png")
    k = io.load_kernel_png(tmp_path / "k.png")
    assert k.dtype == np.float32 and k.shape == (5, 7)
    np.testing.assert_allclose(k, raw / raw.sum(dtype=np.float64), atol=1e-7)
    np.testing.assert_array_equal(io.load_kernel_png(tmp_path / "k.png", flip=True), k[::-1, ::-1])
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "zero.png")
    with pytest.raises(ValueError, match="zero"):
        io.load_kernel_png(tmp_path / "zero.png")


def test_load_kernels_npz(tmp_path):
    np.savez(tmp_path / "k.npz", a=np.ones((3, 3)), b=np.diag([1.0, 3.0]))
    ks = io.load_kernels_npz(tmp_path / "k.npz")
    assert list(ks) == ["a", "b"] and all(k.dtype == np.float32 for k in ks.values())
    np.testing.assert_allclose(ks["b"], [[0.25, 0], [0, 0.75]])
    np.savez(tmp_path / "bad.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="'a'"):
        io.load_kernels_npz(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        io.load_kernels_npz(tmp_path / "missing.npz")


def test_load_kernels_npz_real_file(levin_root):
    ks = io.load_kernels_npz(levin_root / "kernels_float.npz")
    assert list(ks) == [f"kernel{j}" for j in range(1, 9)]
    assert [k.shape[0] for k in ks.values()] == [19, 17, 15, 27, 13, 21, 23, 23]
    for k in ks.values():
        assert k.min() >= 0 and abs(float(k.sum()) - 1) < 1e-5
