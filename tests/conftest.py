"""Test configuration: CPU only, tiny shapes, `slow` tests opt-in with --runslow."""

import os
import subprocess
import sys
from pathlib import Path

# Must run before jax initialises its backends.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Tests run tiny shapes, so XLA's compile time dominates: skip its backend optimisation (the suite ran about
# 3x faster on the 2-core CI machine), emit fusions with XLA:CPU's older emitters and skip LLVM's expensive
# passes (the tiny NAFNet's train step: 10.6 -> 6.7 s of compile on the quiet 2-core machine; the suite
# 476 -> 314 s). The older emitters round a batched loop's body differently from the same program alone (XLA's
# default emitters give bit-equal runs), so batch == single is checked to rounding here, and `make test-all`
# (the per-method batch == single tests among its slow ones) sets JAXDEBLUR_TEST_XLA_FLAGS to the unoptimised
# backend alone.
FAST_COMPILE_XLA = os.environ.get("JAXDEBLUR_TEST_XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                  "--xla_cpu_use_fusion_emitters=false --xla_llvm_disable_expensive_passes=true")
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_XLA}".strip()
# Many test files compile the same tiny programs (the DIP engine's chunk, the trainers' steps): one on-disk
# compilation cache, shared by the xdist workers and the subprocess tests, compiles each of them once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ.get("JAXDEBLUR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def run_script(script: str, *args: str, devices: int = 1, xla_flags: str = FAST_COMPILE_XLA) -> str:
    """Runs a Python `script` in a fresh process (CPU, `devices` forced host devices, `xla_flags`, the suite's
    compilation cache) from the repository root; asserts it exits 0 and returns its stdout."""
    flags = f"--xla_force_host_platform_device_count={devices} {xla_flags}" if devices > 1 else xla_flags
    env = dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


# The files that take longest (compiles; measured with --durations on the 2-core CI), run first: with
# `-n 2 --dist loadfile` a worker takes whole files in collection order, so a heavy file left for the end
# keeps one core busy while the other idles.
HEAVY_FIRST = ("tests/models/test_contract.py", "tests/methods/test_uncertainty.py", "tests/test_cli.py",
               "tests/methods/test_kotera.py", "tests/engine/test_engine.py", "tests/models/region/test_region.py",
               "tests/methods/test_kernel_space.py", "tests/estimate/test_support.py", "tests/nets/test_ufpnet.py",
               "tests/models/ufpnet/test_shipped.py", "tests/nets/test_ufpnet_golden.py",
               "tests/engine/test_checkpoint.py",
               "tests/test_map_init.py", "tests/test_api.py", "tests/models/test_torch_import.py",
               "tests/train/test_parallel.py", "tests/nets/test_golden.py", "tests/test_demo.py",
               "tests/models/kernel_space/test_kernel_space_model.py")


def _heavy_rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return HEAVY_FIRST.index(path) if path in HEAVY_FIRST else len(HEAVY_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_heavy_rank)  # stable: the order inside a file and among the other files is kept
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def levin_root():
    """Root of the Levin data (../shared/data/levin); skips when it is absent."""
    root = SHARED_DATA / "levin"
    if not root.is_dir():
        pytest.skip(f"Levin data not found at {root} (set JAXDEBLUR_DATA or place ../shared beside the repo)")
    return root


@pytest.fixture(scope="session")
def train400_root():
    """The train400 training images (../shared/data/train400); skips when they are absent."""
    root = SHARED_DATA / "train400"
    if not root.is_dir():
        pytest.skip(f"train400 data not found at {root} (set JAXDEBLUR_DATA or place ../shared beside the repo)")
    return root
