"""`jaxdeblur restore` / `jaxdeblur.restore`: the shipped NAFNet through the API and the command line."""

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import jaxdeblur
from jaxdeblur.cli import app


def _save(path, array):
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    (root / "a").mkdir()
    (root / "b").mkdir()
    _save(root / "a" / "img.png", rng.uniform(size=(24, 28)))
    _save(root / "b" / "img.png", rng.uniform(size=(24, 28, 3)))
    return root


def test_api_keeps_shape():
    x = np.random.default_rng(1).uniform(size=(20, 22, 3)).astype(np.float32)
    out = jaxdeblur.restore(x)
    assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_command_writes_unique_outputs_in_the_inputs_modes_and_never_overwrites(inputs, tmp_path):
    runner = CliRunner()
    args = ["restore", str(inputs / "a" / "img.png"), str(inputs / "b" / "img.png"), "-o", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    grey, colour = Image.open(tmp_path / "a_img_restored.png"), Image.open(tmp_path / "b_img_restored.png")
    assert grey.mode == "L" and colour.mode == "RGB" and grey.size == colour.size == (28, 24)
    assert (tmp_path / "a_img.json").is_file() and (tmp_path / "b_img_figure.png").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    missing = runner.invoke(app, ["restore", str(inputs / "nope.png"), "-o", str(tmp_path / "x")])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1
    unknown = runner.invoke(app, ["restore", str(inputs / "a" / "img.png"), "-o", str(tmp_path / "y"),
                                  "--model", "nafnet-huge"])
    assert unknown.exit_code == 2 and "nafnet-huge" in unknown.output
