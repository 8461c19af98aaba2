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
    assert sum(forward) == 0 if not warm else 0 < sum(forward) <= warm
    for batch in batches:
        np.testing.assert_allclose(batch.priority, worker.initial_priorities(batch), rtol=1e-5, atol=1e-4)


def test_bench_actor_compares_both_ways_in_one_run():
    from textdqn.bench.actor_bench import run_actor_bench
    from textdqn.config import load_config

    config = load_config("configs/cartpole.yaml", ("env.num_envs=4", "actors.sync_every=32"))
    result = run_actor_bench(config, seconds=0.4, rounds=2, log=lambda m: None)
    rates = {r["setting"]: r["env_steps_per_s"] for r in result["rows"]}
    assert set(rates) == {"acted", "forward pass"} and min(rates.values()) > 0
    assert result["ratio"] == rates["acted"] / rates["forward pass"]


def test_without_acted_priorities_every_batch_takes_a_forward_pass():
    config = Config(
        env=CASES["cartpole"], network=NetworkConfig(hidden=(32,)), actors=ActorConfig(send_batch_size=16)
    )
    worker = RolloutWorker(config, 0, seed=1)
    worker.acted_priorities = False
    forward, score = [], worker.initial_priorities
    worker.initial_priorities = lambda batch: forward.append(len(batch)) or score(batch)
    sent, _ = worker.rollout(256)
    assert sent and sum(forward) >= sum(len(b) for b in sent)


def test_n_step_cut_ends_windows_before_exploratory_actions():
    """ε = 1 with the cut: a random act among dozens is almost never the greedy one, so almost
    every transition is one step long (discount γ, or 0 at the end); without the cut, n steps.
    Priorities still equal a forward pass over what is sent."""
    lengths = {}
    for cut in (False, True):
        config = Config(
            env=CASES["dialogue"],
            network=NetworkConfig(hidden=(32,)),
            actors=ActorConfig(send_batch_size=16, n_step=3, epsilon=1.0, epsilon_alpha=0.0, n_step_cut=cut),
        )
        worker = RolloutWorker(config, 0, seed=2)
        batches = [b for _ in range(4) for b in worker.rollout(128)[0]]
        discount = np.concatenate([b.discount for b in batches])
        one_step = np.isclose(discount, config.actors.gamma)
        lengths[cut] = one_step[discount > 0].mean()
        for batch in batches:
            np.testing.assert_allclose(batch.priority, worker.initial_priorities(batch), rtol=1e-5, atol=1e-4)
    assert lengths[False] < 0.2 and lengths[True] > 0.8, lengths
