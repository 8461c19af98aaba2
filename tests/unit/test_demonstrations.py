"""Learning from demonstrations (DQfD, Hester et al. 2018): transitions whose first action was a
demonstrator's carry a demo flag from the n-step adder through the worker; the learner's
large-margin loss makes the demonstrator's action the greedy one; demonstrator env slots act
with the warm-start agent all along; demonstrations get a priority bonus on both sides."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from textdqn.actors.nstep import NStepAdder
from textdqn.actors.worker import RolloutWorker
from textdqn.cluster.books import Aggregator, Counters
from textdqn.cluster.progress import Progress
from textdqn.config import ActorConfig, Config, EnvConfig, LearnerConfig, NetworkConfig
from textdqn.errors import ConfigError, SchemaError
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop
from textdqn.learner.losses import demo_cross_entropy, large_margin_loss
from textdqn.metrics import plain_line
from textdqn.typed_config import from_dict, validate
from textdqn.types import TransitionBatch, WeightedSample

DIALOGUE = EnvConfig(id="textdqn/Dialogue-v0", num_envs=4, kwargs={"domain": "movies"})


def test_large_margin_loss_by_hand_and_zero_once_the_demonstrated_action_leads_by_the_margin():
    q = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0], [0.0, 9.0, 0.0]], requires_grad=True)
    action = torch.tensor([0, 0, 0])
    demo = torch.tensor([True, True, False])
    loss = large_margin_loss(q, action, demo, margin=0.5)
    # row 0: max(1 + 0, 3 + 0.5, 2 + 0.5) − 1 = 2.5; row 1: 5 leads 1 by more than 0.5 → max is
    # 5 itself, 0; row 2: not a demonstration, 0 although its action is far from greedy
    assert loss.tolist() == pytest.approx([2.5, 0.0, 0.0])
    loss.sum().backward()
    # the gradient lowers the best other action and raises the demonstrated one, in row 0 only
    assert q.grad.tolist() == [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_demo_cross_entropy_by_hand_on_demonstrations_only():
    q = torch.tensor([[0.1, 0.1], [0.2, 0.0], [0.0, 9.0]], requires_grad=True)
    loss = demo_cross_entropy(q, torch.tensor([0, 0, 0]), torch.tensor([True, True, False]), temperature=0.1)
    # −log softmax(q / 0.1)[0]: row 0, log 2; row 1, log(1 + e^−2); row 2 is not a demonstration
    assert loss.tolist() == pytest.approx([np.log(2.0), np.log1p(np.exp(-2.0)), 0.0], rel=1e-5)
    loss.sum().backward()
    assert q.grad[2].tolist() == [0.0, 0.0] and q.grad[0, 0] < 0 < q.grad[0, 1]


def test_the_adder_flags_each_transition_by_its_first_action_and_only_when_asked():
    for label in (False, True):
        adder = NStepAdder(2, n=2, gamma=0.5, label_demos=label)
        obs = np.zeros((2, 1), np.float32)
        out = []
        for t, demo in enumerate(([True, False], [False, False], [False, True], [True, True])):
            done = np.full(2, t == 3)
            flags = np.array(demo)
            batch = adder.add(obs, np.zeros(2), np.ones(2), obs, done, np.zeros(2, bool), 0, demo=flags)
            if batch is not None:
                out.append(batch)
        merged = TransitionBatch.concat(out)
        if not label:
            assert merged.demo is None
            continue
        # env 0 starts windows at steps 0 (demo), 1, 2, 3 (demo); env 1 at 0, 1, 2 (demo), 3 (demo)
        firsts = {(int(e), bool(d)) for e, d in zip(adder.emitted_env, merged.demo[-4:], strict=True)}
        assert firsts == {(0, False), (0, True), (1, True)}
        assert merged.demo.sum() == 4 and len(merged) == 8


def _demo_sample(n: int = 16) -> WeightedSample:
    """A terminal batch in which every row is a demonstration of action 1, with reward 0 for it."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, 3), dtype=np.float32)
    batch = TransitionBatch(
        obs=obs,
        action=np.ones(n, np.int64),
        reward=np.zeros(n, np.float32),
        discount=np.zeros(n, np.float32),
        next_obs=obs,
        demo=np.ones(n, bool),
    )
    return WeightedSample(batch=batch, weights=np.ones(n, np.float32), keys=np.arange(n), shard=0)


