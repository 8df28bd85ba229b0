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
import numbers
from typing import Any, Mapping, TypeVar

C = TypeVar("C")

NEVER = 2**31 - 1  # an iteration no int32 step counter reaches: "never switch"


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _kind(current: Any) -> str:
    """How a field's type reads in an error message ("an int", "a tuple of int", ...)."""
    if isinstance(current, bool):
        return "true or false"
    if isinstance(current, tuple):
        inner = sorted({_kind(v).split(" ", 1)[-1] for v in current}) if current else ["values"]
        return f"a tuple of {' / '.join(inner)}"
    names = {int: "an int", float: "a float (a number)", str: "a string"}
    return names.get(type(current), f"a {type(current).__name__}")


def _example(current: Any) -> str:
    """The field's current value written as a valid override (JSON, tuples as lists)."""
    try:
        return json.dumps(current)
    except TypeError:
        return repr(current)


def _coerce_scalar(value: Any, current: Any) -> Any:
    """`value` as the type of `current`; raises TypeError/ValueError when it does not fit."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if isinstance(value, (str, int)) and text in _TRUE + _FALSE:
            return text in _TRUE
        raise ValueError(value)
    if isinstance(current, int):
        if isinstance(value, bool) or isinstance(value, (list, tuple, dict)) or value is None:
            raise TypeError(value)
        number = float(value)
        if number != int(number):
            raise ValueError(value)
        return int(number)
    if isinstance(current, float):
        if isinstance(value, bool) or isinstance(value, (list, tuple, dict)) or value is None:
            raise TypeError(value)
        return float(value)
    if isinstance(current, str):
        if isinstance(value, (list, tuple, dict)) or value is None:
            raise TypeError(value)
        return str(value)
    if dataclasses.is_dataclass(current) and not isinstance(value, type(current)):
        raise TypeError(value)
    return value


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Casts an override to the field's current type (lists become tuples).

    Raises ValueError naming the field, its type and an example of a valid value.
    """
    try:
        if isinstance(current, tuple):
            if not isinstance(value, (list, tuple)):
                raise TypeError(value)
            if current and len({type(v) for v in current}) == 1:
                return tuple(_coerce_scalar(v, current[0]) for v in value)
            return tuple(value)
        return _coerce_scalar(value, current)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"config field {name!r} must be {_kind(current)}, got {value!r}; "
                         f"a valid value: {name}={_example(current)}") from None


def override(config: C, overrides: Mapping[str, Any] | None) -> C:
    """`config` with fields replaced by `overrides` (unknown names raise).

    Values are coerced to the field's type, so CLI strings ("0.01") and lists
    work.

    Args:
      config: a config dataclass.
      overrides: {field name: value}, or None / empty (nothing to change).

    Returns:
      the new config (`dataclasses.replace`).

    Raises:
      ValueError: naming the unknown fields and the valid ones, or naming a
        field whose value does not fit its type (with the type and an example
        of a valid value, e.g. ``lr_milestones=[2000, 3000, 4000]``).
    """
    if not overrides:
        return config
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for {type(config).__name__}; valid: {sorted(names)}")
    changes = {k: _coerce(k, v, getattr(config, k)) for k, v in overrides.items()}
    return dataclasses.replace(config, **changes)


SCHEDULE_FIELDS = ("lr_milestones", "ssim_from", "tv_from", "kernel_l2_until", "coarse_iterations",
                   "warmup_iterations", "second_phase_from")


def compress_schedule(config: C, iterations: int) -> C:
    """`config` run for `iterations` with every switch point scaled by iterations / config.iterations.

    Scales the fields of `SCHEDULE_FIELDS` that the config has (learning-rate
    milestones, loss switch points, Kotera's per-coarse-scale iterations),
    rounding to the nearest iteration (at least 1 for a positive value), and
    leaves 0 ("from the start") and `NEVER` as they are. This is how the
    "fast" presets shorten the paper's schedule (5x), and how a CPU study
    runs a shorter but proportionate schedule.

    Args:
      config: a config with an `iterations` field.
      iterations: the new run length.

    Returns:
      the compressed config.

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

    Args:
      pairs: NAME=VALUE strings.

    Returns:
      {NAME: value}.

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


AUTO_PRESET = "auto"  # a preset name that picks one by platform (or the method's own choice)


def resolve_preset(presets: Mapping[str, Any], preset: str, *, platform: str, auto: str | None = None,
                   auto_reason: str | None = None) -> tuple[str, str]:
    """The preset a run uses, and why.

    Args:
      presets: the method's presets by name.
      preset: a name of `presets`, or "auto" (`AUTO_PRESET`).
      platform: the platform the run will use ("cpu", "gpu", "tpu").
      auto: the method's own choice for "auto" (e.g. MAP's "default"), or
        None: "fast" on a CPU, "paper" elsewhere.
      auto_reason: why the method chose `auto` (for messages).

    Returns:
      (preset name, reason): the reason is "as asked" unless "auto" chose.

    Raises:
      ValueError: an unknown preset, or "auto" picking one the method lacks.
    """
    if preset == AUTO_PRESET and auto is not None:
        return auto, auto_reason or "the method's default"
    if preset == AUTO_PRESET:
        name = "fast" if platform == "cpu" else "paper"
        if name not in presets:
            raise ValueError(f"preset 'auto' picks {name!r} on {platform}, which this method does not have; "
                             f"choose one of {sorted(presets)}")
        return name, f"chosen automatically for {platform}"
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets) + [AUTO_PRESET]}")
    return preset, "as asked"


def resolve(presets: Mapping[str, C], preset: str, config: C | Mapping[str, Any] | None, *,
            iterations: int | None = None) -> C:
    """Picks a preset, compresses its schedule to `iterations`, then applies `config`.

    Args:
      presets: the configs by preset name.
      preset: a name of `presets`.
      config: None, a full config object (used instead of the preset, still
        compressed to `iterations`) or a dict of field overrides (applied
        after the compression, so a raw field wins).
      iterations: run length for `compress_schedule`, or None (as it is).

    Returns:
      the resolved config.

    Raises:
      ValueError: an unknown preset or field, a value of the wrong type, iterations < 1.
      TypeError: a config that is neither the preset's type nor a dict.
    """
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(presets)}")
    base = presets[preset]
    if config is not None and not isinstance(config, (Mapping, type(base))):
        raise TypeError(f"config must be a {type(base).__name__} or a dict of overrides, got {type(config).__name__}")
    if isinstance(config, type(base)):
        base = config
    if iterations is not None:
        if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations!r} (for the raw config "
                             "field, pass config={'iterations': N})")
        base = compress_schedule(base, int(iterations))
    return override(base, config) if isinstance(config, Mapping) else base


__all__ = ["NEVER", "SCHEDULE_FIELDS", "AUTO_PRESET", "override", "compress_schedule", "parse_overrides", "resolve",
           "resolve_preset"]
