"""Learner checkpoints: networks, optimizer and run counters, loaded without pickle.

`torch.save` writes tensors and plain containers; `torch.load(weights_only=True)` reads
them back without executing code. `latest.json` names the newest file, so a crash while
writing leaves the previous checkpoint usable. The two newest are kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from textdqn.errors import CheckpointError

_KEEP = 2


def save_checkpoint(directory: Path, learner_state: dict, counters: dict[str, Any]) -> Path:
    """Write `learner_state` and `counters` (env_steps, updates, wall_s, ...) to directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"learner-{int(learner_state['updates']):09d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"learner": learner_state, "counters": dict(counters)}, tmp)
    os.replace(tmp, path)
    latest = directory / "latest.json"
    latest.with_suffix(".tmp").write_text(json.dumps({"file": path.name, **counters}))
    os.replace(latest.with_suffix(".tmp"), latest)
    for old in sorted(directory.glob("learner-*.pt"))[:-_KEEP]:
        old.unlink()
    return path


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
