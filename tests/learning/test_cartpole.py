"""configs/cartpole.yaml must reach its target (greedy mean return >= 475 over 20 episodes)
within its env-step budget, with the distributed trainer (local mode, 2 actors, 2 shards).

The budget is in env steps, never wall-clock: the time limit is switched off here.
"""

import pytest

pytestmark = [pytest.mark.learning, pytest.mark.timeout(1500)]

ENV_STEP_BUDGET = 500_000


def test_cartpole_reaches_475_within_budget(train_example):
    _, summary = train_example("configs/cartpole.yaml", ENV_STEP_BUDGET)
    assert summary["reached_target"], summary["final_eval"]
    assert summary["final_eval"]["return_mean"] >= 475
    assert summary["final_eval"]["episodes"] == 20
    assert summary["env_steps"] <= ENV_STEP_BUDGET + 20_000  # one reporting slice past the budget at most
