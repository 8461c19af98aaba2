"""Learner, its loop, prefetching and checkpoints (CPU, tiny networks)."""

import dataclasses
import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from textdqn.config import Config, LearnerConfig, NetworkConfig
from textdqn.errors import CheckpointError
from textdqn.learner.checkpoint import load_checkpoint, save_checkpoint
from textdqn.learner.learner import Learner, TrainingDivergedError
from textdqn.learner.loop import LearnerLoop
from textdqn.learner.prefetch import Prefetcher
from textdqn.masks import mask_ids
from textdqn.types import TransitionBatch, WeightedSample, pack_masks, unpack_masks

SPACES = (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))


def _config(**learner) -> Config:
    return Config(network=NetworkConfig(hidden=(16,)), learner=LearnerConfig(device="cpu", **learner))


def _sample(reward: float = 1.0, n: int = 8) -> WeightedSample:
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, 3), dtype=np.float32)
    batch = TransitionBatch(
        obs=obs,
        action=np.zeros(n, np.int64),
        reward=np.full(n, reward, np.float32),
        discount=np.zeros(n, np.float32),  # terminal: the target is the reward itself
        next_obs=obs,
        policy_version=np.zeros(n, np.int32),
    )
    return WeightedSample(batch=batch, weights=np.ones(n, np.float32), keys=np.arange(n), shard=0)


def test_updates_move_q_towards_the_target_and_return_td_priorities():
    learner = Learner(_config(lr=1e-2), *SPACES)
    sample = _sample(reward=3.0)
    with torch.no_grad():
        before = learner.online(torch.as_tensor(sample.batch.obs))[:, 0]
    first = learner.update(sample)
    np.testing.assert_allclose(first.priorities, np.abs(3.0 - before.numpy()), rtol=1e-5)
    for _ in range(300):
        result = learner.update(sample)
    assert result.priorities.max() < 0.1 < first.priorities.min()
    assert learner.updates == 301


def test_hard_target_copies_every_t_updates_and_soft_blends():
    learner = Learner(_config(target_update="hard", target_update_every=3, lr=1e-2), *SPACES)
    target0 = [p.clone() for p in learner.target.parameters()]
    learner.update(_sample())
    learner.update(_sample())
    assert all(torch.equal(a, b) for a, b in zip(target0, learner.target.parameters(), strict=True))
    learner.update(_sample())
    assert all(
        torch.equal(a, b)
        for a, b in zip(learner.online.parameters(), learner.target.parameters(), strict=True)
    )
    soft = Learner(_config(target_update="soft", tau=0.5, lr=1e-2), *SPACES)
    old = [p.clone() for p in soft.target.parameters()]
    soft.update(_sample())
    for t, o, before in zip(soft.target.parameters(), soft.online.parameters(), old, strict=True):
        torch.testing.assert_close(t, 0.5 * before + 0.5 * o)


def test_learning_rate_anneals_linearly_then_stays_and_is_constant_by_default():
    learner = Learner(_config(lr=1e-2, lr_final=1e-3, lr_anneal_updates=4), *SPACES)
    seen = []
    for _ in range(6):
        learner.update(_sample())
        seen.append(learner.optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, [7.75e-3, 5.5e-3, 3.25e-3, 1e-3, 1e-3, 1e-3])
    constant = Learner(_config(lr=1e-2), *SPACES)
    for _ in range(3):
        constant.update(_sample())
    assert constant.optimizer.param_groups[0]["lr"] == 1e-2


def test_nan_loss_is_skipped_counted_then_aborts():
    learner = Learner(_config(max_bad_updates=2), *SPACES)
    bad = _sample(reward=float("nan"))
    assert learner.update(bad) is None and learner.update(bad) is None
    assert learner.bad_updates == 2 and learner.updates == 0
    with pytest.raises(TrainingDivergedError, match="max_bad_updates"):
        learner.update(bad)


def test_loop_publishes_every_period_and_sends_priorities():
    learner = Learner(_config(publish_every=5), *SPACES)
    published, updated, betas = [], [], []

    class Sampler:  # the ReplaySampler interface, recording what the loop hands it
        def sample(self, beta, timeout=None):
            betas.append(beta)
            return _sample()

        def update_priorities(self, sample, priorities):
            updated.append(len(priorities))

    class Weights:
        def publish(self, version, weights):
            published.append(version)

    loop = LearnerLoop(learner, _config().replay, Sampler(), Weights())
    stats = loop.run(max_updates=12)
    assert stats.updates == 12 and updated == [8] * 12
    assert published == [1, 2] and stats.version == 2
    assert betas[0] == pytest.approx(0.4) and betas[-1] > betas[0]  # β anneals towards 1
    assert 0 < stats.compute_s <= stats.wall_s


