"""The sharded replay service on Ray: shard actors, a writer client and a prefetching sampler.

Call order:
  shards = make_shards(replay_config)                  # S ReplayShard actors
  writer = ReplayWriter(shards, writer_index=i)        # one per rollout actor
  writer.insert(batch) ... writer.flush()
  sampler = ReplaySampler(shards, batch_size, ...)     # one, in the learner
  sample = sampler.sample(); sampler.update_priorities(sample, new_priorities)
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import ray

from textdqn.config import ReplayConfig
from textdqn.errors import ReplayError
from textdqn.replay_server.importance import global_probabilities, importance_weights
from textdqn.replay_server.local import shard_arguments
from textdqn.replay_server.shard import ReplayShard
from textdqn.types import ShardInfo, TransitionBatch, WeightedSample

# Threads per shard actor: requests blocked by the rate limiter (samples waiting for
# inserts, or the reverse) must never take every thread, or the other side could not run.
_SHARD_CONCURRENCY = 32


def make_shards(config: ReplayConfig, seed: int = 0, name_prefix: str | None = None) -> list:
    """Start `config.num_shards` ReplayShard actors with fractional CPUs; returns their handles."""
    shard_actor = ray.remote(ReplayShard)
    shards = []
    for i in range(config.num_shards):
        options = {
            "num_cpus": config.shard_num_cpus,
            "max_concurrency": _SHARD_CONCURRENCY,
            "scheduling_strategy": "SPREAD",
        }
        if name_prefix:
            options["name"] = f"{name_prefix}-shard-{i}"
        shards.append(shard_actor.options(**options).remote(**shard_arguments(config, i, seed)))
    return shards


def wait_ready(shards: list) -> list[ShardInfo]:
    """Block until every shard actor has started; returns their infos."""
    return ray.get([s.info.remote() for s in shards])


class ReplayWriter:
    """Sends one writer's batches to the shards round-robin, from its own offset.

    At most `max_in_flight` inserts are unacknowledged; past that, `insert` waits for the
    oldest, which also surfaces a shard's errors (schema, rate-limit timeout) to the writer.
    """

    def __init__(self, shards: list, writer_index: int = 0, max_in_flight: int = 4) -> None:
        if not shards:
            raise ReplayError("ReplayWriter needs at least one shard")
        self._shards = shards
        self._next = writer_index % len(shards)
        self._max_in_flight = max(1, max_in_flight)
        self._pending: deque = deque()
        self.inserted = 0
        self.wait_s = 0.0

    def insert(self, batch: TransitionBatch) -> None:
        while len(self._pending) >= self._max_in_flight:
            start = time.perf_counter()
            self.inserted += ray.get(self._pending.popleft())
            self.wait_s += time.perf_counter() - start
        self._pending.append(self._shards[self._next].insert.remote(batch))
        self._next = (self._next + 1) % len(self._shards)

    def flush(self) -> None:
        """Wait until every insert sent so far is stored."""
        while self._pending:
            self.inserted += ray.get(self._pending.popleft())


class ReplaySampler:
    """The learner's view of the sharded replay.

    Keeps `in_flight` sample requests outstanding; each asks one shard, picked in
    proportion to its last known priority mass, for `batches_per_request` whole batches.
    No shard holds more than ceil(in_flight / S) + 1 of them, so a shard whose rate limiter
    is holding samples back cannot starve the others of requests. Weights use the
    global size and mass (see replay_server/importance.py), refreshed from every reply.
    Priority updates are sent without waiting, `coalesce` batches' worth per message; at most
    `max_pending_updates` messages stay unacknowledged.
    """

    def __init__(
        self,
        shards: list,
        batch_size: int,
        in_flight: int = 4,
        beta: float = 0.4,
        seed: int = 0,
        max_pending_updates: int = 16,
        coalesce: int = 1,
        batches_per_request: int = 1,
    ) -> None:
        if not shards:
            raise ReplayError("ReplaySampler needs at least one shard")
        self._shards = shards
        self.batch_size = int(batch_size)
        self.in_flight = max(1, in_flight)
        self.beta = beta
        self._rng = np.random.default_rng(seed)
        self._mass = np.ones(len(shards))
        self._size = np.zeros(len(shards), dtype=np.int64)
        self._requests: dict = {}  # ObjectRef -> shard index
        self._per_shard_limit = -(-self.in_flight // len(shards)) + 1
        self._updates: deque = deque()
        self._max_pending_updates = max_pending_updates
        self._coalesce = max(1, coalesce)
        self._unsent: list[tuple[list, list]] = [([], []) for _ in shards]
        self._per_request = max(1, batches_per_request)
        self._ready: deque[WeightedSample] = deque()
        self.wait_s = 0.0
        self.sampled = 0

    def refresh(self) -> list[ShardInfo]:
        """Ask every shard for its size and mass now (otherwise they come with replies)."""
        infos = ray.get([s.info.remote() for s in self._shards])
        self._mass = np.array([i.total_priority for i in infos], dtype=np.float64)
        self._size = np.array([i.size for i in infos], dtype=np.int64)
        return infos

    def _request(self) -> None:
        outstanding = np.bincount(list(self._requests.values()), minlength=len(self._shards))
        mass = np.where(outstanding < self._per_shard_limit, np.maximum(self._mass, 0), 0.0)
        if mass.sum() <= 0:  # nothing known yet: any shard with room
            mass = (outstanding < self._per_shard_limit).astype(np.float64)
        p = mass / mass.sum()
        shard = int(self._rng.choice(len(self._shards), p=p))
        request = self._shards[shard].sample.remote(self.batch_size * self._per_request)
        self._requests[request] = shard

    def sample(self) -> WeightedSample:
        """The next batch with its importance weights (waits only if none has arrived)."""
        if not self._ready:
            self._receive()
        return self._ready.popleft()

    def _receive(self) -> None:
        """Wait for one reply and cut it into `batches_per_request` weighted batches."""
        while len(self._requests) < self.in_flight:
            self._request()
        start = time.perf_counter()
        [ref], _ = ray.wait(list(self._requests), num_returns=1)
        shard = self._requests.pop(ref)
        result = ray.get(ref)
        self.wait_s += time.perf_counter() - start
        self._mass[shard] = result.shard_total
        self._size[shard] = result.shard_size
        self._request()
        probs = global_probabilities(result.probabilities, result.shard_total, float(self._mass.sum()))
        size = int(self._size.sum())
        self.sampled += len(result.keys)
        for start in range(0, len(result.keys), self.batch_size):
            part = slice(start, start + self.batch_size)
            self._ready.append(
                WeightedSample(
                    batch=result.batch.take(part),
                    weights=importance_weights(probs[part], size, self.beta),
                    keys=result.keys[part],
                    shard=shard,
                )
            )

    def update_priorities(self, sample: WeightedSample, priorities: np.ndarray) -> None:
        """Queue new priorities |δ| for `sample`'s items; each shard gets them in one request
        per `coalesce` batches (fewer, larger messages), sent without waiting."""
        keys, prios = self._unsent[sample.shard]
        keys.append(sample.keys)
        prios.append(np.asarray(priorities, dtype=np.float32))
        if len(keys) >= self._coalesce:
            self._send_updates(sample.shard)

    def _send_updates(self, shard: int) -> None:
        keys, prios = self._unsent[shard]
        if not keys:
            return
        while len(self._updates) >= self._max_pending_updates:
            ray.get(self._updates.popleft())
        self._updates.append(
            self._shards[shard].update_priorities.remote(np.concatenate(keys), np.concatenate(prios))
        )
        self._unsent[shard] = ([], [])

    def flush(self) -> None:
        """Send every queued priority update and wait until all are applied."""
        for shard in range(len(self._shards)):
            self._send_updates(shard)
        while self._updates:
            ray.get(self._updates.popleft())

    def close(self) -> None:
        """Drop outstanding sample requests (their results are discarded)."""
        for ref in self._requests:
            ray.cancel(ref)
        self._requests.clear()
        self.flush()
