"""End to end on local Ray and in serial mode: transitions flow, weights version, lag bounded,
a killed actor restarts, both modes run the same config."""

import dataclasses
import json
import os
import signal
import time

import numpy as np
import pytest

from textdqn.cluster.ray_runner import RayRunner
from textdqn.cluster.serial import SerialRunner
from textdqn.cluster.supervisor import train
from textdqn.config import load_config

pytestmark = pytest.mark.integration


def _small_config(**stop):
    cfg = load_config(
        "configs/cartpole.yaml",
        [
            "actors.num_actors=2",
            "actors.steps_per_call=256",
            "replay.num_shards=2",
            "replay.capacity=20000",
            "replay.rate_limiter.min_size_to_sample=200",
            "run.log_every_s=0.5",
            "eval.every_env_steps=0",
            "eval.episodes=4",
            "eval.num_envs=4",
        ],
    )
    return dataclasses.replace(cfg, stop=dataclasses.replace(cfg.stop, **stop))


def test_local_mode_flows_and_survives_a_killed_actor(ray_local):
    ray = ray_local
    runner = RayRunner(_small_config())
    try:
        steps, versions, restarts, lag_means = 0, set(), 0, []
        killed = False
        deadline = time.time() + 120  # a loaded machine notices a dead worker later
        while time.time() < deadline:
            p = runner.step(1.0)
            steps += sum(r.env_steps for r in p.rollouts)
            versions.update(r.weight_version for r in p.rollouts)
            restarts += p.actor_restarts
            lag_n = sum(r.lag_count for r in p.rollouts)
            if lag_n:
                lag_means.append(sum(r.lag_sum for r in p.rollouts) / lag_n)
            if not killed and p.learner.total_updates > 50:
                steps_before = runner.actor_env_steps[0]
                os.kill(ray.get(runner.crew.actors[0].status.remote())["pid"], signal.SIGKILL)
                killed, updates_at_kill = True, p.learner.total_updates
            if killed and restarts and p.learner.total_updates > updates_at_kill + 50 and len(versions) > 3:
                break
        assert steps > 0 and sum(i.inserts for i in p.replay) > 0  # transitions flow
        assert killed and restarts == 1  # one kill, one replacement...
        assert p.learner.total_updates > updates_at_kill + 50  # ...and training went on
        # The replacement continues its predecessor's env step count (its ε schedule).
        replacement = runner.crew.actors[0]
        assert ray.get(replacement.status.remote())["env_steps"] >= steps_before
        assert max(versions) > 1  # actors picked up published weights
        assert max(lag_means) <= 10  # publish periods
        version, weights = runner.latest_weights()
        assert version >= max(versions) and weights
    finally:
        runner.close()


def test_serial_and_local_modes_run_the_same_config(tmp_path, ray_local):
    for mode in ("serial", "ray"):
        summary = train(
            _small_config(updates=60, time_s=60.0), mode=mode, run_dir=str(tmp_path / mode), live=False
        )
        assert summary["updates"] >= 60 and summary["env_steps"] > 0
        assert summary["final_eval"]["episodes"] == 4
        for name in ("config.yaml", "metrics.csv", "summary.json", "learning_curve.png"):
            assert (tmp_path / mode / name).is_file(), name
        assert list((tmp_path / mode / "checkpoints").glob("learner-*.pt"))


def test_serial_runner_trains_in_ratio():
    cfg = _small_config()
    runner = SerialRunner(cfg)
    try:
        p = runner.step(0.5)
        inserted = sum(i.inserts for i in p.replay)
        sampled = sum(i.samples for i in p.replay)
        spi = cfg.replay.rate_limiter.samples_per_insert
        # The learner stops once it is error_buffer ahead of the target ratio.
        limit = spi * inserted + cfg.replay.rate_limiter.error_buffer * cfg.replay.num_shards
        assert 0 < sampled <= limit + cfg.learner.batch_size
    finally:
        runner.close()


