"""Replay checkpoints on disk: one .npz of arrays and one JSON of metadata, no pickle.

The JSON records the npz's SHA-256, so a truncated or altered file is reported as
corrupted instead of being half-loaded. Files are written to temporary names and renamed,
so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from textdqn.errors import CheckpointError

FORMAT = "textdqn.replay_shard/1"
META_FILE = "replay_shard.json"
ARRAYS_FILE = "replay_shard.npz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write(directory: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write `arrays` and `meta` into `directory` atomically (file by file)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tmp_npz = path / (ARRAYS_FILE + ".tmp")
    with tmp_npz.open("wb") as f:
        np.savez(f, **arrays)
    meta = {**meta, "format": FORMAT, "arrays_sha256": _sha256(tmp_npz)}
    tmp_json = path / (META_FILE + ".tmp")
    tmp_json.write_text(json.dumps(meta, indent=1))
    os.replace(tmp_npz, path / ARRAYS_FILE)
    os.replace(tmp_json, path / META_FILE)


def read(directory: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a checkpoint; CheckpointError says what is wrong with it."""
    path = Path(directory)
    meta_path, npz_path = path / META_FILE, path / ARRAYS_FILE
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise CheckpointError(
                f"replay checkpoint file {p} is missing; pass the directory a shard's "
                "checkpoint() wrote (it holds replay_shard.json and replay_shard.npz)"
            )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"replay checkpoint {meta_path} is corrupted (not JSON: {e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{meta_path} is not a replay shard checkpoint ({FORMAT}); found {found!r}")
    if _sha256(npz_path) != meta.get("arrays_sha256"):
        raise CheckpointError(
            f"replay checkpoint {npz_path} is corrupted: its SHA-256 does not match the one "
            f"recorded in {meta_path}; restore an earlier checkpoint"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"replay checkpoint {npz_path} cannot be read: {e}") from e
    return meta, arrays


def expect_equal(meta: dict[str, Any], key: str, value: Any, setting: str) -> None:
    """CheckpointError unless meta[key] == value, naming the config setting to change."""
    if meta.get(key) != value:
        raise CheckpointError(
            f"the checkpoint was written with {key}={meta.get(key)!r}, this shard has "
            f"{key}={value!r}; restore it into a shard built with the same {setting}"
        )


def expect_rows(arrays: dict[str, np.ndarray], size: int) -> None:
    """CheckpointError unless every array holds `size` rows."""
    for name, a in arrays.items():
        if a.ndim == 0 or len(a) != size:
            raise CheckpointError(
                f"replay checkpoint array {name!r} has {a.shape[:1]} rows, expected {size}; "
                "the checkpoint is inconsistent, restore an earlier one"
            )


def expect_schema(schema: dict[str, tuple[str, tuple[int, ...]]], fields: dict[str, np.ndarray]) -> None:
    """CheckpointError unless `fields` match the recorded schema exactly."""
    if set(schema) != set(fields):
        raise CheckpointError(f"checkpoint fields {sorted(fields)} differ from its schema {sorted(schema)}")
    for name, (dtype, shape) in schema.items():
        a = fields[name]
        if a.dtype.str != dtype or tuple(a.shape[1:]) != tuple(shape):
            raise CheckpointError(
                f"checkpoint field {name!r} is {a.dtype} {a.shape[1:]}, its schema says "
                f"{np.dtype(dtype)} {tuple(shape)}; the checkpoint is inconsistent"
            )
