"""Configs as JSON records: the round trip of a frozen config, run stamps, dotted overrides.

A config is a frozen dataclass that may nest others (``config.train`` is a
`TrainSettings`). `config_record` makes a JSON-ready dict of it (written in
checkpoints and weight manifests); `config_from_record` rebuilds the config
from such a dict, taking the types from a template config of the same class.

A config class that moved flat fields into a nested config declares where
they went in a class attribute ``record_moves`` ({"lr": "optim.lr", ...}):
records written before the move (shipped manifests, checkpoint stamps) and
overrides by the old names (``--set lr=...``) are read at the new place
(`upgrade_record`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, TypeVar

from jaxdeblur.config import override

C = TypeVar("C")


def config_record(config: Any) -> dict:
    """A JSON-ready dict of a config dataclass: nested dataclasses become dicts, tuples lists.

    Raises:
      TypeError: `config` is not a dataclass instance, or holds a value JSON cannot write.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    try:
        return json.loads(json.dumps(dataclasses.asdict(config)))
    except TypeError as error:
        raise TypeError(f"config {type(config).__name__} holds a value JSON cannot write: {error}") from None


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _moves(config: Any) -> Mapping[str, str]:
    return getattr(type(config), "record_moves", None) or {}


def upgrade_record(template: Any, record: Mapping[str, Any]) -> dict:
    """`record` (of `template`'s class) with the fields its class moved (``record_moves``) at their new
    dotted places, at every level of nesting; an entry already at the new place wins. Records without moved
    names come back equal."""
    if not dataclasses.is_dataclass(template):
        return dict(record)
    moves = _moves(template)
    out: dict = {}
    for name, value in record.items():
        path = moves.get(name, name).split(".")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(path[-1], value)
    for name, value in out.items():
        current = getattr(template, name, None)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            out[name] = upgrade_record(current, value)
    return out


def config_from_record(template: C, record: Mapping[str, Any]) -> C:
    """The config of `template`'s class described by `record` (from `config_record`).

    Nested dataclass fields are rebuilt from the template's nested value,
    JSON lists become tuples; a field missing from `record` keeps the
    template's value (a field added after the record was written); fields
    the class has moved (``record_moves``) are read at their new place.

    Raises:
      ValueError: `record` names a field the config does not have.
    """
    record = upgrade_record(template, record)
    names = {f.name for f in dataclasses.fields(template)}
    unknown = sorted(set(record) - names)
    if unknown:
        raise ValueError(f"record has field(s) {unknown} unknown to {type(template).__name__}; valid: {sorted(names)}")
    changes = {}
    for name, value in record.items():
        current = getattr(template, name)
        nested = dataclasses.is_dataclass(current) and isinstance(value, Mapping)
        changes[name] = config_from_record(current, value) if nested else _tuples(value)
    return dataclasses.replace(template, **changes)


def override_nested(config: C, overrides: Mapping[str, Any] | None) -> C:
    """`jaxdeblur.config.override` that also reaches nested configs by dotted names.

    ``{"width": 16, "train.steps": 100}`` sets ``config.width`` and
    ``config.train.steps``; a name the config's class has moved
    (``record_moves``: ``lr`` -> ``optim.lr``) is set at its new place.
    Unknown names raise ValueError (from `override`).
    """
    if not overrides:
        return config
    direct, nested = {}, {}
    moves = _moves(config)
    for name, value in overrides.items():
        head, dot, tail = name.partition(".")
        if head in moves:
            name = moves[head] + dot + tail
            head, dot, tail = name.partition(".")
        if dot:
            nested.setdefault(head, {})[tail] = value
        else:
            direct[name] = value
    for head, inner in nested.items():
        if not dataclasses.is_dataclass(getattr(config, head, None)):
            raise ValueError(f"{type(config).__name__} has no nested config {head!r} (in {sorted(inner)})")
        direct[head] = override_nested(getattr(config, head), inner)
    return override(config, direct)


def run_stamp(task: Any) -> dict:
    """What identifies a training run: the task's name and its full config record."""
    return {"task": task.name, "config": config_record(task.config)}


def upgrade_stamp(task: Any, saved: Mapping[str, Any]) -> dict:
    """A run stamp read from a checkpoint, its config as this version records `task`'s config class: a stamp
    written before the class moved fields (``record_moves``) is rebuilt through `config_from_record`, so a
    run started before the move resumes; any other stamp comes back as it is."""
    record = saved.get("config")
    moves = _moves(task.config)
    if not isinstance(record, Mapping) or not moves or not set(record) & set(moves):
        return dict(saved)
    try:
        return {**saved, "config": config_record(config_from_record(task.config, record))}
    except (TypeError, ValueError):
        return dict(saved)


def record_differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the entries where two JSON records differ (sorted)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += record_differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]