def test_prefetcher_keeps_order_reraises_and_times_out():
    counter = iter(range(100))
    fetched = Prefetcher(lambda: next(counter), depth=3)
    assert [fetched.get(timeout=5) for _ in range(5)] == [0, 1, 2, 3, 4]
    fetched.close()
    gate = threading.Event()
    slow = Prefetcher(lambda: gate.wait() or 1, depth=1)
    assert slow.get(timeout=0.05) is None  # nothing yet
    gate.set()
    slow.close()

    def boom():
        raise RuntimeError("shard gone")

    broken = Prefetcher(boom, depth=1)
    time.sleep(0.05)
    with pytest.raises(RuntimeError, match="shard gone"):
        broken.get(timeout=5)
    broken.close()


def test_checkpoint_round_trip_keeps_the_two_newest(tmp_path):
    learner = Learner(_config(), *SPACES)
    for _ in range(3):
        learner.update(_sample())
        save_checkpoint(
            tmp_path, learner.state_dict(), {"env_steps": 10 * learner.updates, "updates": learner.updates}
        )
    assert len(list(tmp_path.glob("learner-*.pt"))) == 2
    state, counters = load_checkpoint(tmp_path)
    assert counters["env_steps"] == 30
    fresh = Learner(_config(), *SPACES)
    fresh.load_state_dict(state)
    assert fresh.updates == 3
    obs = torch.as_tensor(_sample().batch.obs)
    torch.testing.assert_close(fresh.online(obs), learner.online(obs))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty")


def test_sample_age_is_measured_from_versions():
    learner = Learner(_config(), *SPACES)
    learner.version = 7
    s = _sample()
    batch = dataclasses.replace(s.batch, policy_version=np.array([7, 5, 5, 5, 5, 5, 5, 3], np.int32))
    result = learner.update(dataclasses.replace(s, batch=batch))
    assert result.sample_age_max == 4 and result.sample_age_mean == pytest.approx((0 + 2 * 6 + 4) / 8)


def test_updates_on_token_observations_train_the_transformer():
    torch.manual_seed(0)  # the initial TD errors must exceed 0.5, whatever ran before in this process
    space = gym.spaces.Box(0, 29, (10,), np.uint16)
    config = Config(
        network=NetworkConfig(encoder_layers=1, encoder_width=16, encoder_heads=2),
        learner=LearnerConfig(device="cpu", lr=1e-2),
    )
    learner = Learner(config, space, SPACES[1])
    s = _sample(reward=2.0)
    obs = np.zeros((8, 10), np.uint16)
    obs[:, 0] = 2
    obs[:, 1:4] = np.arange(24).reshape(8, 3) + 5  # [CLS], three tokens, padding
    sample = dataclasses.replace(s, batch=dataclasses.replace(s.batch, obs=obs, next_obs=obs))
    first = learner.update(sample)
    for _ in range(50):
        result = learner.update(sample)
    assert result.priorities.max() < 0.5 < first.priorities.min()


def test_bf16_flag_changes_nothing_on_cpu():
    results = []
    for bf16 in (True, False):
        torch.manual_seed(0)
        results.append(Learner(_config(bf16=bf16), *SPACES).update(_sample(reward=2.0)))
    np.testing.assert_array_equal(results[0].priorities, results[1].priorities)
    assert results[0].loss == results[1].loss


def test_packed_and_id_masks_round_trip_and_train_as_bool_masks():
    rng = np.random.default_rng(1)
    mask = rng.random((5, 43)) < 0.3
    packed = pack_masks(mask)
    assert packed.dtype == np.uint8 and packed.shape == (5, 6)
    np.testing.assert_array_equal(unpack_masks(packed, 43), mask)
    assert unpack_masks(mask, 43) is mask and unpack_masks(None, 43) is None

    spaces = (gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(11))
    base = _sample(n=8).batch
    base = dataclasses.replace(base, discount=np.full(8, 0.9, np.float32), action=np.arange(8) % 11)
    bool_mask = rng.random((8, 11)) < 0.5
    priorities = []
    for mask in (bool_mask, pack_masks(bool_mask), mask_ids(bool_mask, 11)):
        torch.manual_seed(0)
        learner = Learner(_config(batch_size=8), *spaces)
        batch = dataclasses.replace(base, next_action_mask=mask)
        sample = WeightedSample(batch=batch, weights=np.ones(8, np.float32), keys=np.arange(8), shard=0)
        priorities.append(learner.update(sample).priorities)
    np.testing.assert_allclose(priorities[0], priorities[1])
    np.testing.assert_allclose(priorities[0], priorities[2])