def test_serial_mode_learns_with_the_learners_threads():
    """Only the processes' owners set torch's threads (a rollout actor's and local mode's
    driver: one); in serial mode's one process the learner's learner.torch_threads hold, also
    after the evaluator is built and through the runner's steps."""
    import torch

    from textdqn.actors.evaluator import Evaluator

    cfg = _small_config()
    cfg = dataclasses.replace(cfg, learner=dataclasses.replace(cfg.learner, torch_threads=2))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    runner = SerialRunner(cfg)
    try:
        Evaluator(cfg)  # built after the runner, as the supervisor does
        assert torch.get_num_threads() == 2
        runner.step(0.2)
        assert torch.get_num_threads() == 2
    finally:
        runner.close()
        torch.set_num_threads(before)


def test_serial_mode_evaluates_on_the_eval_grid(tmp_path):
    """eval.every_env_steps means what it says in serial mode: a slice stops at the next grid
    point, so each evaluation comes less than one round of actor calls past it."""
    import csv

    cfg = _small_config(env_steps=12_000, time_s=120.0, target_value=1000.0)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, every_env_steps=2_000))
    cfg = dataclasses.replace(
        cfg, run=dataclasses.replace(cfg.run, log_every_s=30.0)
    )  # time never ends a slice
    train(cfg, mode="serial", run_dir=str(tmp_path / "run"), live=False)
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = [int(r["env_steps"]) for r in csv.DictReader(f) if r["eval_return_mean"]]
    round_of_calls = cfg.actors.num_actors * cfg.actors.steps_per_call
    assert len(steps) >= 6
    for k, at in enumerate(steps[:6], start=1):
        assert 2_000 * k <= at < 2_000 * k + round_of_calls, steps


def test_resume_continues_counters_and_eval_reads_the_run(tmp_path):
    from typer.testing import CliRunner

    from textdqn.cli import app

    run_dir = tmp_path / "run"
    first = train(_small_config(updates=30, time_s=60.0), mode="serial", run_dir=str(run_dir), live=False)
    more = first["updates"] + 100
    resumed = train(_small_config(updates=more, time_s=60.0), mode="serial", resume=str(run_dir), live=False)
    assert resumed["updates"] >= more
    assert resumed["env_steps"] > first["env_steps"]
    with open(run_dir / "metrics.csv") as f:
        rows = f.read().splitlines()
    assert len(rows) > 2 and rows[0].startswith("wall_s")  # one header, rows of both parts appended
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--episodes", "3"])
    assert result.exit_code == 0, result.output
    assert "return_mean" in result.output


def test_eval_of_a_run_measures_the_policy_its_summary_reports_not_the_later_checkpoint(tmp_path):
    """The learner trains on past the weights an evaluation measures (here: it publishes only
    at the start), so the run keeps those weights in policy.pt, and `textdqn eval RUN_DIR`
    reproduces summary.json's final evaluation; --checkpoint measures the learner's last state."""
    from typer.testing import CliRunner

    from textdqn.cli import app
    from textdqn.learner.checkpoint import load_checkpoint, load_policy

    cfg = _small_config(updates=60, time_s=60.0)
    cfg = dataclasses.replace(cfg, learner=dataclasses.replace(cfg.learner, publish_every=1000))
    run_dir = tmp_path / "run"
    summary = train(cfg, mode="serial", run_dir=str(run_dir), live=False)
    weights, info = load_policy(run_dir / "policy.pt")
    state, _ = load_checkpoint(run_dir / "checkpoints")
    assert info["evaluation"] == json.loads(json.dumps(summary["final_eval"]))
    assert state["updates"] >= 60 and info["evaluation"]["weight_version"] < state["updates"]
    assert any(not np.array_equal(v, state["online"][k].numpy()) for k, v in weights.items())

    def eval_return(*args: str) -> float:
        result = CliRunner().invoke(app, ["eval", str(run_dir), "--episodes", "4", *args])
        assert result.exit_code == 0, result.output
        return float(result.output.split("return_mean")[1].split("│")[1])

    assert eval_return() == pytest.approx(summary["final_eval"]["return_mean"], rel=1e-3)
    title = CliRunner().invoke(app, ["eval", str(run_dir), "--episodes", "1"]).output.split("┏")[0]
    assert "the policy its final evaluation measured" in " ".join(title.split())
    eval_return("--checkpoint")  # the learner's checkpoint still evaluates
    eval_return("--seed", "7")  # other episodes than the run's evaluations


