"""The sharded replay client: one writer per actor, one sampler in the learner.

Both are plain classes over a ShardSet (textdqn/interfaces.py): `LocalShards` below in
serial mode and unit tests, Ray actors in textdqn/cluster/replay_service.py. Every mode
runs this code.

Writer: batches go round-robin from the writer's own offset, at most `max_in_flight`
unacknowledged; an insert that a lost shard never acknowledged is sent again to the next
live shard (counted in `retries`), so nothing is dropped while a shard restarts.

Sampler: keeps `in_flight` sample requests outstanding; each asks one shard, picked in
proportion to its last known priority mass, for `batches_per_request` whole batches; no
shard holds more than ceil(in_flight / S) + 1 of them, so a shard whose rate limiter holds
samples back cannot take every request. Importance weights use the *global* size and mass
(replay_server/importance.py) and the β of the call. Priority updates go behind, `coalesce`
batches per message, at most `max_pending_updates` unacknowledged; those for a lost shard
are dropped and counted (priorities are write-behind everywhere).

A shard that fails (ShardUnavailable) is skipped for a back-off that doubles from 0.5 s to
8 s while it keeps failing; when every shard has failed for `give_up_s`, ReplayError.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from textdqn.config import ReplayConfig
from textdqn.errors import RateLimitTimeout, ReplayError, ShardUnavailable
from textdqn.interfaces import ShardSet
from textdqn.replay_server.importance import global_probabilities, importance_weights
from textdqn.replay_server.rate_limiter import RateLimiter
from textdqn.replay_server.shard import ReplayShard
from textdqn.replay_server.shard_health import ShardHealth
from textdqn.types import ShardInfo, TransitionBatch, WeightedSample


def shard_arguments(
    config: ReplayConfig,
    index: int,
    seed: int = 0,
    ratio: bool = True,
    run_id: str = "",
    redis_url: str | None = None,
) -> dict:
    """ReplayShard's constructor arguments for shard `index` of `config.num_shards` (the
    same in every mode). `ratio=False` drops the samples-per-insert ratio from the limiter,
    keeping min_size_to_sample: serial mode keeps the ratio itself, since one process
    cannot block one side until the other catches up. With redis storage, `run_id` names
    the shard's keys and `redis_url` replaces replay.redis_url (the run's private server)."""
    limiter = config.rate_limiter
    durable = None
    if config.storage == "redis":
        from textdqn.replay_server.redis_connection import redis_spec

        durable = redis_spec(config, run_id, index, redis_url)
    return {
        "durable": durable,
        "capacity": math.ceil(config.capacity / config.num_shards),
        "alpha": config.alpha,
        "priority_eps": config.priority_eps,
        "rate_limiter": RateLimiter(
            min_size_to_sample=limiter.min_size_to_sample,
            samples_per_insert=limiter.samples_per_insert if ratio else 0.0,
            error_buffer=limiter.error_buffer,
            timeout_s=limiter.timeout_s,
        ),
        "seed": seed * 1009 + index,
    }


# A shard that answered a sample with RateLimitTimeout is not asked again for this long.
_LIMITED_S = 0.25
# A sample request waits at most this long in a shard whose rate limiter holds it back (the
# actors are behind on that shard), then answers RateLimitTimeout. Requests waiting there
# longer could take every one of the sampler's slots while another shard, whose inserts wait
# for samples, gets none: the actors stall on that shard, and the learner on the others.
_SAMPLE_WAIT_S = 0.05
# The sampler waits at most this long for a reply before it fills free request slots again.
# Without it, requests blocked on one shard's rate limiter (waiting for inserts) could hold
# the sampler while another shard, back from a restart, waits for samples before it takes
# the inserts the first one needs: each side waiting on the other until a timeout.
_REFILL_S = 0.5


@dataclasses.dataclass(eq=False)  # hashable by identity, like an ObjectRef
class _Done:
    """A future that finished when it was made (LocalShards runs calls on the spot)."""

    value: Any = None
    error: BaseException | None = None


class LocalShards:
    """ReplayShards in this process behind the ShardSet interface.

    Calls run at once with no blocking (a rate-limited call fails with RateLimitTimeout
    straight away), so one thread can drive writers, sampler and learner in turn.
    """

    _NO_WAIT = frozenset({"insert", "sample"})

    def __init__(self, shards: list[ReplayShard]) -> None:
        self.shards = shards

    def __len__(self) -> int:
        return len(self.shards)

    def call(self, index: int, method: str, *args: Any) -> _Done:
        kwargs = {}
        if method in self._NO_WAIT:  # a rate-limited call fails at once, whatever wait was asked
            args, kwargs = args[:1], {"timeout": 0.0}
        try:
            return _Done(value=getattr(self.shards[index], method)(*args, **kwargs))
        except Exception as e:  # handed to whoever reads the future, as Ray does
            return _Done(error=e)

    def wait(self, futures: Sequence[_Done], timeout: float | None = None) -> list[_Done]:
        return list(futures)

    def result(self, future: _Done) -> Any:
        if future.error is not None:
            raise future.error
        return future.value


def make_local_shards(config: ReplayConfig, seed: int = 0, ratio: bool = True) -> LocalShards:
    """`config.num_shards` in-process shards (serial mode, unit tests, benchmarks)."""
    return LocalShards(
        [ReplayShard(**shard_arguments(config, i, seed, ratio)) for i in range(config.num_shards)]
    )


def shard_infos(shards: ShardSet) -> list[ShardInfo]:
    """Every shard's info now (a lost shard raises ShardUnavailable)."""
    futures = [shards.call(i, "info") for i in range(len(shards))]
    return [shards.result(f) for f in futures]


