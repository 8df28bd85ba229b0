"""The API's promises: colour in -> colour out, both images of the finishing step, clear argument errors,
preset "auto", compressed schedules, kernel windows, and checkpoints that belong to one run.

Every run here uses one compiled program: 24 x 24 fitted channel (grey, or a colour image's luma), 5 x 5
kernel, tiny preset, chunks of 10 iterations (as in tests/test_cli.py and tests/engine/test_checkpoint.py).
"""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from jaxdeblur.api import deblur, finishing_step, plan_batch
from jaxdeblur.color import merge_color, rgb_to_ycbcr, split_color
from jaxdeblur.config import compress_schedule
from jaxdeblur.engine.checkpoint import find_runs
from jaxdeblur.engine.runner import EngineOptions
from jaxdeblur.methods import SelfDeblur
from jaxdeblur.regions import most_textured_window

SIZE, K = 24, 5
QUIET = EngineOptions(progress=False, chunk=10)


def grey(seed=0, size=SIZE):
    return np.random.default_rng(seed).uniform(0.1, 0.9, (size, size)).astype(np.float32)


def colour(seed=1, size=SIZE):
    base = grey(seed, size)
    return np.stack([base, 0.8 * base + 0.1, 0.5 * base + 0.3], axis=-1).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    """A colour and a grey image deblurred (one run each, so every test shares the compiled programs)."""
    images = [colour(), grey()]
    return images, [deblur(x, K, preset="tiny", seed=3, options=QUIET) for x in images]


