"""`textdqn bench gpu`'s wiring, on CPU: every part runs (briefly) and lands in one JSON file.

The figures of a --quick run on CPU mean nothing; what is checked is that the command a GPU
machine will run gets through all three parts and writes what the README table needs."""

import json

import pytest
from typer.testing import CliRunner

from textdqn.cli import app

pytestmark = pytest.mark.integration


def test_bench_gpu_runs_every_part_and_writes_one_json(tmp_path):
    out = tmp_path / "gpu.json"
    result = CliRunner().invoke(app, ["bench", "gpu", "--device", "cpu", "--quick", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["machine"]["device"] == "cpu" and figures["quick"] is True
    for network in ("mlp", "transformer"):
        rows = figures["learner"][network]["rows"]
        assert [r["feed"] for r in rows] == ["in-process", "ray-sharded"]
        assert all(r["network"] == network and r["updates_per_s"] > 0 for r in rows)
    assert figures["lm_learner"]["rows"][0]["precision"] == "fp32"
    dialogue = figures["dialogue_text"]
    assert "actors.num_actors=2" in dialogue["overrides"] and "learner.device=cpu" in dialogue["overrides"]
    assert dialogue["env_steps"] > 0 and dialogue["updates"] > 0
    assert dialogue["total_s"] >= dialogue["train_s"] > 0
    assert "success_rate" in dialogue["final_eval"]
    assert "dialogue-text:" in result.output and "learner throughput" in result.output
