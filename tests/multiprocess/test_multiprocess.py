"""Several processes through jax.distributed, on one machine: 2 processes on 127.0.0.1, 2 CPU devices each.

One launch of tests/multiprocess/worker.py per scenario, all started together by the module fixture:
"multi" (2 processes: the same-job checks, a toy training stopped at step 4 and resumed to 8, a deblur_batch of
4 images), "reference" (one process with 4 CPU devices: the same training uninterrupted, the same batch) and
two lone processes of a pair that never completes (init timeout 3 s). Measured on the shared 2-core machine
(load ~10): 82-90 CPU-s, 160-180 s wall, with a cold compilation cache (mostly the DIP chunk program, compiled by
each of the 3 processes that run it).

The two runs use the same 4 devices' worth of mesh, but not the same collectives (across processes or within
one), so they agree to float rounding (measured: parameters within 6e-8, DIP images within 6e-5 after 10
iterations: the engine tests' batch == single tolerance), while the two processes of a run agree bit for bit.

Marked slow (run by `make test-all`): its launches compile the same programs in 3 processes, about 90 CPU-s,
which took the default suite past CI's 8 minutes (measured 8 min 17 s of pytest with it, quiet 2-core machine).
The cheap multi-process checks (settings, rendezvous, helpers) stay in tests/multiprocess/test_distributed.py.
"""

import json

import numpy as np
import pytest

from tests.multiprocess.launch import start

pytestmark = pytest.mark.slow

INIT_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """{name: (finished workers, out folder)} for the multi / reference / lone-process launches."""
    root = tmp_path_factory.mktemp("multiprocess")
    launches = {
        "multi": (start("multi", root / "multi", deadline_s=500), root / "multi"),
        "reference": (start("reference", root / "reference", processes=0, devices=4, deadline_s=500),
                      root / "reference"),
        "alone0": (start("join", root / "alone0", ids=[0], init_timeout=INIT_TIMEOUT_S, deadline_s=120),
                   root / "alone0"),
        "alone1": (start("join", root / "alone1", ids=[1], init_timeout=INIT_TIMEOUT_S, deadline_s=120),
                   root / "alone1"),
    }
    return {name: (run.wait(), out) for name, (run, out) in launches.items()}


def _succeeded(launched, name):
    """[(record, arrays)] per process of a launch that must have ended well."""
    finished, out = launched[name]
    for f in finished:
        assert f.returncode == 0, f"{name} process {f.process} (status {f.returncode}):\n{f.stderr[-4000:]}"
    records = [json.loads((out / f"process{f.process}.json").read_text()) for f in finished]
    arrays = [dict(np.load(out / f"process{f.process}.npz")) for f in finished]
    return list(zip(records, arrays))


def test_processes_joined_and_imports_start_no_backend(launched):
    (r0, _), (r1, _) = _succeeded(launched, "multi")
    ((ref, _),) = _succeeded(launched, "reference")
    assert [r0["process"], r1["process"]] == [0, 1]
    assert r0["processes"] == r1["processes"] == 2 and r0["joined"] and r1["joined"]
    assert r0["devices"] == r1["devices"] == 4 and r0["local_devices"] == r1["local_devices"] == 2
    assert ref["processes"] == 1 and ref["devices"] == 4 and not ref["joined"]
    # importing every jaxdeblur module must leave jax uninitialised (else jax.distributed.initialize() fails)
    assert r0["backend_started_by"] == r1["backend_started_by"] == [] == ref["backend_started_by"]


