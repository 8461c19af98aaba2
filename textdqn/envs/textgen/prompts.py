"""Prompt records as data: a JSONL file, one record a line, read and checked here.

A record is `{"id": str, "concepts": [word, ...], "split": "train" | "test", "prompt": str}`
with an optional `"target"` (a reference text, for the similarity reward). `concepts` may be
empty or absent for tasks that do not use them (a classifier reward). The shipped files,
data/concepts.jsonl and data/concepts-large.jsonl (its 600 records and 2,400 more train ones), are
written by `python -m textdqn.envs.textgen.make_prompts`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from textdqn.errors import ConfigError
from textdqn.lm import resolve_path

SHIPPED_PROMPTS = Path(__file__).parent / "data" / "concepts.jsonl"
LARGE_PROMPTS = SHIPPED_PROMPTS.with_name("concepts-large.jsonl")
"""the same test records, 2,880 train records: env.kwargs.prompts is then
textdqn:envs/textgen/data/concepts-large.jsonl"""
SPLITS = ("train", "test")
_EXAMPLE = '{"id": "p1", "concepts": ["dog", "ball"], "split": "train", "prompt": "use: dog, ball"}'


@dataclasses.dataclass(frozen=True)
class PromptRecord:
    """One prompt: what the env shows the agent (`prompt`) and what the reward checks."""

    id: str
    prompt: str
    split: str
    concepts: tuple[str, ...] = ()
    target: str | None = None

    def to_json(self) -> dict:
        """The record as its JSONL line's object (fields in the file's order; no null target)."""
        out = {"id": self.id, "concepts": list(self.concepts), "split": self.split, "prompt": self.prompt}
        if self.target is not None:
            out["target"] = self.target
        return out


def load_prompts(path: str | Path = "") -> list[PromptRecord]:
    """Every record of the JSONL file at `path` ("" = the shipped concepts.jsonl; "textdqn:..."
    names a file inside the installed package), in file order.

    ConfigError for a missing file, a line that is not a JSON object, a missing or malformed
    field or a repeated id, naming the line and the field and showing a valid record.
    """
    path = Path(resolve_path(str(path))) if path else SHIPPED_PROMPTS
    if not path.is_file():
        raise ConfigError(
            f"env.kwargs.prompts = {str(path)!r} is not a file: pass the path of a JSONL file of prompt "
            f'records (one a line, e.g. {_EXAMPLE}), or "" for the shipped {SHIPPED_PROMPTS.name}'
        )
    records: list[PromptRecord] = []
    seen: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"env.kwargs.prompts = {str(path)!r} is not UTF-8 text (byte {e.start}: {e.reason}); "
            "save it as UTF-8 JSONL"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = _parse(line, f"{path}:{number}")
        if record.id in seen:
            raise ConfigError(f"{path}:{number}: id {record.id!r} is used twice; give each record its own id")
        seen.add(record.id)
        records.append(record)
    if not records:
        raise ConfigError(f"{path} holds no prompt records; write one JSON object a line, e.g. {_EXAMPLE}")
    return records


def _parse(line: str, where: str) -> PromptRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        message = f"{where}: not valid JSON ({e}); write one JSON object a line: {_EXAMPLE}"
        raise ConfigError(message) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a record is a JSON object, not {type(data).__name__}; e.g. {_EXAMPLE}")

    def bad(field: str, want: str) -> ConfigError:
        got = repr(data[field]) if field in data else "nothing"
        return ConfigError(f"{where}: field {field!r} must be {want}, got {got}; e.g. {_EXAMPLE}")

    for field in ("id", "prompt"):
        if not isinstance(data.get(field), str) or not data[field].strip():
            raise bad(field, "a non-empty string")
    if data.get("split") not in SPLITS:
        raise bad("split", f"one of {list(SPLITS)}")
    concepts = data.get("concepts", [])
    if not isinstance(concepts, list) or not all(
        isinstance(c, str) and c.strip() and len(c.split()) == 1 for c in concepts
    ):
        raise bad("concepts", "a list of single words")
    target = data.get("target")
    if target is not None and not isinstance(target, str):
        raise bad("target", "a string (a reference text) or absent")
    return PromptRecord(
        id=data["id"],
        prompt=data["prompt"],
        split=data["split"],
        concepts=tuple(c.strip() for c in concepts),
        target=target,
    )


def split_records(records: list[PromptRecord], split: str, path: str | Path = "") -> list[PromptRecord]:
    """The records of `split`; ConfigError when it has none."""
    if split not in SPLITS:
        raise ConfigError(f"env.kwargs.split = {split!r}: use one of {list(SPLITS)}")
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise ConfigError(
            f"the prompts file {str(path) or SHIPPED_PROMPTS.name} has no record with split {split!r}; "
            f'add some ("split": "{split}") or evaluate on the other split'
        )
    return chosen
