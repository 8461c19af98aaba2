"""ReplayShard against a brute-force reference, on data that encodes its own answer."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_batch
from textdqn.errors import CheckpointError, ReplayError, SchemaError
from textdqn.replay_server import RateLimiter, ReplayShard
from textdqn.types import TransitionBatch


def test_rows_stay_consistent_and_keys_identify_items():
    shard = ReplayShard(capacity=100)
    shard.insert(make_batch(0, 30))
    shard.insert(make_batch(30, 30))
    result = shard.sample(64)
    t = result.batch.obs[:, 0]
    np.testing.assert_array_equal(result.keys, t)  # key = insertion index
    np.testing.assert_allclose(result.batch.reward, (t / 10).astype(np.float32))
    np.testing.assert_array_equal(result.batch.action, t % 3)
    np.testing.assert_array_equal(result.batch.next_obs, result.batch.obs + 1)
    assert result.shard_size == 60


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 40), sizes=st.lists(st.integers(1, 25), min_size=1, max_size=8))
def test_fifo_eviction_keeps_the_newest_items(capacity, sizes):
    shard = ReplayShard(capacity=capacity)
    start = 0
    for n in sizes:
        shard.insert(make_batch(start, n))
        start += n
    held = min(start, capacity)
    assert shard.info().size == held
    result = shard.sample(200)
    t = result.batch.obs[:, 0]
    assert t.min() >= start - held and t.max() < start
    np.testing.assert_array_equal(result.keys, t)


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(2, 30),
    total=st.integers(1, 80),
    updates=st.lists(st.tuples(st.integers(0, 79), st.floats(0, 10)), max_size=30),
    alpha=st.sampled_from([0.0, 0.6, 1.0]),
)
def test_priorities_and_stale_updates_match_brute_force(capacity, total, updates, alpha):
    eps = 1e-3
    shard = ReplayShard(capacity=capacity, alpha=alpha, priority_eps=eps)
    batch = make_batch(0, total, with_priority=True)
    shard.insert(batch)
    # Reference: dict key -> priority for live items (the newest `capacity` keys).
    live = {k: float(batch.priority[k]) for k in range(max(0, total - capacity), total)}
    keys = np.array([k for k, _ in updates], dtype=np.int64)
    prios = np.array([p for _, p in updates])
    applied = shard.update_priorities(keys, prios)
    expected_applied = 0
    for k, p in zip(keys, prios, strict=True):
        if k in live:
            live[k] = p
            expected_applied += 1
    assert applied == expected_applied
    info = shard.info()
    assert info.stale_updates == len(keys) - expected_applied
    ref_total = sum((abs(p) + eps) ** alpha for p in live.values())
    assert info.total_priority == pytest.approx(ref_total, rel=1e-9)


def test_sampling_frequencies_match_p_alpha():
    alpha, eps = 0.6, 1e-6
    shard = ReplayShard(capacity=8, alpha=alpha, priority_eps=eps, seed=1)
    batch = make_batch(0, 8)
    shard.insert(batch)
    prios = np.array([0.1, 1, 2, 3, 4, 5, 8, 20.0])
    shard.update_priorities(np.arange(8), prios)
    draws = np.concatenate([shard.sample(64).keys for _ in range(500)])
    freq = np.bincount(draws, minlength=8) / len(draws)
    p = (prios + eps) ** alpha
    p /= p.sum()
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / len(draws)))
    result = shard.sample(16)
    np.testing.assert_allclose(result.probabilities, p[result.keys], rtol=1e-9)
    assert result.shard_total == pytest.approx(((prios + eps) ** alpha).sum())


def test_missing_priority_gets_the_max_seen():
    shard = ReplayShard(capacity=10, alpha=1.0, priority_eps=1e-9)
    shard.insert(make_batch(0, 2, with_priority=True))  # priorities 1, 2
    shard.update_priorities(np.array([0]), np.array([7.0]))
    shard.insert(make_batch(2, 1))
    assert shard.info().total_priority == pytest.approx(7 + 2 + 7)


def test_schema_mismatch_is_a_clear_error():
    shard = ReplayShard(capacity=10)
    shard.insert(make_batch(0, 2, obs_dim=4))
    with pytest.raises(SchemaError, match="obs"):
        shard.insert(make_batch(0, 2, obs_dim=5))
    shard.insert(make_batch(0, 2, obs_dim=4, with_priority=True))  # priority is optional
    with pytest.raises(SchemaError, match="fields"):
        batch = make_batch(0, 2, obs_dim=4)
        shard.insert(TransitionBatch(**{**batch.fields(), "next_action_mask": np.ones((2, 3), bool)}))


def test_empty_shard_with_zero_min_size_errors():
    shard = ReplayShard(capacity=10, rate_limiter=RateLimiter(min_size_to_sample=1, timeout_s=0.01))
    with pytest.raises(TimeoutError):
        shard.sample(1)
    with pytest.raises(ReplayError):
        ReplayShard(capacity=10, rate_limiter=_always_sample()).sample(1)


def _always_sample():
    limiter = RateLimiter(min_size_to_sample=1)
    limiter.can_sample = lambda size: True
    return limiter


def test_checkpoint_round_trip(tmp_path):
    shard = ReplayShard(capacity=16, alpha=0.7, seed=3)
    shard.insert(make_batch(0, 20, with_priority=True))
    shard.update_priorities(np.array([5, 18]), np.array([0.5, 9.0]))  # 5 is stale
    shard.checkpoint(tmp_path)
    restored = ReplayShard(capacity=16, alpha=0.7)
    restored.restore(tmp_path)
    assert restored.info() == shard.info()
    result = restored.sample(50)
    np.testing.assert_array_equal(result.batch.obs[:, 0], result.keys)
    assert result.keys.min() >= 4
    # Inserting continues the key sequence where the original left off.
    restored.insert(make_batch(20, 1))
    assert restored.update_priorities(np.array([20, 4]), np.array([1.0, 1.0])) == 1


def test_checkpoint_mismatch_and_corruption_are_clear(tmp_path):
    shard = ReplayShard(capacity=16)
    shard.insert(make_batch(0, 5))
    shard.checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="capacity=16"):
        ReplayShard(capacity=32).restore(tmp_path)
    with pytest.raises(CheckpointError, match="alpha"):
        ReplayShard(capacity=16, alpha=0.5).restore(tmp_path)
    npz = tmp_path / "replay_shard.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        ReplayShard(capacity=16).restore(tmp_path)
    (tmp_path / "replay_shard.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not JSON"):
        ReplayShard(capacity=16).restore(tmp_path)
    (tmp_path / "replay_shard.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a replay shard checkpoint"):
        ReplayShard(capacity=16).restore(tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        ReplayShard(capacity=16).restore(tmp_path / "nowhere")


def test_a_memory_shard_has_nothing_to_flush_and_reports_no_durable_tier():
    shard = ReplayShard(capacity=10)
    shard.insert(make_batch(0, 5))
    shard.update_priorities(np.array([1]), np.array([2.0]))
    shard.flush()
    shard.close()
    info = shard.info()
    assert (info.restored_items, info.durable_flushes, info.durable_flush_errors) == (0, 0, 0)
    assert info.size == 5 and info.priority_updates == 1
