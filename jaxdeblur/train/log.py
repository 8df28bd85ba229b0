"""Training logs: metrics as JSON lines, and the window of training values between two log lines.

Each line of ``<workdir>/metrics.jsonl`` is one JSON object::

    {"step": 100, "time_s": 12.3,
     "train": {"loss": 0.01, "<metric>": ...},   # means over the finite steps since the last line
     "images_per_s": 812.5, "skipped": 0,        # training throughput (compile excluded); skipped steps so far
     "eval": {"psnr": 27.1, ...}}                 # present when the task was evaluated at this step

A line may carry "train", "eval" or both; "compile_s" (the first call of a run,
compilation included) appears once per run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np


class MetricsLog:
    """Appends JSON lines to `path`; a resumed run first drops the lines after its checkpoint."""

    def __init__(self, path: str | Path, *, resumed_at: int | None):
        self.path = Path(path)
        self.enabled = jax.process_index() == 0
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resumed_at is not None and self.path.exists():
            lines = self.path.read_text().splitlines()
            kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= resumed_at]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


class Window:
    """The training values of the calls since the last log line, kept on device until then.

    Throughput counts only training time: call `pause()` before anything else
    (evaluation, checkpoints; it waits for the device) and `resume()` after.
    """

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self._values: list = []
        self._steps = 0
        self._seconds = 0.0
        self._since = time.perf_counter()

    def add(self, values: dict, finite: jax.Array) -> None:
        """Records one call's outputs ({name: (n,)}, finite (n,)) without waiting for them."""
        self._values.append((values, finite))
        self._steps += int(finite.shape[0])

    def pause(self, wait_for) -> None:
        """Waits for `wait_for` (the newest state) and stops the clock."""
        jax.block_until_ready(wait_for)
        self._seconds += time.perf_counter() - self._since

    def resume(self) -> None:
        self._since = time.perf_counter()

    def restart(self) -> None:
        """Forgets the steps and time so far (values are kept): used after the compiling first call."""
        self._steps, self._seconds = 0, 0.0
        self.resume()

    def summary(self) -> dict:
        """{"train": means over finite steps, "images_per_s": ...}; empties the window. Call after pause()."""
        fetched = jax.device_get(self._values)
        out: dict = {}
        if fetched:
            finite = np.concatenate([f for _, f in fetched])
            names = fetched[0][0].keys()
            values = {name: np.concatenate([v[name] for v, _ in fetched])[finite] for name in names}
            out["train"] = {name: float(v.mean()) if v.size else float("nan") for name, v in values.items()}
        if self._steps and self._seconds > 0:
            out["images_per_s"] = self._steps * self.batch_size / self._seconds
        self._values, self._steps, self._seconds = [], 0, 0.0
        return out
