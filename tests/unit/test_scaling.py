"""bench scaling's arithmetic without Ray: efficiency, the CSV round trip, the plot, the
tables, and the projection model against figures worked out by hand."""

import math

import pytest
from rich.console import Console
from typer.testing import CliRunner

from textdqn.bench import projection
from textdqn.bench.scaling_bench import (
    ScalingSettings,
    cell_overrides,
    plot_scaling,
    read_csv,
    with_efficiency,
    write_csv,
)
from textdqn.bench.tables import projection_table, scaling_table
from textdqn.cli import app
from textdqn.errors import TextDQNError


def _row(actors, shards, rate, learner=True, **extra):
    """A cell as measure_cell + run_scaling write it, with round figures."""
    row = {
        "config": "cartpole", "learner": learner, "actors": actors, "shards": shards, "host_cores": 2,
        "batch_size": 512, "samples_per_insert": 16.0 if learner else 0.0, "steps_per_call": 1000,
        "sync_every": 100, "publish_every": 20, "window_s": 10.0, "nodes": 1,
        "env_steps_per_s": rate, "inserts_per_s": rate, "samples_per_s": 16 * rate if learner else 0.0,
        "updates_per_s": 16 * rate / 512 if learner else None,
        "learner_utilization": 0.5 if learner else None,
        "policy_lag_mean": 0.4 if learner else None, "actor_calls_per_s": rate / 1000, "actor_restarts": 0,
        "cpu_actors": rate / 10_000, "cpu_per_actor_max": 1.0, "cpu_shards": rate / 100_000,
        "cpu_per_shard_max": 0.1, "cpu_learner": 0.9 if learner else None,
        "cpu_store": actors * (16 * rate / 512) / 20 * 1e-4 if learner else 1e-3,  # 0.1 ms an answer
        "cpu_driver": rate / 1000 * 1e-3, "cpu_ray_system": 0.05, "weight_bytes": 100_000, "item_bytes": 100,
    }  # fmt: skip
    return {**row, **extra}


def test_efficiency_is_relative_to_the_fewest_actors_of_the_same_shard_count():
    rows = with_efficiency(
        [_row(1, 1, 1000), _row(2, 1, 1800), _row(4, 1, 2000), _row(2, 2, 3000), _row(4, 2, 5400)]
    )
    eff = {(r["actors"], r["shards"]): r["efficiency"] for r in rows}
    assert eff[(1, 1)] == 1.0 and eff[(2, 1)] == pytest.approx(0.9) and eff[(4, 1)] == pytest.approx(0.5)
    assert eff[(2, 2)] == 1.0 and eff[(4, 2)] == pytest.approx(0.9)  # k0 = 2 for two shards


def test_cells_without_a_learner_turn_the_samples_per_insert_limiter_off():
    settings = ScalingSettings(config="configs/cartpole.yaml", with_learner=False, overrides=("run.seed=3",))
    assert cell_overrides(settings, 4, 2) == [
        "run.seed=3", "actors.num_actors=4", "replay.num_shards=2", "replay.rate_limiter.samples_per_insert=0"
    ]  # fmt: skip
    assert "replay.rate_limiter.samples_per_insert=0" not in cell_overrides(ScalingSettings(config="x"), 1, 1)


