"""Starting the worker (tests/multiprocess/worker.py) as several processes joined on 127.0.0.1, or as one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import FAST_COMPILE_XLA

ROOT = Path(__file__).resolve().parents[2]
ENV_NAMES = ("JAXDEBLUR_COORDINATOR", "JAXDEBLUR_NUM_PROCESSES", "JAXDEBLUR_PROCESS_ID", "JAXDEBLUR_INIT_TIMEOUT")


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now (the coordinator's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Finished:
    """One worker's end: returncode None when it was killed at the deadline; seconds since the launch."""

    process: int
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


class Launch:
    """Workers running now; `wait()` collects them."""

    def __init__(self, running: list[tuple[int, subprocess.Popen]], deadline_s: float):
        self.running, self.deadline_s, self.started = running, deadline_s, time.perf_counter()

    def wait(self) -> list[Finished]:
        """Waits for every worker (killing those still running `deadline_s` after the start)."""
        finished: list[Finished | None] = [None] * len(self.running)

        def collect(n: int, i: int, proc: subprocess.Popen) -> None:
            left = max(1.0, self.deadline_s - (time.perf_counter() - self.started))
            try:
                stdout, stderr = proc.communicate(timeout=left)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                code = None
            finished[n] = Finished(i, code, stdout, stderr, time.perf_counter() - self.started)

        threads = [threading.Thread(target=collect, args=(n, i, proc)) for n, (i, proc) in enumerate(self.running)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return finished


def start(scenario: str, out: Path, *args: str, processes: int = 2, devices: int = 2, ids=None,
          init_timeout: int = 60, deadline_s: float = 300) -> Launch:
    """Starts `processes` workers (process ids `ids`, default all) joined on 127.0.0.1, `devices` CPU devices
    each; processes=0: one process without jax.distributed. The suite's XLA options and compilation cache."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXDEBLUR_TEST_WATCHDOG_S=str(max(1.0, deadline_s - 10)),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE_XLA}".strip())
    for name in ENV_NAMES:
        env.pop(name, None)
    if processes:
        env.update(JAXDEBLUR_COORDINATOR=f"127.0.0.1:{free_port()}", JAXDEBLUR_NUM_PROCESSES=str(processes),
                   JAXDEBLUR_INIT_TIMEOUT=str(init_timeout))
    ids = list(range(processes)) if ids is None else list(ids)
    running = []
    for i in ids or [0]:
        penv = dict(env, JAXDEBLUR_PROCESS_ID=str(i)) if processes else env
        running.append((i, subprocess.Popen([sys.executable, "-m", "tests.multiprocess.worker", scenario, str(out),
                                             *args], cwd=ROOT, env=penv, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)))
    return Launch(running, deadline_s)


def launch(scenario: str, out: Path, *args: str, **kwargs) -> list[Finished]:
    """`start(...)` and wait for all."""
    return start(scenario, out, *args, **kwargs).wait()
