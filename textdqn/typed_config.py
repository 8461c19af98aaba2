"""Typed, frozen configs from YAML: the generic machinery behind textdqn/config.py.

Call order: ``load(cls, path, overrides)`` = read YAML -> ``apply_overrides`` ->
``from_dict(cls, ...)`` -> ``validate``. Every error is a ``ConfigError`` that names the
dotted key, the bad value and what would be accepted.

It is generic over nested dataclasses: a section may declare ``_RULES`` (field ->
(predicate, expected text)) for range checks and a ``_check(path) -> list[str]`` method for
checks across fields.
"""

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from textdqn.errors import ConfigError

Rule = tuple[Callable[[Any], bool], str]
"""A range check: (predicate on the field's value, what an accepted value looks like)."""


def in_range(lo: float, hi: float, kind: str = "a float") -> Rule:
    return (lambda v: lo <= v <= hi), f"{kind} in [{lo}, {hi}]"


def at_least(lo: float, kind: str = "an int") -> Rule:
    return (lambda v: v >= lo), f"{kind} >= {lo}"


def above(lo: float, kind: str = "a float") -> Rule:
    return (lambda v: v > lo), f"{kind} > {lo}"


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- from_dict ---


def from_dict(cls: type, data: Mapping[str, Any] | None, path: str = "") -> Any:
    """Build the dataclass `cls` from a plain mapping, converting and checking every value
    against the type hints. `path` is the dotted prefix used in error messages."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise _wrong_type(path or "config", data, f"a mapping of {cls.__name__} keys")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _reject_unknown(data, list(fields), path)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        key = join(path, name)
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key} is required: add it to the config file or pass --set {key}=<value>")
    return cls(**kwargs)


def _reject_unknown(data: Mapping[Any, Any], accepted: list[str], path: str) -> None:
    unknown = [str(k) for k in data if k not in accepted]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, accepted, n=1)
    suggestion = f" Did you mean '{join(path, close[0])}'?" if close else ""
    where = f"under '{path}'" if path else "at the top level"
    raise ConfigError(
        f"unknown config key '{join(path, key)}'.{suggestion} Accepted keys {where}: {', '.join(accepted)}."
    )


def _wrong_type(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(
        f"{key} = {value!r} has the wrong type: expected {expected}, got {type(value).__name__}"
    )


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the type hint `hint` and return it converted."""
    if hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if value is not None and not isinstance(value, Mapping):
            raise _wrong_type(key, value, f"a mapping of {hint.__name__} keys")
        return from_dict(hint, value, key)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, args, key)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(f"{key} = {value!r} is not accepted: expected one of {', '.join(map(repr, args))}")
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list | tuple):
            raise _wrong_type(key, value, f"a list of {_type_name(args[0])}")
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:  # e.g. env kwargs: keys must be str, values are taken as they are
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _wrong_type(key, value, "a mapping with str keys")
        return {k: _convert(v, args[1], join(key, k)) for k, v in value.items()}
    return _convert_scalar(value, hint, key)


def _convert_union(value: Any, args: tuple[Any, ...], key: str) -> Any:
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, key)
        except ConfigError:
            continue
    raise _wrong_type(key, value, " or ".join(_type_name(a) for a in args))


def _convert_scalar(value: Any, hint: Any, key: str) -> Any:
    """int (a whole float is accepted), float (an int is accepted), str, or a real bool."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if hint is float and number:
        return float(value)
    if hint is int and number:
        if isinstance(value, float) and not value.is_integer():
            raise _wrong_type(key, value, "int (a whole number)")
        return int(value)
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint not in (int, float, str, bool):
        raise ConfigError(f"{key}: the config schema uses the unsupported type {hint!r}")
    raise _wrong_type(key, value, _type_name(hint))


# --- overrides ---
# YAML 1.1 reads 1e5 or 1.0e5 (no dot, or no exponent sign) as strings; we mean numbers.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with each ``a.b.c=value`` override set; the value is parsed as
    YAML. Unknown keys are left for `from_dict` to report."""
    result = copy.deepcopy(dict(data))
    for item in overrides:
        key, value = _parse_override(item)
        _set_dotted(result, key, value)
    return result


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = str(item).partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not all(part.strip() for part in key.split(".")):
        raise ConfigError(
            f"malformed override {item!r}: expected the form "
            "--set section.key=value (e.g. --set replay.alpha=0.5)"
        )
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {item!r}: the value {raw!r} is not valid YAML "
            f"({getattr(exc, 'problem', exc)}); quote it if it is a string"
        ) from None
    if isinstance(value, str) and _NUMBER.fullmatch(raw):
        value = float(raw)  # an unquoted number that YAML 1.1 left as a string
    return key, value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = [p.strip() for p in key.split(".")]
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            section = ".".join(parts[: i + 1])
            raise ConfigError(f"cannot set {key}: {section} = {child!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


# --- load, dump ---


def load(cls: type, path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Read the YAML file at `path`, apply ``--set`` style `overrides`, build `cls` and validate."""
    data = _read_yaml(Path(path))
    return validate(from_dict(cls, apply_overrides(data, overrides)))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first at line {seen[key].line + 1}): keep one",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: dotted keys of nested mappings (for comparing configs)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist: check the path, "
            "or start from one of the examples in configs/"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {path} ({exc}): pass a readable UTF-8 YAML file"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(
            f"config file {path} is not valid YAML{where}: {problem}; fix the syntax there"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of sections "
            f"(run:, replay:, ...), not a {type(data).__name__}"
        )
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable dict of the dataclass instance `cfg` (tuples as lists)."""
    return _plain(cfg)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def dump_config(cfg: Any, path: str | Path) -> Path:
    """Write `cfg` as YAML to `path` (parents created); `load_config` reads it back equal."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path


# --- validate ---


def validate(cfg: Any) -> Any:
    """Check every section's ranges and cross-field rules; return `cfg` unchanged, or raise
    one ConfigError listing every problem, one a line, with what would be accepted."""
    problems = _problems(cfg, "")
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def _problems(section: Any, path: str) -> list[str]:
    found = []
    for name, (ok, expected) in getattr(section, "_RULES", {}).items():
        value = getattr(section, name)
        if not ok(value):
            found.append(f"{join(path, name)} = {value!r} is out of range: expected {expected}")
    check = getattr(section, "_check", None)
    if check is not None:
        found += check(path)
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += _problems(value, join(path, f.name))
    return found