def test_colour_in_colour_out_with_the_inputs_chroma(pair):
    (rgb, _), (result, _) = pair
    assert result.image.shape == rgb.shape and result.deconvolved.shape == rgb.shape
    assert result.latent.shape[-1] == 1  # the generator fitted the luma only
    assert result.color == {"input": "rgb", "mode": "y", "deblurred": ["Y"], "kept_from_input": ["Cb", "Cr"],
                            "note": None}
    # chroma comes from the input wherever the recombined pixel was not clipped
    inside = np.all((result.image > 0.01) & (result.image < 0.99), axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(np.asarray(rgb_to_ycbcr(result.image))[inside][:, 1:],
                               np.asarray(rgb_to_ycbcr(rgb))[inside][:, 1:], atol=2e-5)
    assert np.abs(result.image - rgb).max() > 1e-3  # and the luma was restored, not copied


def test_grey_stays_grey_and_the_finishing_step_is_the_hyper_laplacian_deconvolution(pair):
    (rgb, gray), (colour_result, result) = pair
    assert result.image.shape == gray.shape == result.deconvolved.shape
    assert result.color["deblurred"] == ["gray"] and result.color["input"] == "gray"
    np.testing.assert_allclose(result.deconvolved, finishing_step(gray, result.kernel), atol=1e-6)
    for c in range(3):  # every colour channel, each with the estimated kernel
        np.testing.assert_allclose(colour_result.deconvolved[..., c],
                                   finishing_step(rgb[..., c], colour_result.kernel), atol=1e-6)
    assert result.timings["finish_s"] > 0


def test_rgb_mode_on_grey_input_runs_one_channel_and_stays_grey():
    result = deblur(grey(), K, preset="tiny", color="rgb", finish=False, options=QUIET)
    assert result.image.shape == (SIZE, SIZE) and result.latent.shape[-1] == 1
    assert result.deconvolved is None
    assert "one channel" in result.color["note"] and result.color["deblurred"] == ["gray"]


@pytest.mark.parametrize("kernel_sizes, kwargs, match", [
    ((5, 3), {}, r"2 entries for 1 image.*kernel_shape=\(kh, kw\)"),
    (5.0, {}, "an int or a sequence"),
    ([(5, 3, 1)], {}, r"kernel size 0 must be a positive int or a \(kh, kw\) pair"),
    ([0], {}, "positive"),
    (5, {"kernel_shape": (5, 3)}, "not both"),
    (None, {}, "kernel_sizes is required"),
])
def test_kernel_size_arguments_that_are_refused(kernel_sizes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_batch([grey()], kernel_sizes, preset="tiny", **kwargs)


def test_kernel_size_arguments_that_are_accepted():
    two = [grey(0), grey(1)]
    assert [g.kernel_size for g in plan_batch(two, (5, 3), preset="tiny").groups] == [(5, 5), (3, 3)]
    assert [g.kernel_size for g in plan_batch(two, kernel_shape=(5, 3), preset="tiny").groups] == [(5, 3)]
    assert [g.kernel_size for g in plan_batch(two, [(5, 3), 7], preset="tiny").groups] == [(5, 3), (7, 7)]
    assert plan_batch(two, np.int64(5), preset="tiny").groups[0].kernel_size == (5, 5)


@pytest.mark.parametrize("image, match", [
    (np.zeros((0, 0), np.float32), r"empty \(shape \(0, 0\)\)"),
    (np.zeros((0, 7, 3), np.float32), "empty"),
    (np.full((4, 4), 0.5, np.float32), r"kernel size \(5, 5\) is larger than the image \(4, 4\)"),
    (np.where(np.eye(SIZE) > 0, np.inf, 0.5).astype(np.float32), "NaN or infinite"),
])
def test_bad_images_get_one_clear_error_each(image, match):
    with pytest.raises(ValueError, match=match):
        deblur(image, K, preset="tiny", options=QUIET)


def test_preset_auto_and_iterations_compress_the_schedule():
    assert plan_batch([grey()], K, platform="cpu").preset == "fast"
    assert plan_batch([grey()], K, platform="gpu").preset == "paper"
    plan = plan_batch([grey()], K, preset="paper", iterations=500)
    assert plan.config == compress_schedule(SelfDeblur.presets["paper"], 500)
    assert plan.config.lr_milestones == (200, 300, 400) and plan.config.ssim_from == 100
    raw = plan_batch([grey()], K, preset="paper", iterations=500, config={"ssim_from": 7}).config
    assert raw.ssim_from == 7 and raw.lr_milestones == (200, 300, 400)  # overrides stay raw
    for bad in (0, -3):
        with pytest.raises(ValueError, match="iterations must be a positive integer"):
            plan_batch([grey()], K, preset="tiny", iterations=bad)
    with pytest.raises(ValueError, match="unknown preset 'huge'.*'auto'"):
        plan_batch([grey()], K, preset="huge")


def test_preset_auto_is_the_default_and_is_announced(monkeypatch):
    # the CPU default "fast" made as small as "tiny" for this test (same compiled program)
    monkeypatch.setitem(SelfDeblur.presets, "fast", SelfDeblur.presets["tiny"])
    said = []
    result = deblur(grey(), K, finish=False, options=dataclasses.replace(QUIET, log=said.append))
    assert result.preset == "fast"
    assert any("preset: fast (chosen automatically for cpu" in line for line in said)


def test_kernel_estimated_on_a_window_then_the_whole_image_deconvolved():
    big = grey(5, size=SIZE + 8)
    result = deblur(big, K, preset="tiny", region=(3, 5, SIZE, SIZE), options=QUIET)
    assert result.region == (3, 5, SIZE, SIZE)
    assert result.image.shape == (SIZE, SIZE) and result.deconvolved.shape == big.shape
    np.testing.assert_allclose(result.deconvolved, finishing_step(big, result.kernel), atol=1e-6)
    with pytest.raises(ValueError, match="needs finish=True"):
        plan_batch([big], K, preset="tiny", region="auto", finish=False)
    with pytest.raises(ValueError, match="does not lie inside"):
        plan_batch([big], K, preset="tiny", region=(20, 0, SIZE, SIZE))
    with pytest.raises(ValueError, match="unknown region selector 'sharpest'"):
        plan_batch([big], K, preset="tiny", region="sharpest")


def test_auto_window_is_the_most_textured_one():
    flat = np.full((64, 80), 0.5, np.float32)
    flat[30:46, 41:57] = np.random.default_rng(0).uniform(0, 1, (16, 16))
    x, y, w, h = most_textured_window(flat, (16, 16))
    assert (w, h) == (16, 16) and abs(x - 41) <= 1 and abs(y - 30) <= 1
    plan = plan_batch([flat], K, preset="tiny", region="auto")
    x, y, w, h = plan.regions[0]
    assert (w, h) == (80, 64) and (x, y) == (0, 0)  # clamped to the image: the whole image


def test_checkpoints_of_other_inputs_are_kept_apart_and_never_resumed(tmp_path):
    said = []
    opts = dataclasses.replace(QUIET, checkpoint_dir=str(tmp_path), checkpoint_every=20, log=said.append)
    a = deblur(grey(10), K, preset="tiny", finish=False, options=opts)
    b_fresh = deblur(grey(11), K, preset="tiny", finish=False, options=dataclasses.replace(opts, checkpoint_dir=None))
    b = deblur(grey(11), K, preset="tiny", finish=False, options=dataclasses.replace(opts, resume=True))
    assert b.timings["iterations_run"] == 20  # started fresh: nothing of a's run was used
    np.testing.assert_array_equal(b.image, b_fresh.image)
    assert not np.array_equal(a.image, b.image)
    assert any("found only checkpoints of other runs" in line and "image 0" in line for line in said)
    runs = find_runs(tmp_path)
    assert {r.directory for r in runs} == {Path(a.checkpoint_dir), Path(b.checkpoint_dir)}
    assert {r.record["stamp"]["inputs_sha256"][0] for r in runs} == {a.stamp["inputs_sha256"][0],
                                                                     b.stamp["inputs_sha256"][0]}
    # the same run resumes its own finished checkpoint: nothing to do, same result
    again = deblur(grey(11), K, preset="tiny", finish=False, options=dataclasses.replace(opts, resume=True))
    assert again.timings["iterations_run"] == 0
    np.testing.assert_array_equal(again.image, b.image)
    # a new attempt of the same run without resume is refused rather than mixing steps
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        deblur(grey(11), K, preset="tiny", finish=False, options=opts)


def test_stamp_names_what_identifies_a_run():
    base = plan_batch([grey()], K, preset="tiny", seeds=[0]).groups[0]
    assert set(base.stamp) >= {"method", "preset", "config", "kernel_size", "color", "seeds", "inputs_sha256",
                               "version"}
    changed = [plan_batch([grey()], K, preset="tiny", seeds=[1]).groups[0],
               plan_batch([grey(1)], K, preset="tiny", seeds=[0]).groups[0],
               plan_batch([grey()], K, preset="tiny", seeds=[0], config={"lr_image": 0.02}).groups[0],
               plan_batch([grey()], 3, preset="tiny", seeds=[0]).groups[0],
               plan_batch([colour()], K, preset="tiny", seeds=[0], color="y").groups[0]]
    ids = {g.stamp_id for g in changed}
    assert base.stamp_id not in ids and len(ids) == len(changed)


def test_stamp_ids_keep_their_scheme():
    """The folder name of a group's checkpoints: sha256 of the sorted JSON stamp, the inputs by their pixels'
    sha256 (what earlier versions wrote, so --resume still finds their checkpoints)."""
    group = plan_batch([grey(), grey(1)], K, preset="tiny", seeds=[4, 5]).groups[0]
    digest = hashlib.sha256(json.dumps(group.stamp, sort_keys=True).encode()).hexdigest()[:16]
    assert group.stamp_id == digest
    pixels = [hashlib.sha256(f"{x.shape}".encode() + x.tobytes()).hexdigest() for x in (grey(), grey(1))]
    assert group.stamp["inputs_sha256"] == pixels and group.stamp["seeds"] == [4, 5]
    assert group.stamp["kernel_size"] == [K, K] and "init" not in group.stamp


@pytest.mark.parametrize("mode", ["y", "rgb"])
def test_colour_split_and_merge_round_trip(mode):
    for x in (colour(), grey(), grey()[..., None]):
        fitted, chroma, record = split_color(x, mode=mode)
        assert fitted.shape[-1] == (1 if mode == "y" or x.ndim == 2 or x.shape[-1] == 1 else 3)
        np.testing.assert_allclose(merge_color(fitted, chroma, shape=x.shape), x, atol=2e-6)
        assert record["input"] == ("rgb" if x.ndim == 3 and x.shape[-1] == 3 else "gray")
