"""The one config grammar of the harness: a dataclass from a YAML file plus ``--set key=value`` overrides.

The dataclass is the source of truth: every value is checked against (and converted by) its field's type, nested
dataclasses are built from nested mappings, and an error names the file (or ``--set``) and the key with the type it
expects. Examples of what is refused: an unknown key, ``n_train: 12.5`` for an ``int`` field (it would otherwise
become a silent 13), a string for a ``bool``, a YAML syntax error (reported with the file's name and line).

``write_resolved_config`` is the one writer of a run's resolved configuration (YAML or JSON by the file suffix).
Recipes whose inputs include a TRL / transformers ``TrainingArguments`` use ``TrlParser`` instead of this loader.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml


T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit its dataclass (the message names the file and the key)."""


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping from ``path``; a syntax error or a non-mapping top level names the file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:  # a stream carries the file name into yaml's error marks
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: YAML syntax error: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields at top level, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _parse_float(value: Any) -> float | None:
    """PyYAML (YAML 1.1) reads ``1e-4`` as a string; a float field takes it as the number it spells."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def coerce(value: Any, tp: Any, where: str, key: str) -> Any:
    """``value`` checked against type ``tp`` (a nested mapping becomes its dataclass; ``"1e-4"`` a float)."""
    bad = ConfigError(f"{where}: key {key!r} expects {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, where, key)
            except ConfigError:
                continue
        raise bad
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: key {key!r} must be one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad
        return build(tp, value, where, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad  # a float for an int is refused, never rounded
    if tp is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # an int is a float (PEP 484); kept as is so values written back stay what they were
        parsed = _parse_float(value)
        if parsed is None:
            raise bad
        return parsed
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise bad
            return tuple(coerce(v, a, where, f"{key}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [coerce(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or tp is tuple else out
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise bad
        kt, vt = args if args else (Any, Any)
        return {coerce(k, kt, where, f"{key}.<key>"): coerce(v, vt, where, f"{key}.{k}") for k, v in value.items()}
    if tp is Path or tp is os.PathLike:
        if isinstance(value, (str, os.PathLike)):
            return value
        raise bad
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise bad
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def build(cls: type[T], data: Mapping[str, Any], where: str, prefix: str = "") -> T:
    """``cls(**data)`` with every key known and every value of its field's type (nested dataclasses included)."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        keys = ", ".join(repr(prefix + k) for k in unknown)
        raise ConfigError(f"{where}: unknown key(s) {keys} for {cls.__name__}; known: {sorted(types_)}")
    values = {k: coerce(v, types_[k], where, prefix + k) for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:  # __post_init__ checks (a value out of its allowed set, ...)
        raise ConfigError(f"{where}: {cls.__name__}: {e}") from None


def _override_type(cls: type, path: list[str]) -> Any:
    """The declared type at a dotted path (``Any`` below a plain mapping field)."""
    tp: Any = cls
    for part in path:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            types_ = _field_types(tp)
            if part not in types_:
                return None
            tp = types_[part]
        elif typing.get_origin(tp) in (dict, Mapping) or tp is dict:
            args = typing.get_args(tp)
            tp = args[1] if args else Any
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = inner[0] if len(inner) == 1 else Any
            return _override_type(tp, [part]) if dataclasses.is_dataclass(tp) else Any
        else:
            return Any
    return tp


def parse_override(item: str, cls: type) -> tuple[list[str], Any]:
    """``"a.b=value"`` → (``["a", "b"]``, value parsed by the field's type: a ``str`` field takes the text as is)."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
    path = key.split(".")
    tp = _override_type(cls, path)
    if tp is None:
        raise ConfigError(f"--set {item!r}: unknown key {key!r} for {cls.__name__}; known: {sorted(_field_types(cls))}")
    if tp is str:
        return path, text
    try:
        return path, yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {e}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], cls: type) -> dict[str, Any]:
    """``data`` with each ``KEY=VALUE`` of ``overrides`` set (dotted keys reach into nested mappings)."""
    out = json.loads(json.dumps(data, default=str)) if data else {}
    for item in overrides:
        path, value = parse_override(item, cls)
        target = out
        for part in path[:-1]:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a mapping")
            target = nxt
        target[path[-1]] = value
    return out


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                data: Mapping[str, Any] | None = None) -> T:
    """``cls`` from the YAML at ``path`` (or the mapping ``data``), then ``--set`` style ``overrides``, all checked.

    An error names where the bad key came from: the file, or ``--set`` for a value given on the command line.
    """
    raw: dict[str, Any] = dict(data or {})
    if path is not None:
        raw.update(read_yaml(path))
    where = str(path) if path is not None else "config"
    build(cls, raw, where)  # the file alone must be valid: its errors name the file, not --set
    return build(cls, apply_overrides(raw, overrides, cls), f"{where} + --set" if overrides else where)


def to_plain(obj: Any) -> Any:
    """A JSON/YAML-safe view of a config: dataclasses and ``TrainingArguments`` (``to_dict``) become mappings."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        obj = obj.to_dict()
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    elif isinstance(obj, Mapping):
        obj = {k: (to_plain(v) if dataclasses.is_dataclass(v) or hasattr(v, "to_dict") else v)
               for k, v in obj.items()}
    return json.loads(json.dumps(obj, default=str))


def write_resolved_config(path: str | os.PathLike, config: Any) -> Path:
    """Write the resolved config of a run next to its outputs: YAML for ``*.yaml``, JSON otherwise.

    ``config`` is a dataclass, a ``TrainingArguments``, or a mapping of named sections of those.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = to_plain(config)
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(plain, indent=2), encoding="utf-8")
    return path
