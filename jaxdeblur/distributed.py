"""Several processes (hosts) through `jax.distributed`: start-up from env vars, cross-process checks.

Run the same script on every host, each with its own process id::

    JAXDEBLUR_COORDINATOR=10.0.0.1:8476 JAXDEBLUR_NUM_PROCESSES=2 JAXDEBLUR_PROCESS_ID=0 python job.py  # host 0
    JAXDEBLUR_COORDINATOR=10.0.0.1:8476 JAXDEBLUR_NUM_PROCESSES=2 JAXDEBLUR_PROCESS_ID=1 python job.py  # host 1

and call `jaxdeblur.distributed.initialize()` before anything touches a
device. Environment variables (an argument of `initialize` wins over them):

- ``JAXDEBLUR_COORDINATOR``: host:port of process 0, which serves the
  coordinator (a free port on process 0's host, reachable from the others);
- ``JAXDEBLUR_NUM_PROCESSES``, ``JAXDEBLUR_PROCESS_ID``: how many processes
  and which one this is (0 .. n-1);
- ``JAXDEBLUR_INIT_TIMEOUT``: seconds to wait for every process to join
  (default 300); past it every process stops with one line.

With none of them set `initialize()` does nothing (one process), so a script
that calls it runs unchanged on one machine. On clusters jax detects itself
(SLURM, Open MPI, TPU pods, ...) call `jax.distributed.initialize()` instead.

After start-up `jax.devices()` lists every process's devices: the DIP engine
splits a batch of runs over all of them and the trainer splits each global
batch (see README, "Several hosts"). `check_same` makes sure every process
got the same job (one clear error instead of a hang or silently different
results); `gather_strings` collects a small string from every process.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Mapping, Sequence

import jax
import numpy as np

ENV_COORDINATOR = "JAXDEBLUR_COORDINATOR"
ENV_NUM_PROCESSES = "JAXDEBLUR_NUM_PROCESSES"
ENV_PROCESS_ID = "JAXDEBLUR_PROCESS_ID"
ENV_TIMEOUT = "JAXDEBLUR_INIT_TIMEOUT"
DEFAULT_TIMEOUT_S = 300


class DistributedError(RuntimeError):
    """The processes could not start together (a process missing, a wrong address or count)."""


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """{"coordinator", "num_processes", "process_id", "timeout"} from the environment (None where unset)."""
    environ = os.environ if environ is None else environ
    coordinator = environ.get(ENV_COORDINATOR) or None
    return {"coordinator": coordinator, "num_processes": _env_int(environ, ENV_NUM_PROCESSES),
            "process_id": _env_int(environ, ENV_PROCESS_ID), "timeout": _env_int(environ, ENV_TIMEOUT)}


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, timeout: int | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Joins this process to the others (`jax.distributed.initialize`); False when there is nothing to join.

    Arguments default to the env vars of this module. Returns True once every
    process has joined (then `jax.process_count()` is `num_processes`), False
    when neither arguments nor env vars ask for several processes.

    Raises:
      ValueError: a partial or inconsistent setting (say a process id without a count), in one line.
      DistributedError: the processes did not all join within `timeout` seconds, in one line naming the
        coordinator, this process and what to check.
    """
    env = settings_from_env(environ)
    coordinator = coordinator if coordinator is not None else env["coordinator"]
    num_processes = num_processes if num_processes is not None else env["num_processes"]
    process_id = process_id if process_id is not None else env["process_id"]
    if timeout is None:
        timeout = env["timeout"] if env["timeout"] is not None else DEFAULT_TIMEOUT_S
    given = {ENV_COORDINATOR: coordinator, ENV_NUM_PROCESSES: num_processes, ENV_PROCESS_ID: process_id}
    if all(v is None for v in given.values()):
        return False
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise ValueError(f"several processes need {', '.join(given)}; missing: {', '.join(missing)}")
    if ":" not in coordinator:
        raise ValueError(f"{ENV_COORDINATOR} must be host:port (process 0's address), got {coordinator!r}")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(f"{ENV_PROCESS_ID} must be in 0..{ENV_NUM_PROCESSES} - 1, got process id {process_id} of "
                         f"{num_processes}")
    if timeout <= 0:
        raise ValueError(f"{ENV_TIMEOUT} must be >= 1 second, got {timeout}")
    if num_processes > 1:
        _rendezvous(coordinator, num_processes, process_id, timeout)
    try:
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=int(timeout), cluster_detection_method="deactivate")
    except Exception as err:  # jax raises XlaRuntimeError (DEADLINE_EXCEEDED, UNAVAILABLE, ...) over many lines
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        if "before any JAX" in reason or "only be called once" in reason:
            raise DistributedError(f"process {process_id} of {num_processes}: call jaxdeblur.distributed.initialize() "
                                   f"once, first, before any JAX computation or device query: {reason[:200]}") from None
        raise DistributedError(
            f"process {process_id} of {num_processes}: the processes did not all join the coordinator at "
            f"{coordinator} within {timeout} s (start the same script on every host with the same "
            f"{ENV_COORDINATOR} and {ENV_NUM_PROCESSES} and ids 0..{num_processes - 1}, process 0 first "
            f"reachable at that address): {reason[:200]}") from None
    return True


