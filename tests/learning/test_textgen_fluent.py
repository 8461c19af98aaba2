"""configs/textgen-fluent.yaml (coverage with the fluency terms, learning from the constrained
beam search's texts as demonstrations) must write texts that use the concepts and end: greedy
coverage >= 0.9 and >= 2x the reference LM's greedy coverage, 90 % of the texts ending with EOS
before the limit, and a judge perplexity of at most 5.5, all in the evaluation at the end of
its env-step budget, with the distributed trainer (local mode).

Issue 15's own target (perplexity <= 4.05, the reference's samples) is the config's stop target
and is not reached yet (README, "The shipped small LM and the results"); this test holds the
recipe to what it reaches, so that a change that loses fluency fails. The same config (with
its one-hour time limit) on 2026-12-01 had a perplexity of 4.22-4.56 between 350K and 400K env
steps and 4.19-5.40 at every evaluation from 100K on, coverage >= 0.99 and EOS >= 0.94 from
250K on. The bound was 8 before the beam warm start (2026-11-30), 6 before the demonstrator
slots and DQfD's margin loss (2026-12-01).

It needs about 30 minutes of a 2-core machine to itself, so it runs only when asked:
`TEXTDQN_SLOW_TESTS=1 pytest tests/learning/test_textgen_fluent.py`.
The budget is in env steps, never wall-clock: the time limit is switched off here.
"""

import pytest

pytestmark = [
    pytest.mark.learning,
    pytest.mark.timeout(3600),
    pytest.mark.slow,  # only with TEXTDQN_SLOW_TESTS=1 (tests/learning/conftest.py)
]

ENV_STEP_BUDGET = 400_000


def test_fluent_recipe_uses_the_concepts_ends_its_texts_and_stays_likely(train_example):
    config, summary = train_example("configs/textgen-fluent.yaml", ENV_STEP_BUDGET)
    final, baseline = summary["final_eval"], summary["baseline"]
    assert config.env.kwargs["eos_after_concepts"] and config.env.kwargs["mark_used_concepts"]
    assert config.actors.warm_start_agent == "beam" and config.actors.demo_envs >= 1
    assert config.learner.demo_margin > 0
    assert final["coverage_mean"] >= 0.9 and final["coverage_mean"] >= 2 * baseline["coverage_mean"]
    assert final["eos_mean"] >= 0.9, final
    assert final["judge_perplexity"] <= 5.5, final
    assert baseline["agent"] == "rule" and baseline["episodes"] == final["episodes"] == 120
    assert summary["env_steps"] <= ENV_STEP_BUDGET + 40_000  # one reporting slice past the budget at most
