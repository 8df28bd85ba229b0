"""Damaged image files: `load_image` gives an image or `ImageReadError`, never another exception."""

import io as pyio
import warnings

import numpy as np
import pytest
from PIL import Image

from jaxdeblur.io import ImageReadError, load_image

CASES_PER_FORMAT = 150


def _valid_files() -> dict[str, bytes]:
    """A small valid PNG (colour) and JPEG (colour, with EXIF orientation) made in memory."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    files = {}
    buffer = pyio.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    files["png"] = buffer.getvalue()
    buffer = pyio.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate, so the EXIF path is exercised too
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, exif=exif)
    files["jpg"] = buffer.getvalue()
    return files


def _damaged(data: bytes, rng: np.random.Generator) -> bytes:
    """A random truncation, random flipped bytes, or both."""
    out = bytearray(data)
    kind = rng.integers(3)
    if kind in (1, 2):
        for pos in rng.integers(0, len(out), size=rng.integers(1, 9)):
            out[pos] ^= int(rng.integers(1, 256))
    if kind in (0, 2):
        out = out[: int(rng.integers(0, len(out)))]
    return bytes(out)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_damaged_files_give_an_image_or_the_one_error_type(tmp_path, fmt):
    data = _valid_files()[fmt]
    rng = np.random.default_rng({"png": 1, "jpg": 2}[fmt])
    outcomes = {"image": 0, "error": 0}
    path = tmp_path / f"damaged.{fmt}"
    for case in range(CASES_PER_FORMAT):
        path.write_bytes(_damaged(data, rng))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. PIL's warnings about odd EXIF data
                image = load_image(path, mode="auto")
        except ImageReadError as err:
            assert str(path) in str(err), err  # the message names the file
            outcomes["error"] += 1
        except Exception as err:  # noqa: BLE001 - the point of the test
            pytest.fail(f"case {case}: {type(err).__name__} escaped load_image: {err}")
        else:
            assert image.dtype == np.float32 and image.ndim in (2, 3)
            assert np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
            outcomes["image"] += 1
    assert outcomes["error"] > CASES_PER_FORMAT // 4  # the damage was real


def test_directory_and_empty_file_are_image_read_errors(tmp_path):
    with pytest.raises(ImageReadError, match="directory"):
        load_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")


def test_auto_mode_keeps_the_files_kind(tmp_path):
    gray = (np.arange(12).reshape(3, 4) * 20).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "c.png")  # colour file with equal channels
    assert load_image(tmp_path / "g.png", mode="auto").shape == (3, 4)
    assert load_image(tmp_path / "c.png", mode="auto").shape == (3, 4, 3)
