"""Learner checkpoints: networks, optimizer and run counters, loaded without pickle.

`torch.save` writes tensors and plain containers; `torch.load(weights_only=True)` reads
them back without executing code. `latest.json` names the newest file, and the replay
snapshot written with it (a directory, for memory storage), so a crash while writing
either leaves the previous checkpoint usable. The two newest of each are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from textdqn.errors import CheckpointError

_KEEP = 2


def replay_snapshot_dir(directory: Path, learner_state: dict) -> Path:
    """Where the replay snapshot that goes with `learner_state` is written (before
    save_checkpoint names it in latest.json)."""
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


def latest_replay_snapshot(directory: Path) -> Path | None:
    """The replay snapshot directory named by latest.json, or None if it names none."""
    latest = Path(directory) / "latest.json"
    name = json.loads(latest.read_text()).get("replay") if latest.is_file() else None
    return Path(directory) / name if name else None


def load_checkpoint(directory: Path, map_location: str = "cpu") -> tuple[dict, dict[str, Any]]:
    """(learner_state, counters) of the newest checkpoint in `directory`."""
    latest = Path(directory) / "latest.json"
    if not latest.is_file():
        raise CheckpointError(
            f"no checkpoint in {directory} (latest.json is missing); a run writes one every "
            "run.checkpoint_every_updates updates and at its end"
        )
    try:
        name = json.loads(latest.read_text())["file"]
        data = torch.load(Path(directory) / name, map_location=map_location, weights_only=True)
    except (OSError, KeyError, json.JSONDecodeError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint in {directory} cannot be read ({e}); it may be corrupted") from e
    return data["learner"], data["counters"]
