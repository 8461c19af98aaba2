"""textdqn.metrics: run directory, CSV + TensorBoard log, learning curve, summary, console view."""

import csv
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from textdqn.config import Config, RunConfig
from textdqn.errors import ConfigError
from textdqn.metrics import (
    METRIC_COLUMNS,
    ConsoleView,
    MetricsLogger,
    RunDirectory,
    learning_curve_figure,
    plain_line,
    plot_learning_curve,
    read_summary,
    write_summary,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_config(name: str = "unit") -> Config:
    return dataclasses.replace(Config(), run=RunConfig(name=name, seed=3))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def row_at(step: int, **values) -> dict:
    """A row whose values encode its step: wall_s = step / 100, updates = step / 10."""
    return {"wall_s": step / 100, "env_steps": step, "updates": step // 10, **values}


# --- RunDirectory ---


def test_create_makes_the_layout_and_the_config_round_trips(tmp_path):
    config = small_config()
    run = RunDirectory.create(config, run_dir=str(tmp_path / "r"))
    assert run.path == tmp_path / "r"
    assert run.config_path.is_file()
    assert run.tensorboard_dir.is_dir() and run.checkpoints_dir.is_dir()
    assert run.load_config() == config
    assert run.load_config(["run.seed=9"]).run.seed == 9
    assert RunDirectory.open(run.path).load_config() == config


def test_create_without_run_dir_names_it_after_the_run_under_root(tmp_path):
    first = RunDirectory.create(small_config("cartpole"), root=str(tmp_path))
    second = RunDirectory.create(small_config("cartpole"), root=str(tmp_path))
    assert first.path.parent == tmp_path and first.path.name.startswith("cartpole-2")
    assert second.path != first.path  # same second: a suffix, never a clash
    assert second.config_path.is_file()


def test_create_twice_on_one_directory_says_to_resume(tmp_path):
    RunDirectory.create(small_config(), run_dir=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match=r"--resume .*r.*--run-dir"):
        RunDirectory.create(small_config(), run_dir=str(tmp_path / "r"))


def test_open_refuses_a_missing_directory_and_one_without_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        RunDirectory.open(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no config\.yaml"):
        RunDirectory.open(tmp_path / "empty")


# --- MetricsLogger ---


@pytest.fixture
def run(tmp_path) -> RunDirectory:
    return RunDirectory.create(small_config(), run_dir=str(tmp_path / "run"))


def test_logger_writes_header_rows_empty_cells_and_tensorboard_events(run):
    logger = MetricsLogger(run, METRIC_COLUMNS)
    logger.log(row_at(100, eval_return_mean=None, loss=0.5))
    logger.log(row_at(200, eval_return_mean=12.5))
    rows = read_rows(run.metrics_csv)  # readable before close: flushed after every row
    logger.close()
    with run.metrics_csv.open(newline="") as f:
        assert next(csv.reader(f)) == list(METRIC_COLUMNS)
    assert [r["env_steps"] for r in rows] == ["100", "200"]
    assert [r["wall_s"] for r in rows] == ["1.0", "2.0"]
    assert rows[0]["eval_return_mean"] == "" and rows[1]["eval_return_mean"] == "12.5"
    assert rows[0]["loss"] == "0.5" and rows[1]["loss"] == ""  # missing key -> empty cell
    events = list(run.tensorboard_dir.glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_every_evaluation_metric_goes_to_evaluations_jsonl_and_tensorboard(run):
    import json

    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = MetricsLogger(run, METRIC_COLUMNS)
    first = {"return_mean": 1.5, "coverage_mean": np.float32(0.75), "agent": "greedy"}
    logger.log_evaluation(first, 100, 2.0)
    logger.log_evaluation({"return_mean": 2.5, "judge_perplexity": float("inf")}, 200, 4.0)
    logger.close()
    lines = [json.loads(line) for line in run.evaluations_path.read_text().splitlines()]
    assert lines == [
        {"env_steps": 100, "wall_s": 2.0, "return_mean": 1.5, "coverage_mean": 0.75, "agent": "greedy"},
        {"env_steps": 200, "wall_s": 4.0, "return_mean": 2.5, "judge_perplexity": float("inf")},
    ]
    events = EventAccumulator(str(run.tensorboard_dir))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("eval/return_mean")] == [(100, 1.5), (200, 2.5)]
    assert [e.value for e in events.Scalars("eval/coverage_mean")] == [0.75]
    assert "eval/agent" not in events.Tags()["scalars"]  # text is not a scalar
    assert "eval/judge_perplexity" not in events.Tags()["scalars"]  # nor is infinity


def test_logger_rejects_unknown_columns_by_name(run):
    logger = MetricsLogger(run, METRIC_COLUMNS, tensorboard=False)
    with pytest.raises(ValueError, match="returns_mean"):
        logger.log({"env_steps": 1, "returns_mean": 3.0})
    logger.close()
    assert read_rows(run.metrics_csv) == []


def test_resumed_logger_appends_under_the_existing_header(run):
    with MetricsLogger(run, METRIC_COLUMNS, tensorboard=False) as logger:
        logger.log(row_at(100))
    with MetricsLogger(RunDirectory.open(run.path), METRIC_COLUMNS, tensorboard=False) as logger:
        logger.log(row_at(200))
    assert [r["env_steps"] for r in read_rows(run.metrics_csv)] == ["100", "200"]


def test_resumed_logger_with_other_columns_starts_a_numbered_file(run):
    with MetricsLogger(run, ("env_steps", "loss"), tensorboard=False) as logger:
        logger.log({"env_steps": 1, "loss": 0.1})
    with MetricsLogger(run, ("env_steps", "q_mean"), tensorboard=False) as logger:
        logger.log({"env_steps": 2, "q_mean": 4.0})
    assert logger.csv_path == run.path / "metrics-1.csv"
    assert read_rows(run.metrics_csv) == [{"env_steps": "1", "loss": "0.1"}]
    assert read_rows(logger.csv_path) == [{"env_steps": "2", "q_mean": "4.0"}]


def test_resumed_logger_ends_a_row_cut_off_by_a_crash(run):
    with MetricsLogger(run, ("env_steps", "loss"), tensorboard=False) as logger:
        logger.log({"env_steps": 1, "loss": 0.1})
    with run.metrics_csv.open("a") as f:
        f.write("2,0.")  # killed mid-write
    with MetricsLogger(run, ("env_steps", "loss"), tensorboard=False) as logger:
        logger.log({"env_steps": 3, "loss": 0.3})
    assert [r["env_steps"] for r in read_rows(run.metrics_csv)] == ["1", "2", "3"]


# --- learning curve ---


def write_metrics(run: RunDirectory, rows: list[dict]) -> None:
    with MetricsLogger(run, METRIC_COLUMNS, tensorboard=False) as logger:
        for row in rows:
            logger.log(row)


@pytest.mark.parametrize("with_eval", [True, False])
def test_plot_makes_a_png_with_or_without_eval_values(run, with_eval):
    rows = [row_at(s * 100, train_return_mean=s * 2.0) for s in range(1, 6)]
    if with_eval:
        rows[1]["eval_return_mean"], rows[4]["eval_return_mean"] = 10.0, 40.0
    write_metrics(run, rows)
    out = plot_learning_curve(run.metrics_csv, run.plot_path, target=50.0)
    assert out == run.plot_path
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 1000


def test_a_success_rate_and_the_training_return_each_get_their_own_axis():
    data = {
        "env_steps": [100.0, 200.0, 300.0],
        "wall_s": [1.0, 2.0, 3.0],
        "eval_success_rate": [None, 0.4, 0.97],
        "train_return_mean": [-60.0, 10.0, 55.0],
    }
    fig = learning_curve_figure(data, target=0.95, metric="eval_success_rate")
    rate_ax = fig.axes[0]
    return_axes = [ax for ax in fig.axes if ax.get_ylabel() == "train_return_mean"]
    assert rate_ax.get_ylim() == (-0.02, 1.02) and len(return_axes) == 2  # one per panel
    assert return_axes[0].get_ylim()[0] <= -60 and return_axes[0].get_ylim()[1] >= 55
    assert [t.get_text() for t in rate_ax.get_legend().get_texts()] == [
        "eval_success_rate", "target 0.95", "train_return_mean"
    ]  # fmt: skip
    same = learning_curve_figure({**data, "eval_return_mean": [None, 5.0, 50.0]}, 40.0, "eval_return_mean")
    assert len(same.axes) == 2  # returns share one scale: no second axis


def test_plot_of_a_csv_with_no_rows_still_makes_a_png(run):
    write_metrics(run, [])
    assert plot_learning_curve(run.metrics_csv, run.plot_path).read_bytes().startswith(PNG_MAGIC)


# --- summary ---


def test_summary_round_trips_and_leaves_no_temp_file(tmp_path):
    np = pytest.importorskip("numpy")
    summary = {"reached_target": True, "env_steps": 1234, "final_eval": {"return_mean": 195.5}}
    write_summary(tmp_path / "summary.json", {**summary, "updates": np.int64(7)})
    assert read_summary(tmp_path / "summary.json") == {**summary, "updates": 7}
    write_summary(tmp_path / "summary.json", {"env_steps": 1})
    assert read_summary(tmp_path / "summary.json") == {"env_steps": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# --- console view ---


def test_console_view_off_a_terminal_prints_one_line_per_update():
    out = io.StringIO()
    row = {
        "env_steps": 12345, "env_steps_per_s": 2100.4, "updates": 1234, "updates_per_s": 210.0,
        "learner_utilization": 0.85, "eval_success_rate": 0.9, "eval_return_mean": 20.0,
    }  # fmt: skip
    with ConsoleView("textdqn unit", console=Console(file=out, width=60)) as view:
        view.update(row)
        view.update({**row, "env_steps": 20000})
    lines = out.getvalue().splitlines()
    assert lines[0] == "textdqn unit"
    assert "env_steps=12,345 (2,100/s) updates=1,234 (210/s)" in lines[1]  # no wrapping at width 60
    assert "util=85%" in lines[1] and "success 90%" in lines[1] and "replay=-" in lines[1]
    assert "env_steps=20,000" in lines[2] and len(lines) == 3


def test_console_view_disabled_prints_plain_lines_even_on_a_terminal():
    out = io.StringIO()
    with ConsoleView("t", enabled=False, console=Console(file=out, force_terminal=True)) as view:
        view.update(row_at(500))
    assert "env_steps=500" in out.getvalue()


def test_console_view_on_a_terminal_draws_a_table():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with ConsoleView("textdqn live", console=console) as view:
        view.update(row_at(700, replay_size=4096, policy_lag_max=3))
        view.note("evaluation at 700 env steps: coverage_mean 0.9 (>= 0.8): target reached")
    text = out.getvalue()
    assert "textdqn live" in text and "replay size" in text and "4,096" in text
    assert "evaluation at 700 env steps: coverage_mean 0.9 (>= 0.8): target reached" in text


def test_console_view_notes_print_as_lines_of_their_own():
    out = io.StringIO()
    with ConsoleView("t", console=Console(file=out, width=40)) as view:
        view.note("evaluation at 500 env steps: eos_mean 0.7667 (>= 0.9): not yet")
    assert out.getvalue().splitlines()[1] == "evaluation at 500 env steps: eos_mean 0.7667 (>= 0.9): not yet"


def test_plain_line_shows_dashes_for_missing_values():
    line = plain_line({})
    assert line.startswith("env_steps=- (-) updates=- (-) replay=-")
    assert "eval_return=-" in line and "restarts=-" in line


def test_importing_metrics_stays_light():
    code = "import sys, textdqn.metrics; print(sorted({'matplotlib', 'torch', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