def test_csv_round_trip_keeps_types_and_the_plot_and_table_render(tmp_path):
    rows = with_efficiency([_row(1, 1, 1000.5), _row(2, 1, 1900.25), _row(1, 2, 1100.0), _row(2, 2, 2000.0)])
    back = read_csv(write_csv(rows, tmp_path / "scaling.csv"))
    assert back == rows
    png = plot_scaling(back, tmp_path / "scaling.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = Console(width=200, record=True)
    console.print(scaling_table(back))
    text = console.export_text()
    assert "1.9K" in text and "0.95" in text and "50%" in text and "efficiency" in text


def test_per_unit_fits_a_slope_so_fixed_costs_drop_out():
    units = [100.0, 200.0, 400.0, 800.0]
    cpu = [0.05 + 1e-4 * u for u in units]  # 0.05 cores whatever the load, 0.1 ms per unit
    assert projection.per_unit(units, cpu) == pytest.approx(1e-4)
    assert projection.per_unit([100.0, 110.0], [0.01, 0.011]) == pytest.approx(1e-4)  # too close: ratio
    assert math.isnan(projection.per_unit([0.0], [0.1]))


def test_projection_matches_the_model_worked_by_hand():
    rows = [_row(1, 1, 10_000), _row(2, 1, 20_000), _row(4, 1, 40_000), _row(2, 2, 20_000)]
    costs = projection.unit_costs(rows)
    assert costs.actor_steps_per_cpu_s == pytest.approx(10_000)  # env steps per actor CPU-second
    assert costs.shard_cpu_s_per_insert == pytest.approx(1e-5)
    assert costs.driver_cpu_s_per_call == pytest.approx(1e-3)
    assert costs.store_cpu_s_per_answer == pytest.approx(1e-4)  # per answer to one actor
    # learner: 16·rate/512 updates/s at 50% utilization -> compute-bound 2·(16·40000/512) = 2500/s
    assert costs.learner_updates_per_s == pytest.approx(2500)
    shape = projection.NodeShape(cores=16, gbps=10.0)
    b = projection.bounds(costs, shape, nodes=2, shards=3)
    assert b["actors"] == pytest.approx((32 - 3) * 10_000)
    assert b["shards"] == pytest.approx(3 / 1e-5)
    assert b["learner"] == pytest.approx(2500 * 512 / 16)  # 80,000 env steps/s
    assert b["driver"] == pytest.approx(1000 / 1e-3)
    # one answer per actor per version; 16/(512·20) versions per env step
    assert b["parameter store"] == pytest.approx(1 / (29 * 16 / (512 * 20) * 1e-4))
    per_step = 16 * 100 + 2 * 100_000 * 16 / (512 * 20)  # samples in + each node's weight copies
    assert b["network"] == pytest.approx(10e9 / 8 / per_step)
    rows_n = projection.project(costs, shape, 8)
    assert [r["nodes"] for r in rows_n] == [1, 2, 4, 8]
    assert all(r["binds"] == "learner" and r["projected"] == pytest.approx(80_000) for r in rows_n[:3])
    assert rows_n[0]["num_shards"] == 1  # one shard (100K inserts/s) already outruns the learner
    # 127 actors each answered 1/640 times per env step: the store binds before the learner
    assert rows_n[3]["binds"] == "parameter store" and rows_n[3]["num_actors"] == 127
    assert rows_n[3]["projected"] == pytest.approx(640 / (127 * 1e-4))
    assert "parameter store binds first" in projection.saturation(rows_n)
    faster = projection.unit_costs(rows, learner_updates_per_s=1e6)  # e.g. a GPU's measured rate
    fast = projection.project(faster, shape, 8)
    assert fast[0]["binds"] == "actors" and fast[-1]["binds"] == "parameter store"
    console = Console(width=220, record=True)
    console.print(projection_table(rows_n, 16, 10.0, projection.saturation(rows_n)))
    assert "80.0K" in console.export_text()
    with pytest.raises(TextDQNError, match="needs cells measured with the learner"):
        projection.unit_costs([_row(1, 1, 1000, learner=False)], learner_updates_per_s=1e6)


def test_without_a_learner_the_actors_bind_until_another_component_does():
    rows = [_row(1, 1, 1000, learner=False), _row(2, 1, 2000, learner=False), _row(4, 1, 4000, learner=False)]
    costs = projection.unit_costs(rows)
    assert costs.learner_updates_per_s is None
    small = projection.project(costs, projection.NodeShape(cores=4), 1)
    assert small[0]["binds"] == "actors" and small[0]["learner"] == math.inf
    assert "still actor-bound" in projection.saturation(small)


def test_bad_counts_are_a_clear_error():
    result = CliRunner().invoke(app, ["bench", "scaling", "configs/cartpole.yaml", "--actors", "1,two"])
    assert result.exit_code == 2
    assert "--actors takes positive whole numbers" in result.output