def _rendezvous(coordinator: str, num_processes: int, process_id: int, timeout: float) -> None:
    """Waits until every process is up, on the coordinator's port, before jax's own start-up.

    jax's coordination client ends the process from C++ (an abort, a stack
    trace) when a process is missing at its deadline; this barrier fails first,
    in one line naming who is missing. Process 0 listens on the coordinator's
    port and answers "go" once ids 1..n-1 have all said hello (then frees the
    port for jax's service); the others retry connecting until `timeout`.
    """
    host, port = coordinator.rsplit(":", 1)
    port = int(port)
    deadline = time.monotonic() + timeout
    hello = f"jaxdeblur {num_processes} {process_id}\n".encode()
    where = f"process {process_id} of {num_processes}"
    if process_id == 0:
        joined: dict[int, socket.socket] = {}
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind(("", port))
            except OSError as err:
                raise DistributedError(f"{where}: cannot listen on the coordinator's port {port}: {err}") from None
            server.listen(num_processes)
            try:
                while len(joined) < num_processes - 1:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        missing = sorted(set(range(1, num_processes)) - set(joined))
                        raise DistributedError(
                            f"{where}: process(es) {missing} did not join the coordinator at {coordinator} within "
                            f"{timeout} s (joined: {[0] + sorted(joined)}); start the same script on every host "
                            f"with {ENV_COORDINATOR}={coordinator}, {ENV_NUM_PROCESSES}={num_processes} and its own "
                            f"{ENV_PROCESS_ID}")
                    server.settimeout(left)
                    try:
                        conn, _ = server.accept()
                    except socket.timeout:
                        continue
                    conn.settimeout(max(1.0, deadline - time.monotonic()))
                    try:
                        words = conn.makefile("rb").readline().decode(errors="replace").split()
                    except OSError:
                        conn.close()
                        continue
                    if len(words) != 3 or words[0] != "jaxdeblur":
                        conn.close()  # not one of ours (a port scan, a stale client)
                        continue
                    count, other = int(words[1]), int(words[2])
                    problem = (f"process {other} says {count} processes, process 0 {num_processes}"
                               if count != num_processes else
                               f"two processes have {ENV_PROCESS_ID}={other}" if other in joined or other == 0 else
                               f"process id {other} is outside 0..{num_processes - 1}"
                               if not 0 < other < num_processes else None)
                    if problem:
                        conn.sendall(f"error {problem}\n".encode())
                        conn.close()
                        raise DistributedError(f"{where}: {problem}")
                    joined[other] = conn
                for conn in joined.values():
                    conn.sendall(b"go\n")
                for conn in joined.values():  # let the other side close first: no TIME_WAIT left on this port
                    conn.settimeout(2.0)
                    try:
                        conn.recv(1)
                    except OSError:
                        pass
            finally:
                for conn in joined.values():
                    conn.close()
        return
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DistributedError(f"{where}: no coordinator answered at {coordinator} within {timeout} s (is "
                                   f"process 0 running there, and did every process of {num_processes} start?)")
        try:
            with socket.create_connection((host, port), timeout=min(left, 5.0)) as conn:
                conn.sendall(hello)
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                answer = conn.makefile("rb").readline().decode(errors="replace").strip()
        except (OSError, socket.timeout):
            time.sleep(0.2)
            continue
        if answer == "go":
            return
        if answer.startswith("error"):
            raise DistributedError(f"{where}: the coordinator refused this process: {answer[6:]}")
        time.sleep(0.2)  # the coordinator went away before answering (it timed out): retry until our deadline


def is_primary() -> bool:
    """Whether this is process 0, the one that writes shared files (results, logs, run records)."""
    return jax.process_index() == 0


def _gather_bytes(rows: np.ndarray) -> np.ndarray:
    """(processes, n) uint8: every process's `rows` (n bytes, the same n on all)."""
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(rows))


def gather_strings(text: str) -> list[str]:
    """Every process's `text` (UTF-8), in process order; [text] on one process."""
    if jax.process_count() == 1:
        return [text]
    data = np.frombuffer(text.encode(), np.uint8)
    lengths = _gather_bytes(np.frombuffer(np.int64(data.size).tobytes(), np.uint8)).view(np.int64).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[:data.size] = data
    rows = _gather_bytes(padded)
    return [bytes(row[:n]).decode() for row, n in zip(rows, lengths)]


def digest(*parts) -> str:
    """SHA-256 of arrays (dtype, shape and bytes) and other values (their repr), in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray) or (isinstance(part, Sequence) and part and isinstance(part[0], np.ndarray)):
            for array in ([part] if isinstance(part, np.ndarray) else part):
                array = np.ascontiguousarray(array)
                h.update(f"{array.dtype.str}{array.shape}".encode())
                h.update(array.tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def check_same(value_digest: str, what: str, hint: str = "") -> None:
    """Raises ValueError on every process unless all processes hold the same `value_digest` (a hex digest).

    what: what the digest covers, for the message ("the batch (images, kernel
    sizes, seeds, method, config)"). A no-op on one process. A collective:
    every process must call it at the same point.
    """
    if jax.process_count() == 1:
        return
    rows = _gather_bytes(np.frombuffer(bytes.fromhex(value_digest), np.uint8))
    differ = [p for p in range(rows.shape[0]) if not np.array_equal(rows[p], rows[0])]
    if differ:
        raise ValueError(f"{what} differ between the {rows.shape[0]} processes: process(es) {differ} hold other "
                         f"values than process 0{'; ' + hint if hint else ''}")


__all__ = ["DistributedError", "ENV_COORDINATOR", "ENV_NUM_PROCESSES", "ENV_PROCESS_ID", "ENV_TIMEOUT",
           "check_same", "digest", "gather_strings", "initialize", "is_primary", "settings_from_env"]