def test_with_stop_at_target_off_a_met_target_does_not_end_the_run_and_the_final_evaluation_judges(tmp_path):
    cfg = _small_config(updates=150, time_s=120.0, target_metric="return_mean", target_value=1.0)
    cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, every_env_steps=1_000))
    early = train(cfg, mode="serial", run_dir=str(tmp_path / "early"), live=False)
    assert early["reached_target"] and early["updates"] < 150  # any policy lasts a step: the first eval
    cfg = dataclasses.replace(cfg, stop=dataclasses.replace(cfg.stop, at_target=False))
    whole = train(cfg, mode="serial", run_dir=str(tmp_path / "whole"), live=False)
    assert whole["reached_target"] and whole["updates"] >= 150
    with open(tmp_path / "whole" / "evaluations.jsonl") as f:
        evaluations = [json.loads(line) for line in f]
    assert len(evaluations) > 2 and whole["final_eval"]["weight_version"] == evaluations[-1]["weight_version"]
    cfg = dataclasses.replace(cfg, stop=dataclasses.replace(cfg.stop, target_value=1e6))
    assert not train(cfg, mode="serial", run_dir=str(tmp_path / "missed"), live=False)["reached_target"]


def test_token_dialogue_run_keeps_its_tokenizer_and_shows_transcripts(tmp_path):
    from typer.testing import CliRunner

    from textdqn.cli import app
    from textdqn.envs.word_tokenizer import load_tokenizer

    cfg = load_config(
        "configs/dialogue-text.yaml",
        [
            "env.num_envs=2",
            "env.kwargs.max_tokens=64",
            "actors.warm_start_steps=100",
            "actors.steps_per_call=64",
            "network.encoder_layers=1",
            "network.encoder_width=16",
            "learner.batch_size=8",
            "learner.torch_threads=1",
            "replay.rate_limiter.min_size_to_sample=100",
            "eval.every_env_steps=0",
            "eval.episodes=2",
            "eval.num_envs=2",
            "stop.updates=10",
            "stop.time_s=60",
            "eval.baseline=[rule, random]",
        ],
    )
    run_dir = tmp_path / "run"
    summary = train(cfg, mode="serial", run_dir=str(run_dir), live=False)
    assert summary["updates"] >= 10 and summary["final_eval"]["episodes"] == 2
    assert summary["baseline"]["agent"] == "rule" and summary["baseline"]["episodes"] == 2
    assert list(summary["baselines"]) == ["rule", "random"]
    assert summary["baselines"]["rule"] == summary["baseline"]
    assert {"success_rate", "turns_mean"} <= set(summary["baseline"]) & set(summary["final_eval"])
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    assert tokenizer.convert_tokens_to_ids("booked") != tokenizer.unk_token_id
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--show", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("movies goal:") == 2 and result.output.count("outcome:") == 2
    assert "user:" in result.output and "system:" in result.output
    rule = CliRunner().invoke(app, ["eval", str(run_dir), "--agent", "rule", "--show", "1"])
    assert rule.exit_code == 0 and "which" in rule.output  # the rule agent asks for slots


def test_ctrl_c_ends_a_run_with_its_checkpoint_evaluation_and_summary(tmp_path, monkeypatch):
    steps = {"n": 0}
    real_step = SerialRunner.step

    def step_then_interrupt(self, seconds, env_steps=None):
        steps["n"] += 1
        if steps["n"] > 3:
            raise KeyboardInterrupt
        return real_step(self, seconds, env_steps)

    monkeypatch.setattr(SerialRunner, "step", step_then_interrupt)
    summary = train(_small_config(time_s=600.0), mode="serial", run_dir=str(tmp_path / "run"), live=False)
    assert summary["interrupted"] and summary["final_eval"]["episodes"] == 4
    assert (tmp_path / "run" / "summary.json").is_file()
    assert list((tmp_path / "run" / "checkpoints").glob("learner-*.pt"))
