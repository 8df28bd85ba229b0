"""Shared bits of the experiment scripts: machine description and JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path

import jax

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Where a result came from: backend, device kind and count, CPU count, versions."""
    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device_kind": device.device_kind, "devices": jax.device_count(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__, "python": platform.python_version()}


def device_tag() -> str:
    """A short file-name tag for the machine: 'cpu', 'nvidia-h100', ..."""
    if jax.default_backend() == "cpu":
        return "cpu"
    return jax.devices()[0].device_kind.lower().replace(" ", "-")


def peak_memory_bytes() -> dict:
    """Peak memory so far: the accelerator's own counter if it has one, and the process's RSS."""
    out = {"host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
    return out


def write_json(path: Path, record: dict) -> Path:
    """Writes `record` as indented JSON (creating folders) and returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return path