def test_training_on_two_processes_equals_one_and_resumes(launched):
    """Each process loads its own half of every global batch of 8; stopped at step 4 (a checkpoint both
    processes write together, with each one's loader position), resumed by both to step 8."""
    (r0, a0), (r1, a1) = _succeeded(launched, "multi")
    ((ref, aref),) = _succeeded(launched, "reference")
    assert r0["stopped_at"] == r1["stopped_at"] == 4 and r0["step"] == r1["step"] == ref["step"] == 8
    loader = r0["checkpoint_loader"]
    assert loader is not None, "no loader item in the step-4 checkpoint"
    assert loader["processes"] == [{"position": 4, "process": 0}, {"position": 4, "process": 1}]
    params = sorted(k for k in aref if k.startswith("param_"))
    assert len(params) == 7  # 2 convs (kernel, bias), BatchNorm scale + bias, its mean + variance
    for k in params:
        np.testing.assert_array_equal(a0[k], a1[k])  # one replicated state
        np.testing.assert_allclose(a0[k], aref[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # the logged losses (process 0 writes metrics.jsonl; the resumed run keeps the lines up to its checkpoint)
    assert "metrics" not in r1
    steps = [line["step"] for line in r0["metrics"]]
    assert steps == [line["step"] for line in ref["metrics"]] == [2, 4, 6, 8]
    for mine, theirs in zip(r0["metrics"], ref["metrics"]):
        np.testing.assert_allclose(mine["train"]["loss"], theirs["train"]["loss"], rtol=1e-5)
    np.testing.assert_allclose(r0["eval"]["psnr"], ref["eval"]["psnr"], rtol=1e-5)
    first, last = ref["metrics"][0]["train"]["loss"], ref["metrics"][-1]["train"]["loss"]
    assert last < 0.5 * first  # it trained: a wrong batch split or a lost resume would not match above


def test_deblur_batch_sharded_over_processes_equals_one(launched):
    """4 runs over 4 devices of 2 processes: every process gets every result, equal to one process's."""
    (r0, a0), (r1, a1) = _succeeded(launched, "multi")
    ((ref, aref),) = _succeeded(launched, "reference")
    assert r0["runs"] == r1["runs"] == ref["runs"] == 4
    for i in range(4):
        for name in ("image", "kernel", "loss"):
            np.testing.assert_array_equal(a0[f"{name}_{i}"], a1[f"{name}_{i}"])
        np.testing.assert_allclose(a0[f"image_{i}"], aref[f"image_{i}"], atol=1e-4)
        np.testing.assert_allclose(a0[f"kernel_{i}"], aref[f"kernel_{i}"], atol=1e-6)
        np.testing.assert_allclose(a0[f"loss_{i}"], aref[f"loss_{i}"], rtol=1e-5, atol=1e-7)
        assert a0[f"loss_{i}"][-1] < a0[f"loss_{i}"][0]
    assert np.abs(a0["image_0"] - a0["image_1"]).max() > 1e-2  # another run's result would fail the above


def test_a_process_with_other_data_gets_one_clear_line(launched):
    (r0, _), (r1, _) = _succeeded(launched, "multi")
    for record in (r0, r1):
        deblur, train = record["errors"]["deblur"], record["errors"]["train"]
        assert deblur is not None and train is not None
        assert "\n" not in deblur and "\n" not in train
        assert deblur.startswith("the batches of runs") and "process(es) [1]" in deblur
        assert train.startswith("the trainings of task 'toy'") and "process(es) [1]" in train
    assert r0["errors"]["deblur"] == r1["errors"]["deblur"] and r0["errors"]["train"] == r1["errors"]["train"]


def test_dip_checkpoints_are_refused_on_several_processes(launched):
    """Not supported yet (the engine's checkpoint verification reads every run's state on one host): one line
    on every process, before anything runs, instead of a failure mid-way."""
    (r0, _), (r1, _) = _succeeded(launched, "multi")
    for record in (r0, r1):
        error = record["errors"]["checkpoints"]
        assert error is not None and "\n" not in error
        assert error.startswith("checkpoint_dir: the DIP engine's checkpoints are not supported on several processes")


@pytest.mark.parametrize("alone, says", [("alone0", "process(es) [1] did not join the coordinator"),
                                         ("alone1", "no coordinator answered")])
def test_a_process_that_never_joins_fails_in_time(launched, alone, says):
    """One process of 2 started: it stops within the init timeout, with one line naming what is missing."""
    ((f,), _) = launched[alone]
    assert f.returncode == 2, f"status {f.returncode}:\n{f.stderr[-3000:]}"
    lines = [line for line in f.stderr.splitlines() if line.strip() and "WARNING" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], f.stderr[-3000:]
    assert "JAXDEBLUR_COORDINATOR" in lines[0] or "is process 0 running" in lines[0]
    waited = json.loads(f.stdout.strip().splitlines()[-1])["failed_after_init_s"]
    assert INIT_TIMEOUT_S - 0.5 <= waited < INIT_TIMEOUT_S + 15
