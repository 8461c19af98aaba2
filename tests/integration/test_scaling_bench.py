"""`textdqn bench scaling` runs the real system per cell and writes what it measured."""

import pytest
from typer.testing import CliRunner

from textdqn.bench.scaling_bench import read_csv
from textdqn.cli import app

pytestmark = pytest.mark.integration

_SMALL = ["--seconds", "3", "--warmup", "1", "--set", "replay.rate_limiter.min_size_to_sample=200"]


def test_scaling_with_a_learner_writes_csv_png_table_and_projection(tmp_path):
    # Four shards: mass-proportional sampling once starved one shard's rate limiter while
    # the sampler's requests waited on the others, and every cell stalled.
    args = ["bench", "scaling", "configs/cartpole.yaml", "--actors", "1,2", "--shards", "4"]
    result = CliRunner().invoke(app, [*args, *_SMALL, "--out", str(tmp_path), "--project", "4"])
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "scaling.csv")
    assert [(r["actors"], r["shards"]) for r in rows] == [(1, 4), (2, 4)]
    for r in rows:
        assert r["env_steps_per_s"] > 0 and r["updates_per_s"] > 0 and r["samples_per_s"] > 0
        assert 0.5 < r["inserts_per_s"] / r["env_steps_per_s"] < 2  # one n-step transition per step
        assert 0 < r["learner_utilization"] <= 1 and r["policy_lag_mean"] is not None
        assert r["cpu_actors"] > 0 and r["cpu_shards"] > 0 and r["cpu_learner"] > 0 and r["cpu_driver"] > 0
        assert r["weight_bytes"] > 0 and r["item_bytes"] > 0
    assert rows[0]["efficiency"] == 1.0 and rows[1]["efficiency"] > 0
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    assert "efficiency" in result.output and "binds" in result.output and "projected" in result.output


def test_scaling_without_a_learner_measures_actors_and_shards_alone(tmp_path):
    args = ["bench", "scaling", "configs/cartpole.yaml", "--actors", "1", "--shards", "2", "--no-learner"]
    result = CliRunner().invoke(app, [*args, *_SMALL, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (row,) = read_csv(tmp_path / "scaling.csv")
    assert row["learner"] is False and row["shards"] == 2
    assert row["samples_per_s"] == 0 and row["updates_per_s"] is None and row["cpu_learner"] is None
    assert row["inserts_per_s"] > 0 and row["cpu_actors"] > 0
