"""The actor's initial priorities from the Q-values acting computed equal those of a forward
pass over the sent transitions (what the actor did before), for masked, terminated and
time-limited episodes, and for the rule agent's warm start."""

import numpy as np
import pytest

from textdqn.actors.worker import RolloutWorker
from textdqn.config import ActorConfig, Config, EnvConfig, NetworkConfig

CASES = {
    # masks, episodes that terminate, the rule agent's warm start first
    "dialogue": EnvConfig(id="textdqn/Dialogue-v0", num_envs=4, kwargs={"domain": "movies"}),
    # episodes cut by a 12-step time limit: s' is a final observation the policy never acts in
    "cartpole": EnvConfig(id="CartPole-v1", num_envs=4, kwargs={"max_episode_steps": 12}),
}


@pytest.mark.parametrize("case", CASES)
def test_acted_priorities_equal_a_forward_pass_over_the_batch(case):
    warm = 64 if case == "dialogue" else 0
    config = Config(
        env=CASES[case],
        network=NetworkConfig(hidden=(32,)),
        actors=ActorConfig(send_batch_size=16, n_step=3, warm_start_steps=warm, epsilon=0.5),
    )
    worker = RolloutWorker(config, 0, seed=1)
    forward, score = [], worker.initial_priorities  # the rows scored by a pass of their own
    worker.initial_priorities = lambda batch: forward.append(len(batch)) or score(batch)
    batches = []
    for _ in range(6):
        sent, stats = worker.rollout(128)
        batches += sent
        assert stats.env_errors == 0
    assert sum(len(b) for b in batches) >= 400
    full = config.actors.gamma**config.actors.n_step
    cut = sum(
        int((b.discount > full + 1e-6).sum()) for b in batches
    )  # fewer than n steps, not ended by a fall
    terminated = sum(int((b.discount == 0).sum()) for b in batches)
    assert (terminated if case == "dialogue" else cut) > 0  # the episode ends each case is for
    # Only the rule agent's warm-start transitions took a forward pass of their own.
    assert sum(forward) == 0 if not warm else 0 < sum(forward) <= warm + config.env.num_envs
    for batch in batches:
        np.testing.assert_allclose(batch.priority, worker.initial_priorities(batch), rtol=1e-5, atol=1e-4)
