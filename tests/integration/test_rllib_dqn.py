"""The RLlib DQN peer of `textdqn bench train`: a short run returns a self-consistent result,
on CartPole and on Dialogue-v0 (whose success rate comes from the env's episode-end info).

run_rllib_dqn starts and stops Ray itself (or leaves a running one alone), so no fixture.
A tiny budget and a low target keep the run to one or two RLlib iterations.
"""

import pytest

from textdqn.bench.rllib_dqn import run_rllib_dqn
from textdqn.bench.train_bench import PeerRunResult
from textdqn.config import load_config
from textdqn.errors import ConfigError

pytest.importorskip("ray.rllib")
pytestmark = pytest.mark.integration

BUDGET_S = 5.0
TARGET = 15.0


def test_short_run_reports_consistent_figures():
    import ray

    ray_was_up = ray.is_initialized()
    lines: list[str] = []
    config = load_config("configs/cartpole.yaml", (f"stop.target_value={TARGET}", "eval.episodes=3"))
    result = run_rllib_dqn(config, time_budget_s=BUDGET_S, eval_every_iters=1, log=lines.append)

    assert isinstance(result, PeerRunResult)
    assert result.name == "rllib-dqn"
    assert ray.is_initialized() == ray_was_up
    assert result.setup_s > 0
    assert result.env_steps >= 1000  # one RLlib DQN iteration samples at least 1000 env steps
    # Every iteration is evaluated: one eval per iteration, wall and env steps increasing.
    assert result.evals
    walls = [w for w, _, _ in result.evals]
    steps = [s for _, s, _ in result.evals]
    assert walls == sorted(walls) and steps == sorted(steps)
    assert all(s % 1000 == 0 for s in steps)
    assert (result.wall_s, result.env_steps) == result.evals[-1][:2]
    assert result.final_eval["return_mean"] == result.evals[-1][2]
    # CartPole-v1 pays 1 a step and truncates at 500 steps.
    assert all(1 <= r <= 500 for _, _, r in result.evals)
    # Stops at the first eval that reaches the target, and only then.
    hits = [r >= TARGET for _, _, r in result.evals]
    assert isinstance(result.reached_target, bool)
    assert result.reached_target == any(hits)
    assert not any(hits[:-1])
    # No iteration starts after the budget: every eval but the last ended within it.
    assert all(w < BUDGET_S for w in walls[:-1])
    assert sum(" iter " in line for line in lines) == len(result.evals)


def test_dialogue_success_rate_is_judged_from_the_envs_info():
    overrides = ("eval.episodes=5", "stop.target_value=1.01", "eval.num_envs=1")
    config = load_config("configs/dialogue.yaml", overrides)
    result = run_rllib_dqn(config, time_budget_s=1.0, eval_every_iters=1, log=lambda m: None)
    assert not result.reached_target  # a success rate above 1 cannot be met
    assert {"return_mean", "success_rate", "turns_mean", "any_wrong_inform_mean"} <= set(result.final_eval)
    assert 0 <= result.final_eval["success_rate"] <= 1
    assert result.evals[-1][2] == result.final_eval["success_rate"]


@pytest.mark.parametrize(
    ("overrides", "budget", "word"),
    [(("stop.target_metric=''",), 5.0, "stop.target_metric"), ((), 0.0, "time_budget_s")],
)
def test_bad_arguments_fail_before_ray_starts(overrides, budget, word):
    import ray

    ray_was_up = ray.is_initialized()
    config = load_config("configs/cartpole.yaml", overrides)
    with pytest.raises(ConfigError, match=word):
        run_rllib_dqn(config, time_budget_s=budget, log=lambda m: None)
    assert ray.is_initialized() == ray_was_up
