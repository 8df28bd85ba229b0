"""Data parallel training on 8 forced CPU devices equals training on one device (float tolerance)."""

import textwrap

from tests.conftest import run_script

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import jax, numpy as np
    from jaxdeblur.train import train
    from tests.train import toy

    devices = jax.devices()
    assert len(devices) == 8, devices
    task = toy.make_task(toy.PRESETS["tiny"])  # global batch 8: one image per device
    root = Path(sys.argv[1])
    eight = train(task, root / "eight", progress=False)
    one = train(task, root / "one", progress=False, devices=devices[:1])
    assert len(eight.state.step.sharding.device_set) == 8 and len(one.state.step.sharding.device_set) == 1

    def losses(workdir):
        return [json.loads(l)["train"]["loss"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]

    np.testing.assert_allclose(losses(root / "eight"), losses(root / "one"), rtol=1e-5)
    worst = 0.0
    for a, b in zip(jax.tree.leaves(eight.state), jax.tree.leaves(one.state), strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        worst = max(worst, float(np.abs(a - b).max()))
    np.testing.assert_allclose(eight.eval_metrics["psnr"], one.eval_metrics["psnr"], rtol=1e-5)
    print("SHARDED_OK max abs difference", worst)
""")


def test_eight_devices_equal_one(tmp_path):
    assert "SHARDED_OK" in run_script(SCRIPT, str(tmp_path), devices=8)
