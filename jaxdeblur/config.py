"""Declarative configs of methods and models: frozen dataclasses with presets and overrides.

A method's config holds every number of the method (network widths, learning
rates, loss schedule, iterations). Each method declares three presets:

- ``"paper"``: exactly the settings of the paper / reference code,
- ``"fast"``: a documented cheaper setting for CPUs,
- ``"tiny"``: for tests (seconds on a CPU).

Configs are hashable, so the engine can cache compiled steps per config.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, TypeVar

C = TypeVar("C")

NEVER = 2**31 - 1  # an iteration no int32 step counter reaches: "never switch"


def _coerce(value: Any, current: Any) -> Any:
    """Casts an override to the field's current type (lists become tuples)."""
    if isinstance(current, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(current, bool):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if isinstance(current, int) and not isinstance(current, bool):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return value


def override(config: C, overrides: Mapping[str, Any] | None) -> C:
    """Returns `config` with fields replaced by `overrides` (unknown names raise).

    Values are coerced to the field's type, so CLI strings ("0.01") and lists
    work. Raises ValueError naming the unknown fields and the valid ones.
    """
    if not overrides:
        return config
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for {type(config).__name__}; valid: {sorted(names)}")
    changes = {k: _coerce(v, getattr(config, k)) for k, v in overrides.items()}
    return dataclasses.replace(config, **changes)


SCHEDULE_FIELDS = ("lr_milestones", "ssim_from", "tv_from", "kernel_l2_until", "coarse_iterations")


def compress_schedule(config: C, iterations: int) -> C:
    """`config` run for `iterations` with every switch point scaled by iterations / config.iterations.

    Scales the fields of `SCHEDULE_FIELDS` that the config has (learning-rate
    milestones, loss switch points, Kotera's per-coarse-scale iterations),
    rounding to the nearest iteration (at least 1 for a positive value), and
    leaves 0 ("from the start") and `NEVER` as they are. This is how the
    "fast" presets shorten the paper's schedule (5x), and how a CPU study
    runs a shorter but proportionate schedule.

    Raises:
      ValueError: iterations < 1.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    ratio = iterations / config.iterations

    def scale(v: int) -> int:
        return v if v in (0, NEVER) else max(1, round(v * ratio))

    changes = {"iterations": iterations}
    for name in SCHEDULE_FIELDS:
        if hasattr(config, name):
            value = getattr(config, name)
            changes[name] = tuple(scale(v) for v in value) if isinstance(value, tuple) else scale(value)
    return dataclasses.replace(config, **changes)


def parse_overrides(pairs) -> dict:
    """Config overrides from NAME=VALUE strings (the `--set` option of the CLI and the experiments).

    VALUE is read as JSON where it parses ("0.01", "[50, 100]", "true"), else
    kept as a string; `override` then checks the name and coerces the type.

    Raises:
      ValueError: an item without "=" or with an empty name.
    """
    out = {}
    for pair in pairs:
        name, sep, value = str(pair).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--set expects NAME=VALUE (e.g. --set iterations=500), got {pair!r}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def resolve(presets: Mapping[str, C], preset: str, config: C | Mapping[str, Any] | None) -> C:
    """Picks a preset and applies `config` (a full config object or a dict of overrides)."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    base = presets[preset]
    if config is None:
        return base
    if isinstance(config, type(base)):
        return config
    if isinstance(config, Mapping):
        return override(base, config)
    raise TypeError(f"config must be a {type(base).__name__} or a dict of overrides, got {type(config).__name__}")
