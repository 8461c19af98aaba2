"""Learner checkpoints: networks, optimizer and run counters, loaded without pickle.

`torch.save` writes tensors and plain containers; `torch.load(weights_only=True)` reads
them back without executing code. `latest.json` names the newest file, and the replay
snapshot written with it (a directory, for memory storage), so a crash while writing
either leaves the previous checkpoint usable. The two newest of each are kept.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textdqn.errors import CheckpointError

_KEEP = 2
log = logging.getLogger(__name__)


def replay_snapshot_dir(directory: Path, learner_state: dict) -> Path:
    """Where the replay snapshot that goes with `learner_state` lives. It is written before
    the learner's file, so a learner file whose snapshot directory exists has it whole."""
    return Path(directory) / f"replay-{int(learner_state['updates']):09d}"


def save_checkpoint(
    directory: Path, learner_state: dict, counters: dict[str, Any], replay: Path | None = None
) -> Path:
    """Write `learner_state` and `counters` (env_steps, updates, wall_s, ...) to directory;
    `replay` is the replay snapshot directory already written for this checkpoint."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"learner-{int(learner_state['updates']):09d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"learner": learner_state, "counters": dict(counters)}, tmp)
    os.replace(tmp, path)
    latest = directory / "latest.json"
    pointer = {"file": path.name, "replay": replay.name if replay else None, **counters}
    latest.with_suffix(".tmp").write_text(json.dumps(pointer))
    os.replace(latest.with_suffix(".tmp"), latest)
    for old in sorted(directory.glob("learner-*.pt"))[:-_KEEP]:
        old.unlink()
    for old in sorted(p for p in directory.glob("replay-*") if p.is_dir())[:-_KEEP]:
        shutil.rmtree(old)
    return path


def load_checkpoint(directory: Path, map_location: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """(learner_state, counters) of the newest readable checkpoint in `directory`.

    The file latest.json names comes first; if it is missing, empty, truncated or corrupted,
    the newest other learner-*.pt that reads is used instead, with a warning naming both.
    """
    directory = Path(directory)
    latest = directory / "latest.json"
    pointer: dict[str, Any] = {}
    if latest.is_file():
        try:
            pointer = json.loads(latest.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            log.warning("checkpoint pointer %s is unreadable (%s); using the newest readable file", latest, e)
    files = sorted(directory.glob("learner-*.pt"), reverse=True)
    if "file" in pointer:
        named = directory / pointer["file"]
        files = [named, *[f for f in files if f != named]]
    if not files:
        raise CheckpointError(
            f"no checkpoint in {directory}; a run writes one every run.checkpoint_every_updates "
            "updates and at its end, so this run has none to continue from: start it again without --resume"
        )
    problems = []
    for path in files:
        try:
            data = _read(path, map_location, ("learner", "counters"), "learner checkpoint")
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if path != files[0]:
            log.warning("checkpoint %s cannot be used (%s); continuing from %s", files[0], problems[0], path)
        return data["learner"], data["counters"]
    raise CheckpointError(f"no readable checkpoint in {directory}: " + "; ".join(problems))


def save_policy(path: Path, weights: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Write the greedy policy's `weights` (as published: what an actor loads) and `info`
    (e.g. the evaluation that measured them) to `path`. The learner trains on while an
    evaluation runs, so its checkpoint is a later network than the one the run's last
    evaluation (summary.json) measured: this file is that one."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    # torch.tensor copies: published arrays come read-only from the object store
    torch.save({"policy": {k: torch.tensor(v) for k, v in weights.items()}, "info": dict(info)}, tmp)
    os.replace(tmp, path)


def load_policy(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(weights, info) that `save_policy` wrote to `path`."""
    data = _read(path, "cpu", ("policy", "info"), "policy file (policy.pt)")
    return {k: v.numpy() for k, v in data["policy"].items()}, data["info"]


def _read(path: Path, map_location: str, keys: tuple[str, ...], what: str) -> dict:
    """One file of ours, a `what` holding `keys`, checked before torch reads it (an empty or
    cut file is not a zip)."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is empty or truncated")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from e
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise CheckpointError(f"{path} is not a textdqn {what}")
    return data