def test_the_learner_makes_the_demonstrated_action_greedy_and_adds_the_priority_bonus():
    spaces = (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    sample = _demo_sample()
    greedy = {}
    for margin, ce in ((0.0, 0.0), (0.3, 0.0), (0.0, 1.0)):
        terms = {"demo_margin": margin, "demo_ce": ce, "demo_priority_bonus": 0.25}
        config = Config(
            network=NetworkConfig(hidden=(16,)),
            actors=ActorConfig(warm_start_steps=100),
            learner=LearnerConfig(device="cpu", lr=1e-2, **terms),
        )
        torch.manual_seed(0)
        learner = Learner(config, *spaces)
        with torch.no_grad():
            # action 0 starts far ahead, as an LM's likeliest token would; the TD loss alone only
            # fits Q(s, 1) to its reward, 0, and leaves action 0 where it is
            learner.online.advantage.bias.copy_(torch.tensor([1.0, -1.0]))
        for _ in range(200):
            result = learner.update(sample)
        with torch.no_grad():
            q = learner.online(torch.as_tensor(sample.batch.obs))
        greedy[margin, ce] = (q.argmax(1) == 1).float().mean().item()
        td = np.abs(q[:, 1].numpy())  # the target of every row is its reward, 0
        np.testing.assert_allclose(result.priorities, td + 0.25, atol=0.05)
    assert greedy[0.0, 0.0] == 0.0 and greedy[0.3, 0.0] == 1.0 and greedy[0.0, 1.0] == 1.0, greedy


class _SameBatch:
    """The ReplaySampler interface: `sample` every time (without its demo flags when the learner
    does not use them), noting the margin loss of its demo rows by hand on the weights each update sees."""

    def __init__(self, learner: Learner, sample: WeightedSample) -> None:
        self.learner, self.margin_sums = learner, []
        self.batch = sample
        if not learner.config.uses_demos:
            self.batch = dataclasses.replace(sample, batch=dataclasses.replace(sample.batch, demo=None))

    def sample(self, beta, timeout=None):
        b = self.batch.batch
        with torch.no_grad():
            q = self.learner.online(torch.as_tensor(b.obs))
        lead = (q + torch.tensor([self.learner.config.demo_margin, 0.0])).max(1).values - q[:, 1]
        self.margin_sums.append(float(lead[b.demo].sum()) if b.demo is not None else 0.0)
        return self.batch

    def update_priorities(self, sample, priorities):
        pass

    def publish(self, version, weights):  # and the WeightSink one
        pass


def test_the_share_of_demonstrations_and_their_margin_loss_reach_the_metrics_row():
    spaces = (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    sample = _demo_sample()
    sample.batch.demo[::2] = False  # half the rows are the demonstrator's
    margin_loss = {}
    for margin, bonus in ((0.3, 0.0), (0.0, 0.1), (0.0, 0.0)):
        config = Config(
            network=NetworkConfig(hidden=(16,)),
            actors=ActorConfig(warm_start_steps=100),
            learner=LearnerConfig(device="cpu", demo_margin=margin, demo_priority_bonus=bonus),
        )
        torch.manual_seed(0)
        learner = Learner(config, *spaces)
        replay = _SameBatch(learner, sample)
        stats = LearnerLoop(learner, config.replay, replay, replay).run(max_updates=3)
        assert stats.rows == 48 and stats.uses_demos == config.learner.uses_demos
        row = Aggregator(Counters()).row(Progress(learner=stats), wall_s=1.0, dt=1.0)
        if config.learner.uses_demos:
            assert stats.demo_rows == 24 and row["demo_share"] == 0.5
            # with margin 0 (a priority bonus only) it is how far the demonstrated action trails
            assert row["demo_margin_loss"] == pytest.approx(sum(replay.margin_sums) / 24, rel=1e-5)
            assert "demo=50%/" in plain_line(row)
            margin_loss[margin] = row["demo_margin_loss"]
        else:
            assert stats.demo_rows == 0 and row["demo_share"] is None and row["demo_margin_loss"] is None
            assert "demo=" not in plain_line(row)
    assert margin_loss[0.3] > margin_loss[0.0] > 0


def test_demonstrator_slots_act_with_the_warm_start_agent_and_their_transitions_are_flagged():
    config = Config(
        env=DIALOGUE,
        network=NetworkConfig(hidden=(32,)),
        actors=ActorConfig(send_batch_size=16, n_step=1, epsilon=1.0, epsilon_alpha=0.0, demo_envs=1),
        learner=LearnerConfig(demo_margin=0.1, demo_priority_bonus=0.5),
    )
    worker = RolloutWorker(config, 0, seed=3)
    rule, acts = worker.envs.envs[0], []
    step = worker.envs.step

    def recording_step(actions):  # the first slot's action is its rule agent's, the others random
        acts.append((int(actions[0]), int(rule.get_wrapper_attr("rule_action")())))
        return step(actions)

    worker.envs.step = recording_step
    batches = [b for _ in range(4) for b in worker.rollout(128)[0]]
    assert all(a == r for a, r in acts) and len(acts) == 128
    demo = np.concatenate([b.demo for b in batches])
    assert 0.15 < demo.mean() < 0.35  # one slot of four
    for batch in batches:  # initial priorities: |δ| under the local network, + 0.5 for demonstrations
        td = worker.initial_priorities(dataclasses.replace(batch, demo=None))
        np.testing.assert_allclose(batch.priority, td + 0.5 * batch.demo, rtol=1e-5, atol=1e-4)
    # without the learner's demo terms, transitions carry no flag (the replay schema is unchanged)
    plain = RolloutWorker(dataclasses.replace(config, learner=LearnerConfig()), 0, seed=3)
    assert all(b.demo is None for b in plain.rollout(128)[0])


def build(data: dict) -> Config:
    return validate(from_dict(Config, data))


def test_demonstration_settings_that_cannot_work_are_config_errors():
    for terms in ({"demo_margin": 0.1}, {"demo_ce": 1.0}):
        with pytest.raises(ConfigError, match="nothing demonstrates"):
            build({"learner": terms})
    with pytest.raises(ConfigError, match="demo_ce_temperature"):
        build({"learner": {"demo_ce_temperature": 0.0}, "actors": {"warm_start_steps": 10}})
    with pytest.raises(ConfigError, match=r"leaves none of env\.num_envs = 4"):
        build({"env": {"num_envs": 4}, "actors": {"demo_envs": 4}})
    with pytest.raises(ConfigError, match="set both to 0"):
        RolloutWorker(build({"env": {"id": "CartPole-v1"}, "actors": {"demo_envs": 1}}), 0)


def test_the_demo_flag_survives_the_replay_shard_and_its_checkpoint(tmp_path):
    from textdqn.replay_server.shard import ReplayShard

    batch = _demo_sample(8).batch
    batch = dataclasses.replace(batch, demo=np.arange(8) % 2 == 0)
    shard = ReplayShard(capacity=16)
    shard.insert(batch)
    sample = shard.sample(64)
    assert sample.batch.demo.dtype == bool
    np.testing.assert_array_equal(sample.batch.demo, sample.keys % 2 == 0)
    shard.checkpoint(str(tmp_path))
    again = ReplayShard(capacity=16)
    again.restore(str(tmp_path))
    assert again.sample(8).batch.demo is not None
    # a run resumed with the demonstration terms switched off sends batches without the flag
    with pytest.raises(SchemaError, match=r"learner\.demo_margin.*start a fresh replay"):
        again.insert(dataclasses.replace(batch, demo=None))
