"""The samples-per-insert rate limiter, including its blocking path and timeouts."""

import threading
import time

import pytest

from tests.conftest import make_batch
from textdqn.errors import RateLimitTimeout
from textdqn.replay_server import RateLimiter, ReplayShard


def test_min_size_gates_sampling_only():
    limiter = RateLimiter(min_size_to_sample=10)
    assert limiter.can_insert(size=0)
    assert not limiter.can_sample(size=9)
    assert limiter.can_sample(size=10)


def test_ratio_keeps_drift_inside_the_error_buffer():
    limiter = RateLimiter(min_size_to_sample=10, samples_per_insert=2.0, error_buffer=20)
    limiter.record_insert(10)
    assert limiter.drift == 0
    assert limiter.can_sample(10) and limiter.can_insert(10)
    limiter.record_sample(20)  # drift -20: the learner is at the edge of its buffer
    assert limiter.can_sample(10)
    limiter.record_sample(1)  # drift -21: the learner must wait for inserts
    assert not limiter.can_sample(10) and limiter.can_insert(10)
    limiter.record_insert(30)  # drift 60 - 21 = 39: actors are ahead, they wait
    assert not limiter.can_insert(40) and limiter.can_sample(40)
    limiter.record_sample(19)  # drift 20: back at the edge, inserts may go on
    assert limiter.can_insert(40)


def test_ratio_off_never_blocks_after_min_size():
    limiter = RateLimiter(min_size_to_sample=1, samples_per_insert=0)
    limiter.record_insert(1)
    limiter.record_sample(10**9)
    assert limiter.can_sample(1) and limiter.can_insert(1)


@pytest.mark.parametrize(
    "kwargs", [{"min_size_to_sample": 0}, {"samples_per_insert": -1}, {"error_buffer": -1}, {"timeout_s": 0}]
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RateLimiter(**kwargs)


def test_sample_times_out_and_counts_the_wait():
    limiter = RateLimiter(min_size_to_sample=5, timeout_s=0.05)
    shard = ReplayShard(capacity=10, rate_limiter=limiter)
    shard.insert(make_batch(0, 2))
    with pytest.raises(RateLimitTimeout, match="are actors running"):
        shard.sample(1)
    assert limiter.sample_timeouts == 1
    assert shard.info().sample_blocked_s >= 0.05


def test_blocked_sample_resumes_when_an_insert_arrives():
    limiter = RateLimiter(min_size_to_sample=4, timeout_s=10)
    shard = ReplayShard(capacity=10, rate_limiter=limiter)
    results = []
    sampler = threading.Thread(target=lambda: results.append(shard.sample(3)))
    sampler.start()
    time.sleep(0.05)
    assert not results  # still blocked: the table is below its minimum size
    shard.insert(make_batch(0, 4))
    sampler.join(timeout=5)
    assert len(results) == 1 and len(results[0].keys) == 3
    assert limiter.sample_blocked_s > 0


def test_blocked_insert_resumes_when_the_learner_samples():
    limiter = RateLimiter(min_size_to_sample=2, samples_per_insert=1.0, error_buffer=2, timeout_s=10)
    shard = ReplayShard(capacity=100, rate_limiter=limiter)
    shard.insert(make_batch(0, 6))  # drift (6 - 2) * 1 - 0 = 4 > 2: next insert blocks
    done = threading.Event()
    inserter = threading.Thread(target=lambda: (shard.insert(make_batch(6, 1)), done.set()))
    inserter.start()
    time.sleep(0.05)
    assert not done.is_set()
    shard.sample(2)  # drift 2: inserts may proceed
    inserter.join(timeout=5)
    assert done.is_set() and shard.info().inserts == 7
    assert shard.info().insert_blocked_s > 0
    with pytest.raises(RateLimitTimeout, match="is the learner running"):
        shard.insert(make_batch(7, 1), timeout=0.02)
