"""configs/dialogue.yaml (movies) and configs/dialogue-flights.yaml (flights) must reach their
target (greedy success >= 0.95 over 500 test-goal dialogues, a wrong value told in fewer than
1 % of them) within their env-step budget, with the distributed trainer (local mode).

The budget is in env steps, never wall-clock: the time limit is switched off here.
"""

import pytest

pytestmark = [pytest.mark.learning, pytest.mark.timeout(1500)]

ENV_STEP_BUDGET = 1_000_000


@pytest.mark.parametrize("path", ["configs/dialogue.yaml", "configs/dialogue-flights.yaml"])
def test_dialogue_reaches_095_test_success_within_budget(train_example, path):
    config, summary = train_example(path, ENV_STEP_BUDGET)
    assert summary["reached_target"], summary["final_eval"]
    assert summary["final_eval"]["success_rate"] >= 0.95
    assert summary["final_eval"]["any_wrong_inform_mean"] < 0.01  # wrong values told in < 1 % of dialogues
    assert summary["final_eval"]["episodes"] == 500
    assert config.eval.env_kwargs["split"] == "test"
    assert summary["env_steps"] <= ENV_STEP_BUDGET + 40_000  # one reporting slice past the budget at most
