"""LocalReplay: S replay shards in this process, behind the sharded client's interface.

Serial mode uses it; textdqn/cluster/replay_service.py is the same client over Ray actors.
Inserts go round-robin; a sample picks one shard in proportion to its priority mass and
weighs items with the global size and mass, exactly as the Ray sampler does.
"""

from __future__ import annotations

import math

import numpy as np

from textdqn.config import ReplayConfig
from textdqn.replay_server.importance import global_probabilities, importance_weights
from textdqn.replay_server.rate_limiter import RateLimiter
from textdqn.replay_server.shard import ReplayShard
from textdqn.types import ShardInfo, TransitionBatch, WeightedSample


def shard_arguments(config: ReplayConfig, index: int, seed: int = 0) -> dict:
    """ReplayShard's constructor arguments for shard `index` of `config.num_shards` (the
    same in serial mode and on Ray)."""
    limiter = config.rate_limiter
    return {
        "capacity": math.ceil(config.capacity / config.num_shards),
        "alpha": config.alpha,
        "priority_eps": config.priority_eps,
        "rate_limiter": RateLimiter(
            min_size_to_sample=limiter.min_size_to_sample,
            samples_per_insert=limiter.samples_per_insert,
            error_buffer=limiter.error_buffer,
            timeout_s=limiter.timeout_s,
        ),
        "seed": seed * 1009 + index,
    }


class LocalReplay:
    """In-process sharded replay with the writer and sampler interfaces combined."""

    def __init__(self, config: ReplayConfig, seed: int = 0) -> None:
        self.shards = [ReplayShard(**shard_arguments(config, i, seed)) for i in range(config.num_shards)]
        self._next = 0
        self._rng = np.random.default_rng(seed)
        self.beta = config.beta

    def insert(self, batch: TransitionBatch) -> None:
        self.shards[self._next].insert(batch, timeout=0.0)
        self._next = (self._next + 1) % len(self.shards)

    def can_sample(self) -> bool:
        """Whether every shard's rate limiter lets a sample through now."""
        return all(s.can_sample() for s in self.shards)

    def sample(self, n: int) -> WeightedSample:
        infos = self.info()
        mass = np.array([i.total_priority for i in infos])
        shard = int(self._rng.choice(len(mass), p=mass / mass.sum()))
        result = self.shards[shard].sample(n, timeout=0.0)
        probs = global_probabilities(result.probabilities, result.shard_total, float(mass.sum()))
        size = sum(i.size for i in infos)
        return WeightedSample(
            batch=result.batch,
            weights=importance_weights(probs, size, self.beta),
            keys=result.keys,
            shard=shard,
        )

    def update_priorities(self, sample: WeightedSample, priorities: np.ndarray) -> None:
        self.shards[sample.shard].update_priorities(sample.keys, priorities)

    def info(self) -> list[ShardInfo]:
        return [s.info() for s in self.shards]
