"""Typed, frozen run configuration: nested dataclasses loaded from YAML, overridden with
``--set section.key=value`` and validated before anything starts.

Call order: ``load_config(path, overrides)`` = read YAML -> ``apply_overrides`` ->
``from_dict(Config, ...)`` -> ``validate``. Every error is a ``ConfigError`` that names the
dotted key, the bad value and what would be accepted.

The machinery is generic over nested dataclasses: a new section is a new dataclass and a
field of ``Config``. A section may declare ``_RULES`` (field -> (predicate, expected text))
for range checks and a ``_check(path) -> list[str]`` method for checks across fields.
"""

import copy
import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from textdqn.errors import ConfigError

__all__ = [
    "Config",
    "RateLimiterConfig",
    "ReplayConfig",
    "RunConfig",
    "apply_overrides",
    "dump_config",
    "from_dict",
    "load_config",
    "to_dict",
    "validate",
]

Rule = tuple[Callable[[Any], bool], str]
"""A range check: (predicate on the field's value, what an accepted value looks like)."""


def _in_range(lo: float, hi: float, kind: str = "a float") -> Rule:
    return (lambda v: lo <= v <= hi), f"{kind} in [{lo}, {hi}]"


def _at_least(lo: float, kind: str = "an int") -> Rule:
    return (lambda v: v >= lo), f"{kind} >= {lo}"


def _above(lo: float, kind: str = "a float") -> Rule:
    return (lambda v: v > lo), f"{kind} > {lo}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- sections ---


@dataclasses.dataclass(frozen=True)
class RateLimiterConfig:
    """Samples-per-insert rate limiter of each replay shard (Reverb's vocabulary)."""

    min_size_to_sample: int = 1000
    """items a shard must hold before it serves samples"""
    samples_per_insert: float = 0.0
    """target sampled transitions per inserted transition; 0 turns the limiter's ratio off"""
    error_buffer: float = 100_000.0
    """how far, in sampled transitions, the ratio may drift before one side blocks"""
    timeout_s: float = 60.0
    """how long a blocked insert or sample waits before it fails, in seconds"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "min_size_to_sample": _at_least(1),
        "samples_per_insert": _at_least(0, "a float"),
        "error_buffer": _at_least(0, "a float"),
        "timeout_s": _above(0, "a float (seconds)"),
    }


_STORAGES = ("memory",)


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Sharded prioritized replay service."""

    capacity: int = 1_000_000
    """total items across all shards"""
    num_shards: int = 2
    """number of ReplayShard actors"""
    alpha: float = 0.6
    """priority exponent: items are sampled in proportion to p^alpha"""
    beta: float = 0.4
    """importance-weight exponent at the start of training"""
    beta_final: float = 1.0
    """importance-weight exponent reached after beta_anneal_updates"""
    beta_anneal_updates: int = 100_000
    """learner updates over which beta moves linearly to beta_final"""
    priority_eps: float = 1e-6
    """added to |delta| so that no item has priority 0"""
    storage: str = "memory"
    """storage backend of the shards; only "memory" for now"""
    insert_in_flight: int = 4
    """max unacknowledged insert requests per writer"""
    sample_in_flight: int = 4
    """sample requests the learner keeps in flight"""
    shard_num_cpus: float = 0.25
    """logical Ray CPUs reserved per shard actor"""
    rate_limiter: RateLimiterConfig = dataclasses.field(default_factory=RateLimiterConfig)
    """samples-per-insert rate limiter of each shard"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "capacity": _at_least(1),
        "num_shards": _at_least(1),
        "alpha": _in_range(0, 1),
        "beta": _in_range(0, 1),
        "beta_final": _in_range(0, 1),
        "beta_anneal_updates": _at_least(0),
        "priority_eps": _above(0),
        "insert_in_flight": _at_least(1),
        "sample_in_flight": _at_least(1),
        "shard_num_cpus": _above(0),
    }

    def _check(self, path: str) -> list[str]:
        found = []
        storage = _join(path, "storage")
        if self.storage == "redis":
            found.append(
                f"{storage} = 'redis': the Redis backend is not available yet; "
                f"use 'memory' (--set {storage}=memory)"
            )
        elif self.storage not in _STORAGES:
            found.append(
                f"{storage} = {self.storage!r} is not a storage backend: "
                f"expected one of {', '.join(map(repr, _STORAGES))}"
            )
        capacity, shards = _join(path, "capacity"), _join(path, "num_shards")
        if 1 <= self.capacity < self.num_shards:
            found.append(
                f"{capacity} = {self.capacity} is smaller than {shards} = "
                f"{self.num_shards}: every shard needs at least one slot; "
                f"raise {capacity} or lower {shards}"
            )
        return found


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Identity of a run: its name, seed and output directory."""

    name: str = "textdqn"
    """name of the run, used in the run directory and in logs"""
    seed: int = 0
    """base random seed; each component derives its own from it"""
    run_dir: str = ""
    """where checkpoints and metrics go; empty means runs/<name>-<timestamp>"""

    _RULES: ClassVar[dict[str, Rule]] = {"seed": _at_least(0)}


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration of a textdqn run, one field per section."""

    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    """name, seed and output directory"""
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)
    """sharded prioritized replay service"""


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
        key = _join(path, name)
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
    suggestion = f" Did you mean '{_join(path, close[0])}'?" if close else ""
    where = f"under '{path}'" if path else "at the top level"
    raise ConfigError(
        f"unknown config key '{_join(path, key)}'.{suggestion} Accepted keys {where}: {', '.join(accepted)}."
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
        return {k: _convert(v, args[1], _join(key, k)) for k, v in value.items()}
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


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read the YAML file at `path`, apply ``--set`` style `overrides`, build and validate."""
    data = _read_yaml(Path(path))
    return validate(from_dict(Config, apply_overrides(data, overrides)))


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
        data = yaml.safe_load(text)
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


def validate(cfg: Config) -> Config:
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
            found.append(f"{_join(path, name)} = {value!r} is out of range: expected {expected}")
    check = getattr(section, "_check", None)
    if check is not None:
        found += check(path)
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found += _problems(value, _join(path, f.name))
    return found