class ShardedWriter:
    """Sends one writer's batches to the shards round-robin, from its own offset.

    At most `max_in_flight` inserts are unacknowledged; past that, `insert` waits for the
    oldest, which also surfaces a shard's errors (schema, storage). An insert that waited
    out the shard's rate-limit timeout is sent to the next shard (counted in `rate_limited`),
    as the learner retries its samples: a slow side is waited for, never a reason to stop.
    """

    def __init__(
        self, shards: ShardSet, writer_index: int = 0, max_in_flight: int = 4, give_up_s: float = 120.0
    ) -> None:
        if len(shards) == 0:
            raise ReplayError("a replay writer needs at least one shard")
        self._shards = shards
        self._next = writer_index % len(shards)
        self._max_in_flight = max(1, max_in_flight)
        self._pending: deque[tuple[Any, int, TransitionBatch]] = deque()
        self.health = ShardHealth(len(shards), give_up_s)
        self.inserted = 0
        self.retries = 0
        self.rate_limited = 0
        self.wait_s = 0.0

    def insert(self, batch: TransitionBatch) -> None:
        while len(self._pending) >= self._max_in_flight:
            self._settle_oldest()
        self._send(batch)

    def flush(self) -> None:
        """Wait until every insert sent so far is stored (resending those a lost shard dropped)."""
        while self._pending:
            self._settle_oldest()

    def _send(self, batch: TransitionBatch) -> None:
        live = self.health.live()
        while not live[self._next]:
            self._next = (self._next + 1) % len(live)
        shard = self._next
        self._next = (self._next + 1) % len(live)
        self._pending.append((self._shards.call(shard, "insert", batch), shard, batch))

    def _settle_oldest(self) -> None:
        future, shard, batch = self._pending.popleft()
        start = time.perf_counter()
        try:
            self._shards.wait([future])
            self.inserted += self._shards.result(future)
            self.health.ok(shard)
        except ShardUnavailable as e:
            self.retries += 1
            self.health.failed(shard, e)
            self._send(batch)
        except RateLimitTimeout:  # the learner is behind on that shard: try the next one
            self.rate_limited += 1
            self._send(batch)
        finally:
            self.wait_s += time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class DrawnBatch:
    """A sampled batch before weighting: probabilities over the union of shards and N."""

    batch: TransitionBatch
    keys: np.ndarray
    shard: int
    probabilities: np.ndarray
    size: int

    def weighted(self, beta: float) -> WeightedSample:
        """The batch with importance weights (N·P(i))^-β / max."""
        w = importance_weights(self.probabilities, self.size, beta)
        return WeightedSample(batch=self.batch, weights=w, keys=self.keys, shard=self.shard)


