"""`workdir_lock`: one training at a time in a workdir.

A second `train` in a folder whose run is still going (say a ``--resume``
started before the first run ended) would interleave checkpoints and
metrics lines with it; the lock stops it at once with one line instead.
The lock is an exclusive ``flock`` on ``<workdir>/.lock``: the operating
system drops it when its process ends, however it ends, so a killed run
never leaves a stale lock. Only process 0 of a multi-host run takes it (the
others write nothing of their own there).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

import jax

LOCK = ".lock"


class WorkdirInUse(RuntimeError):
    """Another training holds the workdir."""


@contextlib.contextmanager
def workdir_lock(workdir: str | Path) -> Iterator[None]:
    """Holds `workdir`'s lock for the block (creating the folder).

    Raises:
      WorkdirInUse: another process (or another open run in this one) holds it; the message names its pid.
    """
    if jax.process_index() != 0:
        yield
        return
    path = Path(workdir) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise WorkdirInUse(f"{workdir} is in use by another training (pid {owner}); wait for it to end "
                               "or use another workdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
