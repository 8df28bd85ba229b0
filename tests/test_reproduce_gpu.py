"""experiments/reproduce_gpu.py: its time planning (pure), and its --dry-run on the CPU (tiny preset, 2 Levin
images cropped to 24 px, kernel 5; 19-29 s on the shared 2-core machine at load ~10, ~13 CPU-s for the file, mostly
tracing and compiling SelfDeblur's tiny program; all three methods and a fake Lai folder are the slow variant,
250 s there)."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments import reproduce_gpu as kit

PROBE = kit.Probe(runs=4, pixels=100 * 100, iterations=100, wall_s=12.0, run_s=2.0)  # set-up 10 s per group


def groups_of(n):
    return [(4, 100 * 100)] * (n // 4)  # n images in groups of 4


def test_estimate_is_set_up_per_group_plus_scaled_iterations():
    assert kit.estimate_s(PROBE, 100, [(4, 10000)]) == pytest.approx(12.0)
    assert kit.estimate_s(PROBE, 5000, [(4, 10000), (2, 20000)]) == pytest.approx(2 * 10 + 2 * 100)


def test_plan_keeps_the_paper_setting_when_it_fits_and_says_what_it_drops():
    # all 32 images x 5000 iterations: 8 groups x (10 s + 100 s)
    assert kit.plan(PROBE, 5000, groups_of, 880.0, chunk=100) == (32, 5000, [])
    images, iterations, dropped = kit.plan(PROBE, 5000, groups_of, 500.0, chunk=100)
    assert images == 32 and iterations % 100 == 0 and 1000 <= iterations < 5000
    assert kit.estimate_s(PROBE, iterations, groups_of(32)) <= 500.0
    assert kit.estimate_s(PROBE, iterations + 100, groups_of(32)) > 500.0  # the longest schedule that fits
    assert dropped == [f"iterations 5000 -> {iterations} (whole schedule compressed)"]
    images, iterations, dropped = kit.plan(PROBE, 5000, groups_of, 100.0, chunk=100)  # 8 images at 1000: 60 s
    assert (images, iterations) == (8, 1000) and "images 32 -> 8 (spread over the kernels)" in dropped
    assert kit.plan(PROBE, 5000, groups_of, 20.0, chunk=100) is None  # 4 images at 1/5 need 30 s


def _dry_run(tmp_path, *args):
    record = kit.main(["--dry-run", "--out", str(tmp_path), *args])
    saved = json.loads((tmp_path / "reproduce_gpu_dryrun_cpu.json").read_text())
    assert saved["dry_run"] and saved["device"] == "cpu" and saved["machine"]["backend"] == "cpu"
    assert saved["methods"].keys() == record["methods"].keys()
    return saved, (tmp_path / "reproduce_gpu_dryrun_cpu.md").read_text()


def test_dry_run_levin_selfdeblur(levin_root, tmp_path):
    record, md = _dry_run(tmp_path, "--methods", "selfdeblur")
    levin = record["methods"]["selfdeblur"]["levin"]
    assert levin["images"] == 2 and levin["iterations"] == 20 and levin["dropped"] == []
    assert [r["name"] for r in levin["rows"]] == ["im1_kernel1", "im2_kernel2"]  # spread over kernels
    assert levin["kernel_sizes"] == {"im1_kernel1": 5, "im2_kernel2": 5}
    for row in levin["rows"]:
        assert np.isfinite([row["psnr"], row["ssim"], row["isnr"], row["error_ratio"], row["final_loss"]]).all()
        assert 5 < row["psnr"] < 60 and -1 < row["ssim"] <= 1
    assert levin["mean"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in levin["rows"]]))
    probe = record["methods"]["selfdeblur"]["probe"]
    assert probe["runs"] == 2 and probe["iterations"] == 20 and probe["wall_s"] >= probe["run_s"] > 0
    assert record["paper"]["levin"]["selfdeblur"]["psnr"] == 33.07 and "33.07" in md and "DRY RUN" in md
    assert "Lai subset (no --lai folder given)" in record["dropped"]

    # a budget below the reserve for scoring: the method is dropped, and the files say so
    record, md = _dry_run(tmp_path, "--methods", "selfdeblur", "--budget-s", "5")
    assert "levin" not in record["methods"]["selfdeblur"]
    assert any(d.startswith("selfdeblur: dropped") for d in record["dropped"]) and "selfdeblur: dropped" in md


def test_bad_budget_is_one_line(capsys):
    with pytest.raises(SystemExit):
        kit.main(["--dry-run", "--budget-s", "0"])
    assert "--budget-s must be > 0, got 0.0" in capsys.readouterr().err


def _fake_lai(root: Path) -> Path:
    """Lai's folder layout with 2 colour 28 px images and one 5 x 5 horizontal kernel (circular blur)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for folder in ("ground_truth", "kernels", "blurred"):
        (root / folder).mkdir(parents=True)
    kernel = np.zeros((5, 5)); kernel[2] = 1
    Image.fromarray((kernel * 255).astype(np.uint8)).save(root / "kernels" / "kernel_01.png")
    for name in ("manmade_01", "natural_01"):
        sharp = rng.uniform(0, 1, (28, 28, 3))
        blurred = np.mean([np.roll(sharp, s, axis=1) for s in range(-2, 3)], axis=0)
        Image.fromarray((sharp * 255).astype(np.uint8)).save(root / "ground_truth" / f"{name}.png")
        Image.fromarray((blurred * 255).astype(np.uint8)).save(root / "blurred" / f"{name}_kernel_01.png")
    return root


@pytest.mark.slow
def test_dry_run_all_three_methods_and_lai(levin_root, tmp_path):
    """Slow: Kotera's three scales and fitting and the uncertainty method's networks compile for minutes on the
    loaded 2-core machine (Kotera's probe alone took ~150 s), and the Lai items are one more program each."""
    lai = _fake_lai(tmp_path / "lai")
    record, md = _dry_run(tmp_path, "--budget-s", "3600", "--lai", str(lai), "--lai-images", "2")
    for method in kit.METHODS:
        levin, lai_part = record["methods"][method]["levin"], record["methods"][method]["lai"]
        assert levin["images"] == 2 and np.isfinite(levin["mean"]["psnr"]), method
        assert lai_part["images"] == 2 and np.isfinite(lai_part["mean"]["psnr"]), method
        assert f"| {method} | 2 | 20 |" in md
    assert "## Lai" in md and "20.97" in md
    assert not any("Lai" in d for d in record["dropped"])