class ShardedSampler:
    """The learner's view of the sharded replay (see the module docstring)."""

    def __init__(
        self,
        shards: ShardSet,
        batch_size: int,
        in_flight: int = 4,
        seed: int = 0,
        max_pending_updates: int = 16,
        coalesce: int = 1,
        batches_per_request: int = 1,
        give_up_s: float = 120.0,
    ) -> None:
        if len(shards) == 0:
            raise ReplayError("a replay sampler needs at least one shard")
        n = len(shards)
        self._shards = shards
        self.batch_size = int(batch_size)
        self.in_flight = max(1, in_flight)
        self._rng = np.random.default_rng(seed)
        self._mass = np.ones(n)
        self._size = np.zeros(n, dtype=np.int64)
        self._limited_until = np.zeros(n)  # a rate-limited shard is asked again after this
        self._requests: dict = {}  # future -> shard index
        self._per_shard_limit = -(-self.in_flight // n) + 1
        self._updates: deque = deque()
        self._max_pending_updates = max_pending_updates
        self._coalesce = max(1, coalesce)
        self._unsent: list[tuple[list, list]] = [([], []) for _ in range(n)]
        self._per_request = max(1, batches_per_request)
        self._drawn: deque[DrawnBatch] = deque()
        self.health = ShardHealth(n, give_up_s)
        self.wait_s = 0.0
        self.sampled = 0
        self.rate_limited = 0
        self.dropped_updates = 0

    def sample(self, beta: float, timeout: float | None = None) -> WeightedSample:
        """The next batch with importance weights for `beta`; RateLimitTimeout when no shard
        may serve a sample now (replay below min_size_to_sample, or actors behind)."""
        return self.draw().weighted(beta)

    def draw(self) -> DrawnBatch:
        """The next batch without weights (waits only if none has arrived)."""
        if not self._drawn:
            self._receive()
        return self._drawn.popleft()

    def _request(self) -> None:
        n = len(self._shards)
        outstanding = np.bincount(list(self._requests.values()), minlength=n)
        limited = self._limited_until > time.monotonic()
        room = (outstanding < self._per_shard_limit) & self.health.live() & ~limited
        if not room.any():
            return
        mass = np.where(room, np.maximum(self._mass, 0), 0.0)
        p = mass / mass.sum() if mass.sum() > 0 else room / room.sum()
        shard = int(self._rng.choice(n, p=p))
        n_items = self.batch_size * self._per_request
        self._requests[self._shards.call(shard, "sample", n_items, _SAMPLE_WAIT_S)] = shard

    def _receive(self) -> None:
        """Wait for one reply and cut it into `batches_per_request` drawn batches."""
        while True:
            while len(self._requests) < self.in_flight:
                before = len(self._requests)
                self._request()
                if len(self._requests) == before:
                    break
            if not self._requests:  # every shard was rate-limited just now
                self._limited_until[:] = 0.0
                raise RateLimitTimeout(
                    "no replay shard may serve a sample now (below replay.rate_limiter."
                    "min_size_to_sample, or the actors are behind the samples-per-insert ratio)"
                )
            start = time.perf_counter()
            ready = self._shards.wait(list(self._requests), timeout=_REFILL_S)
            if not ready:  # ask shards that came back meanwhile (see _REFILL_S)
                self.wait_s += time.perf_counter() - start
                continue
            ref = ready[0]
            shard = self._requests.pop(ref)
            try:
                result = self._shards.result(ref)
            except RateLimitTimeout:
                self.rate_limited += 1
                self._limited_until[shard] = time.monotonic() + _LIMITED_S
                continue
            except ShardUnavailable as e:
                self.health.failed(shard, e)
                continue
            finally:
                self.wait_s += time.perf_counter() - start
            self.health.ok(shard)
            self._take(shard, result)
            return

    def _take(self, shard: int, result) -> None:
        self._mass[shard] = result.shard_total
        self._size[shard] = result.shard_size
        probs = global_probabilities(result.probabilities, result.shard_total, float(self._mass.sum()))
        size = int(self._size.sum())
        self.sampled += len(result.keys)
        for start in range(0, len(result.keys), self.batch_size):
            part = slice(start, start + self.batch_size)
            self._drawn.append(
                DrawnBatch(result.batch.take(part), result.keys[part], shard, probs[part], size)
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
            self._settle_update()
        future = self._shards.call(shard, "update_priorities", np.concatenate(keys), np.concatenate(prios))
        self._updates.append(future)
        self._unsent[shard] = ([], [])

    def _settle_update(self) -> None:
        future = self._updates.popleft()
        try:
            self._shards.wait([future])
            self._shards.result(future)
        except ShardUnavailable:
            self.dropped_updates += 1

    def flush(self) -> None:
        """Send every queued priority update and wait until all are applied."""
        for shard in range(len(self._shards)):
            self._send_updates(shard)
        while self._updates:
            self._settle_update()

    def counters(self) -> dict[str, float]:
        """What the sampler counted: waits, rate-limited replies, lost-shard errors, dropped updates."""
        return {
            "sample_wait_s": self.wait_s,
            "rate_limited": self.rate_limited,
            "shard_errors": self.health.errors,
            "dropped_updates": self.dropped_updates,
        }

    def close(self) -> None:
        """Drop outstanding sample requests and send what is queued."""
        self._requests.clear()
        self.flush()


def make_sampler(config: ReplayConfig, shards: ShardSet, batch_size: int, seed: int = 0) -> ShardedSampler:
    """The learner's sampler with the replay section's request settings."""
    return ShardedSampler(
        shards,
        batch_size=batch_size,
        in_flight=config.sample_in_flight,
        seed=seed,
        coalesce=config.priority_update_coalesce,
        batches_per_request=config.sample_batches_per_request,
    )
