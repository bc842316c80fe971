"""Typed configuration: dataclasses loaded from YAML, overridden on the command line.

::

    cfg = load_config(DataConfig, "configs/data.yaml", ["augment.p=1.0", "modalities=[ct,cbf]"])
    save_config(cfg, run / "config.yaml")

Values are checked against the dataclass field types (int, float, bool, str, Literal, tuples,
lists, dicts, optional values, nested dataclasses); an unknown key or a wrong type raises a
:class:`~strokesynth.errors.ConfigError` naming the file and the key. Overrides are
``dotted.key=value`` with the value parsed as YAML.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from strokesynth._fs import write_text_atomic
from strokesynth.errors import ConfigError

T = TypeVar("T")


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as exc:
                errors.append(exc.problem)
        raise ConfigError(where, errors[0] if errors else f"invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(where, f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(where, f"expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(where, f"expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return (origin or tp)(items) if origin is not list else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(where, f"expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(where, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected text, got {value!r}")
        return value
    if tp is Path:
        return Path(str(value))
    return value


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(where or cls.__name__, str(exc)) from None


def to_dict(cfg: Any) -> Any:
    """A plain YAML-able structure (dicts, lists, scalars) of a config dataclass."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple, set, frozenset)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: typing.Iterable[str] = (),
                *, base: T | None = None) -> T:
    """Build ``cls`` from defaults (or ``base``), then the YAML file at ``path``, then ``key=value`` overrides."""
    tree: dict[str, Any] = to_dict(base if base is not None else cls())
    where = ""
    if path is not None:
        path = Path(path)
        where = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(path, "config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, f"cannot read ({exc})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(path, "expected a YAML mapping at the top level")
        _build(cls, loaded, where)  # validates keys with the file named
        _merge(tree, loaded)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "override must look like key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        before = copy.deepcopy(tree)
        _set(tree, key.strip(), value)
        try:
            _build(cls, tree, "")
        except ConfigError as exc:  # name the override that broke it, not an empty location
            if _build_ok(cls, before):
                raise ConfigError(f"--set {item}", exc.problem) from None
            raise
    return _build(cls, tree, "")


def _build_ok(cls: type, tree: dict[str, Any]) -> bool:
    try:
        _build(cls, tree, "")
    except ConfigError:
        return False
    return True


def from_dict(cls: type[T], tree: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from a plain mapping (e.g. the resolved config stored in a checkpoint), checked as a file is."""
    return _build(cls, _merged_defaults(cls, tree), where)


def _merged_defaults(cls: type[T], tree: dict[str, Any]) -> dict[str, Any]:
    full: dict[str, Any] = to_dict(cls())
    _merge(full, tree)
    return full


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def save_config(cfg: Any, path: str | os.PathLike, *, sparse: bool = False) -> None:
    """Write the config as YAML, atomically: fully resolved (run folders), or with ``sparse`` only
    what differs from the class defaults (shipped configs)."""
    tree = sparse_dict(cfg) if sparse else to_dict(cfg)
    write_text_atomic(path, yaml.safe_dump(tree, sort_keys=False))


def sparse_dict(cfg: Any) -> dict[str, Any]:
    """The parts of ``cfg`` that differ from a default-built instance of its class (nested)."""

    def diff(new: Any, old: Any) -> Any:
        if isinstance(new, dict) and isinstance(old, dict):
            out = {k: diff(v, old.get(k, _MISSING)) for k, v in new.items() if k not in old or v != old[k]}
            return out
        return new

    return diff(to_dict(cfg), to_dict(type(cfg)()))


_MISSING = object()
