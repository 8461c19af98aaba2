"""configs/textgen-fluent.yaml (coverage with the fluency terms, learning from the constrained
beam search's texts as demonstrations) must meet issue 15's whole target on the 120 test
prompts, greedy, within its env-step budget, with the distributed trainer (local mode):
coverage >= 0.8 and >= 2x the reference LM's greedy coverage, 90 % of the texts ending with EOS
before the limit, and a judge perplexity no higher than that of the reference LM's own samples
at temperature 1, measured in the same run (4.05).

The run stops at the first evaluation that meets all of them (the config's stop target), so it
picks one good evaluation among ones that vary by about +-0.3 in perplexity (4.0-4.9 from 30K
env steps on). On a 2-core machine (2026-12-01/02) seeds 0, 1 and 2 met the target at 120K, 250K
and 150K env steps (757 to 1,545 s), and this test passed at 300K (1,729 s of training, 31
minutes in all; asynchronous runs of one seed differ): the README has the figures. The bound
before the larger train prompt set (concepts-large.jsonl) was 5.5, at the evaluation at the
end of 400K env steps.

It needs 13 to 40 minutes of a 2-core machine to itself, so it runs only when asked:
`TEXTDQN_SLOW_TESTS=1 pytest tests/learning/test_textgen_fluent.py`.
The budget is in env steps, never wall-clock: the time limit is switched off here.
"""

import pytest

pytestmark = [
    pytest.mark.learning,
    pytest.mark.timeout(4800),
    pytest.mark.slow,  # only with TEXTDQN_SLOW_TESTS=1 (tests/learning/conftest.py)
]

ENV_STEP_BUDGET = 400_000


def test_fluent_recipe_covers_the_concepts_ends_its_texts_and_writes_as_likely_as_the_lm(train_example):
    config, summary = train_example("configs/textgen-fluent.yaml", ENV_STEP_BUDGET)
    final, baseline = summary["final_eval"], summary["baseline"]
    sample = summary["baselines"]["sample"]
    assert config.env.kwargs["eos_after_concepts"] and config.env.kwargs["mark_used_concepts"]
    assert config.actors.warm_start_agent == "beam" and config.actors.demo_envs >= 1
    assert summary["reached_target"], final
    assert final["coverage_mean"] >= 0.8 and final["coverage_mean"] >= 2 * baseline["coverage_mean"]
    assert final["eos_mean"] >= 0.9, final
    assert final["judge_perplexity"] <= sample["judge_perplexity"], (final, sample)
    assert baseline["agent"] == "rule" and sample["agent"] == "sample"
    assert baseline["episodes"] == sample["episodes"] == final["episodes"] == 120
    assert summary["env_steps"] <= ENV_STEP_BUDGET + 40_000  # one reporting slice past the budget at most
