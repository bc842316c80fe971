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
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from strokesynth._fs import write_text_atomic
from strokesynth.errors import ConfigError

T = TypeVar("T")

#: Most nodes a YAML document may expand to once its aliases are followed (a config has hundreds;
#: nested aliases of a few hundred bytes can otherwise expand to billions).
MAX_YAML_NODES = 100_000


def _expanded_nodes(node: yaml.Node, sizes: dict[int, int], path: set[int]) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in path:
        raise ValueError("an alias refers to the node that contains it (a recursive structure)")
    path.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_nodes(child, sizes, path) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_nodes(k, sizes, path) + _expanded_nodes(v, sizes, path) for k, v in node.value)
    path.discard(key)
    sizes[key] = total
    if total > MAX_YAML_NODES:
        raise ValueError(f"expands to more than {MAX_YAML_NODES:,} values through its aliases")
    return total


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` with alias expansion bounded: the node graph is composed first (aliases
    are shared nodes, so this is cheap), its expanded size counted, and only a document of at
    most :data:`MAX_YAML_NODES` values is constructed.

    Raises:
        yaml.YAMLError: not valid YAML, or a document that expands too far / refers to itself.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            _expanded_nodes(node, {}, set())
        except ValueError as exc:
            raise yaml.YAMLError(str(exc)) from None
        except RecursionError:
            raise yaml.YAMLError("nested too deeply") from None
        return loader.construct_document(node)
    finally:
        loader.dispose()


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
        if not math.isfinite(value):
            raise ConfigError(where, f"expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected text, got {value!r}")
        return value
    if tp is Path:
        return Path(str(value))
    return value


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The declared range of a numeric setting (every number in it, for a list or tuple).

    Attributes:
        lo, hi: limits (None = unbounded); ``lo_open``/``hi_open`` exclude them.
        min_len: fewest items of a list setting.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    min_len: int = 0

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"

    def check(self, value: Any, where: str) -> None:
        """Raise :class:`ConfigError` at ``where`` if ``value`` (or an item of it) is out of range."""
        if isinstance(value, (list, tuple)):
            if len(value) < self.min_len:
                raise ConfigError(where, f"needs at least {self.min_len} value(s), got {len(value)}")
            for i, item in enumerate(value):
                self.check(item, f"{where}[{i}]")
            return
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if low or high:
            raise ConfigError(where, f"must be {self.describe()}, got {value!r}")


def bounded(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, lo: float | None = None,
            hi: float | None = None, lo_open: bool = False, hi_open: bool = False, min_len: int = 0) -> Any:
    """A dataclass field with a declared range, checked whenever a config is resolved
    (``count: int = bounded(1, lo=1)``; a list: ``bounded(factory=lambda: [8], lo=1, min_len=1)``)."""
    meta = {"bounds": Bounds(lo, hi, lo_open, hi_open, min_len)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        at = f"{where}.{name}" if where else name
        kwargs[name] = _convert(hints[name], value, at)
        bounds = fields[name].metadata.get("bounds")
        if bounds is not None:
            bounds.check(kwargs[name], at)
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
            loaded = safe_yaml(path.read_text(encoding="utf-8"))
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
            value = safe_yaml(raw) if raw.strip() else ""
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


def validated(cfg: T, where: str = "") -> T:
    """``cfg`` rebuilt from its own values, so every type and declared range is checked again
    (for a config a caller had to change field by field)."""
    return _build(type(cfg), to_dict(cfg), where)


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


def load_shipped(cls: type[T], shipped: dict[str, typing.Callable[[], T]], folder: str | os.PathLike,
                 path: str | os.PathLike | None, overrides: typing.Iterable[str] = ()) -> T:
    """A recipe's config: a shipped name (a key of ``shipped``, e.g. ``tiny``, ``paper``) or any YAML path,
    with ``key=value`` overrides.

    A shipped name reads ``folder/<name>.yaml`` of the repository, or builds the same config in code
    (``shipped[name]()``) where the package is installed without the repository's ``configs/``.
    A file of that name in the working folder is read as a file.
    """
    if path is not None and str(path) in shipped and not Path(path).exists():
        yaml_path = Path(folder) / f"{path}.yaml"
        if not yaml_path.exists():
            return load_config(cls, None, overrides, base=shipped[str(path)]())
        path = yaml_path
    return load_config(cls, path, overrides)


_FROZEN = "_strokesynth_frozen_"


class FrozenConfigError(AttributeError):
    """A resolved, validated config was changed in place (a bug in the code that changed it)."""


def _guarded_setattr(self: Any, name: str, value: Any) -> None:
    if self.__dict__.get(_FROZEN):
        raise FrozenConfigError(f"{type(self).__name__}.{name}: this config was resolved and validated and does not "
                                "change; build a new one (dataclasses.replace, load_config with overrides)")
    object.__setattr__(self, name, value)


def _guarded_delattr(self: Any, name: str) -> None:
    if self.__dict__.get(_FROZEN):
        raise FrozenConfigError(f"{type(self).__name__}.{name}: a frozen config keeps every field")
    object.__delattr__(self, name)


def _thawed_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """A deep copy is a new config: changeable until it is frozen in its turn."""
    new = type(self).__new__(type(self))
    memo[id(self)] = new
    for key, value in self.__dict__.items():
        if key != _FROZEN:
            object.__setattr__(new, key, copy.deepcopy(value, memo))
    return new


def freeze(cfg: T) -> T:
    """Make the resolved config ``cfg`` read-only, in place, with every config nested in it; returns it.

    Setting or deleting a field afterwards raises :class:`FrozenConfigError`. A new config is made
    with :func:`dataclasses.replace` (or ``copy.deepcopy``), which is changeable until frozen in
    its turn; the frozen one stays what was validated and saved. (Lists in a config are not frozen:
    code that needs another list builds a new config.)"""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        cls = type(cfg)
        if cls.__setattr__ is not _guarded_setattr:
            cls.__setattr__ = _guarded_setattr  # type: ignore[method-assign]
            cls.__delattr__ = _guarded_delattr  # type: ignore[method-assign]
            cls.__deepcopy__ = _thawed_deepcopy  # type: ignore[attr-defined]
        for f in dataclasses.fields(cfg):
            freeze(getattr(cfg, f.name))
        object.__setattr__(cfg, _FROZEN, True)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            freeze(item)
    elif isinstance(cfg, dict):
        for item in cfg.values():
            freeze(item)
    return cfg


def is_frozen(cfg: Any) -> bool:
    """Whether ``cfg`` was frozen by :func:`freeze`."""
    return bool(getattr(cfg, "__dict__", {}).get(_FROZEN))


def replaced(cfg: T, changes: dict[str, Any] | None = None, /, **fields: Any) -> T:
    """A new config: ``cfg`` with ``changes`` (``"dotted.key": value``) and top-level ``fields`` set.

    Every level on a changed path is rebuilt with :func:`dataclasses.replace` (its ``__post_init__``
    checks run again); ``cfg`` is not changed, and the parts not named are shared with it (a frozen
    part stays frozen, so changing it in place still raises). This is how a recipe derives a fold's,
    a row's or a cell's config from its resolved one::

        fcn = replaced(cfg.segmentation, {"data.dataset": cfg.dataset, "run.seed": cfg.seed}, name="FCN")
    """
    top = dict(fields)
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (changes or {}).items():
        head, _, rest = dotted.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = replaced(top.get(head, getattr(cfg, head)), sub)
    return dataclasses.replace(cfg, **top)  # type: ignore[type-var]
