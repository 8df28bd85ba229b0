"""kernel_size="auto" of the MAP method (`jaxdeblur.estimate.support`), through the estimator, the API and the CLI.

Tiny images: 96 x 96 piecewise-constant scenes, the estimator's "tiny" preset and a first pass at 0.3 x the
image side (29 px; the default 1/6 suits photos of 150 px and more), so a 21 px blur fits; the coarsest scale at
9 px instead of 5 (fewer scales to compile: about 30 % less CPU time). Every estimation is one image at a time
(batch 1), so the first pass compiles once for all the tests here.
"""

import json

import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import jaxdeblur
from jaxdeblur import kernels
from jaxdeblur.api import plan_batch
from jaxdeblur.cli import app
from jaxdeblur.estimate import MapConfig, map_deblur, resolve_config
from jaxdeblur.estimate.support import initial_support, kernel_extent, support_from_kernel
from jaxdeblur.forward import blur
from jaxdeblur.io import save_image
from jaxdeblur.metrics import kernel_similarity
from tests.estimate.scenes import shapes_scene

SIZE = 96
CONFIG = {"auto_support_fraction": 0.3, "coarsest_kernel": 9}
TRUE_SIZES = (9, 21)


def scene(seed: int) -> np.ndarray:
    """(SIZE, SIZE) rectangles and discs on grey: strong edges in every direction."""
    return shapes_scene(seed, SIZE, 18)


def true_kernel(size: int, seed: int) -> np.ndarray:
    """A (size, size) camera-shake kernel that reaches the border of its support: a trajectory longer than the
    support, shrunk about its centroid (the centre tap) until it fits."""
    return np.asarray(kernels.motion(jax.random.key(seed), size, length=4.0 * (size - 1), anxiety=0.005))


