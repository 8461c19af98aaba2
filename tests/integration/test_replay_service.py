"""The sharded replay service on local Ray: 2 shards, 2 writers, 1 sampler."""

import numpy as np
import pytest

from tests.conftest import make_batch
from textdqn.cluster.replay_service import RayShards, make_shards
from textdqn.config import RateLimiterConfig, ReplayConfig
from textdqn.replay_server.client import ShardedSampler, ShardedWriter

pytestmark = pytest.mark.integration


def _config(**kw) -> ReplayConfig:
    return ReplayConfig(
        capacity=1000,
        num_shards=2,
        alpha=0.6,
        rate_limiter=RateLimiterConfig(min_size_to_sample=1, timeout_s=10),
        **kw,
    )


def test_everything_inserted_is_sampleable_with_global_weights(ray_local):
    ray = ray_local
    handles = make_shards(_config())
    shards = RayShards(handles)
    writers = [ShardedWriter(shards, writer_index=w, max_in_flight=2) for w in range(2)]
    # Writer w inserts items numbered w*1000 + t, in batches of 10, priority 1 + t % 5.
    for step in range(6):
        for w, writer in enumerate(writers):
            writer.insert(make_batch(w * 1000 + step * 10, 10, with_priority=True))
    for writer in writers:
        writer.flush()
    infos = [ray.get(s.info.remote()) for s in handles]
    assert [i.size for i in infos] == [60, 60]  # round-robin from per-writer offsets

    # Everything inserted can be sampled: 2560 draws over 120 items see every one of them.
    sampler = ShardedSampler(shards, batch_size=64, in_flight=2, seed=0)
    seen = set()
    for _ in range(40):
        sample = sampler.sample(0.7)
        seen.update(sample.batch.obs[:, 0].astype(int).tolist())
        t = sample.batch.obs[:, 0]
        np.testing.assert_allclose(sample.batch.reward, (t / 10).astype(np.float32))
    sampler.close()
    expected = {w * 1000 + t for w in range(2) for t in range(60)}
    assert seen == expected

    # Weights equal a brute-force computation over the union of both shards.
    # One request brings two batches here; each is weighted on its own.
    sampler = ShardedSampler(shards, batch_size=32, in_flight=1, seed=1, batches_per_request=2)
    sampler.sample(0.7), sampler.sample(0.7)  # the first reply teaches the sampler both masses
    samples = [sampler.sample(0.7) for _ in range(4)]
    sampler.close()
    union = np.array([1 + t % 5 for w in range(2) for t in range(60)], dtype=np.float64)
    p_all = (union + 1e-6) ** 0.6
    for sample in samples:
        assert len(sample.keys) == 32
        t = sample.batch.obs[:, 0].astype(int) % 1000
        p_i = (1 + t % 5 + 1e-6) ** 0.6 / p_all.sum()
        w = (len(union) * p_i) ** -0.7
        np.testing.assert_allclose(sample.weights, w / w.max(), rtol=1e-5)


def test_priority_updates_reach_the_right_shard(ray_local):
    ray = ray_local
    handles = make_shards(_config())
    writer = ShardedWriter(RayShards(handles), writer_index=0)
    for step in range(4):
        writer.insert(make_batch(step * 25, 25))
    writer.flush()
    sampler = ShardedSampler(RayShards(handles), batch_size=16, in_flight=2, seed=0)
    sample = sampler.sample(0.4)
    sampler.update_priorities(sample, np.full(16, 50.0))
    sampler.flush()
    sampler.close()
    infos = ray.get([s.info.remote() for s in handles])
    assert infos[sample.shard].priority_updates == 16
    assert infos[1 - sample.shard].priority_updates == 0


def _pid(handle) -> int:
    import os

    import ray

    return ray.get(handle.__ray_call__.remote(lambda _: os.getpid()))


def test_writer_and_sampler_survive_a_killed_shard_process(ray_local):
    import os
    import signal

    ray = ray_local
    handles = make_shards(_config(), max_restarts=2)
    shards = RayShards(handles)
    writer = ShardedWriter(shards, max_in_flight=4)
    sampler = ShardedSampler(shards, batch_size=16, in_flight=2, seed=0)
    for step in range(10):
        writer.insert(make_batch(step * 20, 20))
    writer.flush()
    sampler.sample(0.4)
    pid = _pid(handles[0])
    os.kill(pid, signal.SIGKILL)
    for step in range(10, 30):  # keeps inserting while shard 0 restarts: retried or routed to shard 1
        writer.insert(make_batch(step * 20, 20))
    writer.flush()
    drawn = [sampler.sample(0.4) for _ in range(30)]
    assert writer.inserted == 30 * 20  # every insert acknowledged by some shard
    infos = ray.get([h.info.remote() for h in handles])  # shard 0 is back (a new process)
    assert _pid(handles[0]) != pid
    # Memory storage: the restarted shard lost its items; everything sent after the kill is held.
    assert sum(i.size for i in infos) >= 20 * 20
    assert all(len(s.keys) == 16 for s in drawn)
    assert writer.retries + sampler.health.errors >= 1  # the loss was seen and counted
