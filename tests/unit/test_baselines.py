"""Baseline agents (rule, random), `textdqn eval --agent`, and the rule agent's warm start."""

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from textdqn.actors.evaluator import Evaluator, baseline_policy
from textdqn.actors.worker import RolloutWorker
from textdqn.cli import app
from textdqn.config import ActorConfig, Config, EnvConfig, EvalConfig
from textdqn.envs.dialogue.env import DialogueEnv
from textdqn.errors import ConfigError

RULE_ON_TEST_DIALOGUES = ["eval", "--agent", "rule", "--env", "textdqn/Dialogue-v0"]
RULE_ON_TEST_DIALOGUES += ["--set", "env.kwargs.split=test"]
DIALOGUE = EnvConfig(id="textdqn/Dialogue-v0", num_envs=4, kwargs={"split": "test"})


def test_evaluator_runs_the_rule_and_random_baselines():
    evaluator = Evaluator(Config(env=DIALOGUE, eval=EvalConfig(num_envs=10)))
    rule = evaluator.run(baseline_policy("rule", evaluator.envs), 200)
    random = evaluator.run(baseline_policy("random", evaluator.envs, seed=1), 200)
    assert rule["episodes"] == random["episodes"] == 200
    assert 2 <= rule["turns_mean"] <= 40  # episode-end info means come with the metrics
    assert 0.30 <= rule["success_rate"] <= 0.55
    assert random["success_rate"] < 0.08
    with pytest.raises(ConfigError, match="use one of"):
        baseline_policy("oracle", evaluator.envs)


def test_rule_baseline_needs_an_env_with_a_rule_agent():
    evaluator = Evaluator(Config(eval=EvalConfig(num_envs=2)))  # CartPole
    with pytest.raises(ConfigError, match="--agent random"):
        baseline_policy("rule", evaluator.envs)


def test_warm_start_acts_with_the_rule_agent_then_hands_over(monkeypatch):
    # A rule agent that always says bye makes every warm-start dialogue one turn long.
    monkeypatch.setattr(DialogueEnv, "rule_action", lambda env: env.act_index[("bye", None)])
    config = Config(env=DIALOGUE, actors=ActorConfig(warm_start_steps=200, epsilon=1.0, epsilon_alpha=0.0))
    worker = RolloutWorker(config, 0)
    _, warm = worker.rollout(200)
    assert warm.episode_lengths and set(warm.episode_lengths) == {1}
    batches, after = worker.rollout(400)
    # ε = 1 over the env's acts: dialogues of several turns, sent with masks packed for replay
    assert batches and all(b.next_action_mask.dtype == np.uint8 for b in batches)
    assert max(after.episode_lengths) > 1


def test_warm_start_without_a_rule_agent_is_a_config_error():
    config = Config(actors=ActorConfig(warm_start_steps=100))
    with pytest.raises(ConfigError, match="set both to 0"):
        RolloutWorker(dataclasses.replace(config, env=EnvConfig(num_envs=2)), 0)


def test_cli_eval_of_baselines_and_its_errors():
    runner = CliRunner()
    result = runner.invoke(app, [*RULE_ON_TEST_DIALOGUES, "--episodes", "40"])
    assert result.exit_code == 0, result.output
    assert "success_rate" in result.output and "rule agent" in result.output
    no_target = runner.invoke(app, ["eval"])
    assert no_target.exit_code == 2 and "--agent rule|random" in no_target.output
    unknown = runner.invoke(app, ["eval", "--agent", "oracle", "--env", "CartPole-v1"])
    assert unknown.exit_code == 2 and "not known" in unknown.output


def test_show_prints_dialogues_as_text_and_needs_a_language_env():
    result = CliRunner().invoke(app, [*RULE_ON_TEST_DIALOGUES, "--show", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("movies goal:") == 2 and "  user:" in result.output
    outcomes = [line for line in result.output.splitlines() if line.startswith("outcome:")]
    assert len(outcomes) == 2 and all("success" in o and "turns" in o for o in outcomes)
    cartpole = CliRunner().invoke(app, ["eval", "--agent", "random", "--env", "CartPole-v1", "--show", "1"])
    assert cartpole.exit_code == 2 and "without --show" in cartpole.output
