"""The sharded replay client without Ray: in-process shards (the serial mode's shard set) and a
shard set whose shards can be made to fail, as a lost Ray actor does."""

import math
import threading
import time

import numpy as np
import pytest

from tests.conftest import make_batch
from textdqn.config import RateLimiterConfig, ReplayConfig
from textdqn.errors import RateLimitTimeout, ReplayError, ShardUnavailable
from textdqn.replay_server.client import (
    LocalShards,
    ShardedSampler,
    ShardedWriter,
    _Done,
    make_local_shards,
    shard_infos,
)


def _config(num_shards=2, min_size=1, spi=0.0) -> ReplayConfig:
    return ReplayConfig(
        capacity=1000 * num_shards,
        num_shards=num_shards,
        alpha=0.6,
        rate_limiter=RateLimiterConfig(min_size_to_sample=min_size, samples_per_insert=spi, timeout_s=10),
    )


class FlakyShards(LocalShards):
    """LocalShards whose listed shards answer every call with ShardUnavailable."""

    def __init__(self, shards):
        super().__init__(shards)
        self.down: set[int] = set()
        self.calls: list[tuple[int, str]] = []

    def call(self, index, method, *args):
        self.calls.append((index, method))
        if index in self.down:
            return _Done(error=ShardUnavailable(f"shard {index} is gone"))
        return super().call(index, method, *args)


def test_writers_go_round_robin_from_their_own_offsets():
    shards = make_local_shards(_config(num_shards=3))
    writers = [ShardedWriter(shards, writer_index=w, max_in_flight=2) for w in range(2)]
    for step in range(3):
        for w, writer in enumerate(writers):
            writer.insert(make_batch(w * 1000 + step * 10, 10))
    for writer in writers:
        writer.flush()
    # writer 0 wrote shards 0,1,2; writer 1 wrote shards 1,2,0: 20 items each.
    assert [i.size for i in shard_infos(shards)] == [20, 20, 20]
    assert sum(w.inserted for w in writers) == 60


def test_weights_use_the_global_size_and_mass_and_equal_brute_force():
    shards = make_local_shards(_config())
    writer = ShardedWriter(shards)
    for step in range(12):  # item t has priority 1 + t % 5; 60 items per shard
        writer.insert(make_batch(step * 10, 10, with_priority=True))
    writer.flush()
    sampler = ShardedSampler(shards, batch_size=32, in_flight=1, seed=1, batches_per_request=2)
    # The first request knows no mass yet; from the second on, weights see both shards' mass.
    sampler.sample(0.7)
    sampler.sample(0.7)
    union = np.array([1 + t % 5 for t in range(120)], dtype=np.float64)
    p_all = (union + 1e-6) ** 0.6
    for _ in range(4):
        sample = sampler.sample(0.7)
        t = sample.batch.obs[:, 0].astype(int)
        p_i = (1 + t % 5 + 1e-6) ** 0.6 / p_all.sum()
        w = (len(union) * p_i) ** -0.7
        np.testing.assert_allclose(sample.weights, w / w.max(), rtol=1e-6)
        assert len(sample.keys) == 32


def test_shards_are_picked_by_mass_and_every_item_is_reachable():
    shards = make_local_shards(_config())
    writer = ShardedWriter(shards)
    writer.insert(make_batch(0, 50, with_priority=False))  # shard 0: 50 items at priority 1
    writer.insert(make_batch(1000, 50, with_priority=False))  # shard 1
    writer.flush()
    shards.shards[1].update_priorities(np.arange(50), np.full(50, 1000.0))  # shard 1: far more mass
    sampler = ShardedSampler(shards, batch_size=16, in_flight=2, seed=0)
    picks = [sampler.sample(0.4).shard for _ in range(200)]
    assert np.mean(picks) > 0.9  # mass 50·1000^0.6 against 50·1: shard 1 nearly always
    seen = set()
    sampler = ShardedSampler(shards, batch_size=64, in_flight=2, seed=0)
    shards.shards[1].update_priorities(np.arange(50), np.ones(50))
    for _ in range(60):
        seen.update(sampler.sample(0.4).batch.obs[:, 0].astype(int).tolist())
    assert seen == set(range(50)) | set(range(1000, 1050))


def test_no_shard_holds_more_than_its_share_of_requests():
    shards = FlakyShards(make_local_shards(_config(num_shards=4)).shards)
    writer = ShardedWriter(shards)
    for i in range(4):
        writer.insert(make_batch(i * 100, 20))
    writer.flush()
    shards.shards[0].update_priorities(np.arange(20), np.full(20, 1e6))  # shard 0 has nearly all mass
    sampler = ShardedSampler(shards, batch_size=4, in_flight=8, seed=0)
    for _ in range(40):
        sampler.sample(0.4)
        outstanding = np.bincount(list(sampler._requests.values()), minlength=4)
        assert outstanding[0] <= math.ceil(8 / 4) + 1 and outstanding.sum() == 7
    asked = np.bincount([i for i, method in shards.calls if method == "sample"], minlength=4)
    # Mass alone would send every request to shard 0; the cap leaves the rest to the others.
    assert asked[0] > asked[1:].max() and asked[1:].min() > 0


