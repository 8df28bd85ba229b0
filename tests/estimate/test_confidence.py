"""The confidence of a MAP kernel estimate (`jaxdeblur.estimate.confidence`): right kernels pass, wrong ones are
flagged, and the method's results carry it.

Cases from the calibration (experiments/map_confidence.py): a 96 x 96 crop of scikit-image's camera photo,
blurred by a 13 px camera-shake kernel, noise std 0.003. Only hyper-Laplacian deconvolutions run here (no kernel
estimation): each test takes well under a second once compiled.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdeblur import kernels
from jaxdeblur.data.benchmarks import sample_photos
from jaxdeblur.estimate import resolve_config
from jaxdeblur.estimate.confidence import border_mass, kernel_confidence, spread
from jaxdeblur.forward import blur

SIZE, K, NOISE = 96, 13, 0.003
CFG = resolve_config("tiny")


def motion(seed: int) -> np.ndarray:
    return np.asarray(kernels.motion(jax.random.key(seed), K, length=3.0 * (K - 1), anxiety=0.004))


@pytest.fixture(scope="module")
def case():
    """(blurred (SIZE, SIZE), true kernel (K, K)) for two kernels."""
    x = sample_photos(("camera",), size=SIZE)["camera"]
    out = []
    for seed in (1, 2):
        truth = motion(seed)
        noise = NOISE * np.random.default_rng(seed).standard_normal(x.shape)
        out.append((np.clip(np.asarray(blur(jnp.asarray(x), truth, "reflect")) + noise, 0, 1).astype(np.float32),
                    truth))
    return out


def test_border_mass_and_spread():
    delta = np.zeros((9, 9))
    delta[4, 4] = 1
    assert border_mass(delta) == 0 and spread(delta) == pytest.approx(1 / 81)
    box = np.full((9, 9), 1 / 81)
    assert border_mass(box) == pytest.approx(32 / 81) and spread(box) == pytest.approx(1.0)


def test_the_true_kernel_is_trusted_and_wrong_kernels_are_flagged(case):
    for y, truth in case:
        good = kernel_confidence(y, truth, CFG)
        assert good.confident and good.reasons == (), good
        assert 0.3 < good.residual_ratio < CFG.confidence_residual_max
        wrong = {"rot90": np.rot90(truth).copy(), "other": motion(11), "gauss": np.asarray(kernels.gaussian(K, 2.0))}
        for name, k in wrong.items():
            bad = kernel_confidence(y, k, CFG)
            assert not bad.confident and "does not explain the blur" in bad.reasons[0], (name, bad)
            assert bad.residual_ratio > 1.2 * good.residual_ratio


def test_a_kernel_cut_by_a_too_small_support_is_flagged_a_delta_is_not_caught(case):
    y, truth = case[0]
    cut = truth[3:-3, 3:-3] / truth[3:-3, 3:-3].sum()  # the 13 px blur in a 7 px support
    conf = kernel_confidence(y, cut, CFG)
    assert not conf.confident and any("border of its support" in r for r in conf.reasons), conf
    assert conf.border_mass > CFG.confidence_border_max
    # the documented blind spot: no deblurring at all explains the data (border_mass is 0 for a centred delta)
    delta = np.zeros((K, K), np.float32)
    delta[K // 2, K // 2] = 1
    assert kernel_confidence(y, delta, CFG).residual_ratio < 1.0


def test_the_record_is_json_ready_and_the_summary_one_line(case):
    y, truth = case[0]
    good, bad = kernel_confidence(y, truth, CFG), kernel_confidence(y, np.rot90(truth).copy(), CFG)
    record = bad.record()
    assert set(record) == {"confident", "reasons", "noise_sigma", "residual_ratio", "border_mass", "spread"}
    assert all(isinstance(v, (bool, float, list)) for v in record.values())
    assert bad.summary().startswith("low confidence in the kernel estimate: ") and "\n" not in bad.summary()
    assert good.summary().startswith("confident")


def test_a_too_small_kernel_size_is_flagged_in_the_result_and_in_one_cli_line(case, tmp_path):
    import json

    from typer.testing import CliRunner

    from jaxdeblur.cli import app
    from jaxdeblur.io import save_image

    y, _ = case[0]
    save_image(tmp_path / "y.png", y)
    res = CliRunner().invoke(app, ["deblur", str(tmp_path / "y.png"), "-o", str(tmp_path / "out"), "-k", "5",
                                   "--method", "map", "--preset", "tiny"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "out" / "y.json").read_text())
    assert record["kernel_size_choice"] == {"requested": [5, 5], "chosen": [5, 5], "how": "given"}
    assert not record["confidence"]["confident"] and record["confidence"]["border_mass"] > CFG.confidence_border_max
    flagged = [line for line in res.output.splitlines() if "low confidence" in line]
    assert len(flagged) == 1 and flagged[0].startswith(f"{tmp_path / 'y.png'}: low confidence in the kernel estimate")
