"""Test configuration: CPU only, tiny shapes, `slow` tests opt-in with --runslow."""

import os
from pathlib import Path

# Must run before jax initialises its backends.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Tests run tiny shapes, so XLA's compile time dominates: skip its backend
# optimisation (the suite ran about 3x faster on the 2-core CI machine).
UNOPTIMISED_XLA = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {UNOPTIMISED_XLA}".strip()
# Many test files compile the same tiny programs (the DIP engine's chunk, the trainers' steps): one on-disk
# compilation cache, shared by the xdist workers and the subprocess tests, compiles each of them once.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ.get("JAXDEBLUR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
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
