"""The RLlib DQN peer of `textdqn bench train`: a short run returns a self-consistent result.

run_rllib_dqn starts and stops Ray itself (or leaves a running one alone), so no fixture.
A tiny budget and a low target keep the run to one or two RLlib iterations.
"""

import pytest

from textdqn.bench.rllib_dqn import PeerRunResult, run_rllib_dqn
from textdqn.errors import ConfigError

pytest.importorskip("ray.rllib")
pytestmark = pytest.mark.integration

BUDGET_S = 5.0
TARGET = 15.0


def test_short_run_reports_consistent_figures():
    import ray

    ray_was_up = ray.is_initialized()
    lines: list[str] = []
    result = run_rllib_dqn(
        target=TARGET, eval_episodes=3, time_budget_s=BUDGET_S, eval_every_iters=1, log=lines.append
    )

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
    assert result.final_eval_return == result.evals[-1][2]
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


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"eval_episodes": 0}, "eval_episodes"), ({"time_budget_s": 0}, "time_budget_s")],
)
def test_bad_arguments_fail_before_ray_starts(kwargs, word):
    import ray

    ray_was_up = ray.is_initialized()
    with pytest.raises(ConfigError, match=word):
        run_rllib_dqn(log=lambda m: None, **kwargs)
    assert ray.is_initialized() == ray_was_up