def test_priority_updates_are_coalesced_and_reach_the_right_shard():
    shards = make_local_shards(_config())
    writer = ShardedWriter(shards)
    writer.insert(make_batch(0, 40))
    writer.insert(make_batch(1000, 40))
    writer.flush()
    sampler = ShardedSampler(shards, batch_size=8, in_flight=1, seed=0, coalesce=3)
    samples = [sampler.sample(0.4) for _ in range(6)]
    for s in samples:
        sampler.update_priorities(s, np.full(8, 5.0))
    sampler.flush()
    infos = shard_infos(shards)
    by_shard = np.bincount([s.shard for s in samples], minlength=2) * 8
    assert [i.priority_updates for i in infos] == by_shard.tolist()


def test_sampler_raises_rate_limit_timeout_until_the_replay_may_serve():
    shards = make_local_shards(_config(min_size=30))
    writer = ShardedWriter(shards)
    sampler = ShardedSampler(shards, batch_size=8, in_flight=2, seed=0)
    writer.insert(make_batch(0, 20))
    writer.flush()
    with pytest.raises(RateLimitTimeout, match="min_size_to_sample"):
        sampler.sample(0.4)
    assert sampler.rate_limited >= 1
    writer.insert(make_batch(100, 40))  # shard 1 now has 40 >= 30 items; shard 0 still 20
    writer.flush()
    assert all(s.shard == 1 for s in (sampler.sample(0.4) for _ in range(5)))


def test_an_insert_a_lost_shard_never_acknowledged_goes_to_the_next_shard():
    shards = FlakyShards(make_local_shards(_config(num_shards=3)).shards)
    writer = ShardedWriter(shards, max_in_flight=1)
    shards.down = {1}
    for i in range(4):
        writer.insert(make_batch(i * 10, 10))
    writer.flush()
    assert writer.retries == 1 and writer.inserted == 40  # nothing lost
    assert [i.size for i in shard_infos(FlakyShards(shards.shards))] == [20, 0, 20]
    shards.down = set()
    writer.health.ok(1)
    writer.insert(make_batch(100, 10))
    writer.flush()
    assert sum(i.size for i in shard_infos(shards)) == 50


def test_sampler_routes_around_a_lost_shard_and_drops_its_updates():
    shards = FlakyShards(make_local_shards(_config()).shards)
    writer = ShardedWriter(shards)
    writer.insert(make_batch(0, 30))
    writer.insert(make_batch(1000, 30))
    writer.flush()
    sampler = ShardedSampler(shards, batch_size=8, in_flight=2, seed=0)
    first = sampler.sample(0.4)
    shards.down = {first.shard}
    sampler._drawn.clear()
    sampler._requests.clear()
    others = [sampler.sample(0.4) for _ in range(5)]
    assert {s.shard for s in others} == {1 - first.shard}
    assert sampler.health.errors >= 1
    sampler.update_priorities(first, np.ones(8))
    sampler.flush()
    assert sampler.dropped_updates == 1
    assert sampler.counters()["shard_errors"] == sampler.health.errors


def test_every_shard_lost_for_too_long_is_a_replay_error():
    shards = FlakyShards(make_local_shards(_config()).shards)
    shards.down = {0, 1}
    writer = ShardedWriter(shards, max_in_flight=1, give_up_s=0.0)
    writer.insert(make_batch(0, 10))
    with pytest.raises(ReplayError, match="no replay shard has answered"):
        writer.flush()


class StuckShards(FlakyShards):
    """Shard 0's samples never come back (blocked on its rate limiter, waiting for inserts);
    the other shards answer, or fail while listed in `down`."""

    def call(self, index, method, *args):
        if index == 0 and method == "sample":
            return "pending"  # a future that never finishes
        return super().call(index, method, *args)

    blocked = 0  # waits with no timeout on futures that never finish: a real sampler would hang

    def wait(self, futures, timeout=None):
        done = [f for f in futures if f != "pending"]
        if not done:
            if timeout is None:
                self.blocked += 1
                raise AssertionError("the sampler waits for ever on requests that never finish")
            time.sleep(timeout)
        return done


def test_the_sampler_asks_a_shard_that_came_back_while_others_hold_its_requests():
    shards = StuckShards(make_local_shards(_config()).shards)
    writer = ShardedWriter(shards)
    writer.insert(make_batch(0, 30))
    writer.insert(make_batch(1000, 30))
    writer.flush()
    shards.down = {1}  # restarting: its first sample fails, then it is skipped for a back-off
    sampler = ShardedSampler(shards, batch_size=8, in_flight=4, seed=0)
    threading.Timer(0.3, lambda: shards.down.clear()).start()
    sample = sampler.sample(0.4)  # shard 0 holds 3 requests that never return
    assert sample.shard == 1 and shards.blocked == 0