def blurred(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    k = true_kernel(size, seed)
    noise = 0.003 * np.random.default_rng(seed).standard_normal((SIZE, SIZE))
    return np.clip(np.asarray(blur(scene(seed), k, "reflect")) + noise, 0, 1).astype(np.float32), k


@pytest.fixture(scope="module")
def auto_results():
    """{true size: (blurred, true kernel, `jaxdeblur.deblur(method="map", kernel_size="auto")` result)}."""
    out = {}
    for size, seed in zip(TRUE_SIZES, (3, 5)):
        y, k = blurred(size, seed)
        out[size] = (y, k, jaxdeblur.deblur(y, "auto", method="map", preset="tiny", config=CONFIG))
    return out


def _similarity(a, b) -> float:
    n = max(a.shape[0], b.shape[0])
    return float(kernel_similarity(kernels.pad_to(a, (n, n)), kernels.pad_to(b, (n, n))))


@pytest.mark.parametrize("size", TRUE_SIZES)
def test_auto_finds_the_support_of_a_9_and_a_21_px_kernel_within_4_px(auto_results, size):
    y, truth, res = auto_results[size]
    chosen = res.extras["kernel_size"]
    assert chosen["how"] == "auto" and chosen["requested"] == "auto" and chosen["initial"] == [29, 29]
    assert res.kernel.shape == tuple(chosen["chosen"]) and res.kernel.shape[0] == res.kernel.shape[1]
    assert abs(res.kernel.shape[0] - size) <= 4, chosen
    # never smaller than what the true kernel needs about its centre (99 % of its mass)
    assert res.kernel.shape[0] >= max(kernel_extent(truth, component_mass=0.0)), chosen
    assert not chosen["saturated"]
    # the estimate at the chosen size is the blur, and its confidence says so
    assert _similarity(res.kernel, truth) > 0.8
    assert res.extras["confidence"]["confident"], res.extras["confidence"]
    assert res.stamp["kernel_size"] == "auto"


def test_auto_equals_estimating_at_the_chosen_size(auto_results):
    y, _, res = auto_results[9]
    again = map_deblur(y, res.kernel.shape, preset="tiny", config=CONFIG)
    np.testing.assert_allclose(again.kernel, res.kernel, atol=1e-6)
    assert again.extras["kernel_size"] == {"requested": list(res.kernel.shape), "chosen": list(res.kernel.shape),
                                           "how": "given"}


def test_the_first_pass_support_and_the_measured_extent():
    cfg = MapConfig()
    assert initial_support((255, 255), cfg) == 43  # odd(255 / 6)
    assert initial_support((96, 200), cfg) == 17
    assert initial_support((2000, 3000), cfg) == 61  # auto_support_max
    assert initial_support((20, 20), cfg) == 5  # auto_support_min
    assert initial_support((4, 9), cfg) == 3  # no larger than the image
    delta = np.zeros((15, 15), np.float32)
    delta[7, 7] = 1
    assert kernel_extent(delta) == (1, 1) and kernel_extent(np.zeros((5, 5))) == (1, 1)
    line = np.zeros((29, 29), np.float32)
    line[14, 10:19] = 1 / 9  # 9 px wide, centred
    assert kernel_extent(line) == (1, 9)
    stray = line.copy()
    stray[2, 2] = 0.05  # an isolated tap with 5 % of the mass: dropped (auto_component_mass 0.1)
    assert kernel_extent(stray / stray.sum()) == (1, 9)
    assert support_from_kernel(line, cfg) == (11, (1, 9), False)  # + auto_margin 1 px per side
    assert support_from_kernel(line[9:20, 9:20], cfg)[2]  # the 9 px line in an 11 px first pass: saturated
    with pytest.raises(ValueError, match="auto_mass"):
        resolve_config("tiny", {"auto_mass": 0.0})


def test_dip_methods_refuse_auto_and_bad_input_is_one_clear_error(tmp_path):
    y, _ = blurred(9, 3)
    with pytest.raises(ValueError, match="kernel size 'auto' is for method 'map' only"):
        plan_batch([y], "auto", "selfdeblur")
    assert plan_batch([y, y], ["auto", 7], "map").groups[0].kernel_size == "auto"
    assert plan_batch([y], "auto", "map", region="auto").regions[0] == (0, 0, SIZE, SIZE)  # the window, then auto
    with pytest.raises(ValueError, match=r"kernel size \(120, 120\) is larger than the image \(96, 96\)"):
        jaxdeblur.deblur(y, 120, method="map", preset="tiny")
    nan = y.copy()
    nan[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        jaxdeblur.deblur(nan, "auto", method="map", preset="tiny")
    with pytest.raises(ValueError, match="NaN"):
        map_deblur(nan, "auto", preset="tiny")
    save_image(tmp_path / "y.png", y)
    for args, message in [(["-k", "auto", "--method", "selfdeblur"], "kernel size 'auto' is for method 'map'"),
                          (["-k", "120", "--method", "map"], "is larger than the image"),
                          (["-k", "0", "--method", "map"], "'-k' / '--kernel-size'"),
                          (["-k", "big", "--method", "map"], "neither a positive integer (pixels) nor 'auto'")]:
        res = CliRunner().invoke(app, ["deblur", str(tmp_path / "y.png"), "-o", str(tmp_path / "out"), *args])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.output


def test_cli_k_auto_is_the_default_and_writes_the_choice_and_confidence(tmp_path, auto_results):
    y, _, res = auto_results[9]
    save_image(tmp_path / "y.png", y)
    args = ["deblur", str(tmp_path / "y.png"), "-o", str(tmp_path / "out"), "--method", "map", "--preset", "tiny",
            "--set", "auto_support_fraction=0.3", "--set", "coarsest_kernel=9"]
    out = CliRunner().invoke(app, args)  # no -k: auto
    assert out.exit_code == 0, out.output
    record = json.loads((tmp_path / "out" / "y.json").read_text())
    choice = record["kernel_size_choice"]
    assert choice["how"] == "auto" and record["kernel_size"] == choice["chosen"]
    assert abs(choice["chosen"][0] - 9) <= 4
    assert record["confidence"]["confident"] and record["confidence"]["residual_ratio"] > 0
    assert f"kernel size auto -> {choice['chosen'][0]} x {choice['chosen'][1]}" in out.output
    assert "low confidence" not in out.output
