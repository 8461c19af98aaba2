"""ReplayShard: one prioritized replay table (Reverb's vocabulary, Schaul et al.'s PER).

Items live in a ring of `capacity` slots (FIFO eviction). Each item is sampled with
probability p_i^α / Σ p^α, p_i = |δ_i| + ε, through a vectorized sum-tree. An item's key
is its global insertion index, i.e. generation * capacity + slot, so a priority update
for a slot that has since been overwritten is recognised and ignored.

The class is plain Python and thread-safe (one lock); textdqn/cluster makes it a Ray actor.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from textdqn.errors import ReplayError
from textdqn.replay_server import checkpoint as ckpt
from textdqn.replay_server.rate_limiter import RateLimiter
from textdqn.replay_server.storage import MemoryStorage, Storage
from textdqn.replay_server.sum_tree import SumTree
from textdqn.types import SampleResult, ShardInfo, TransitionBatch


class ReplayShard:
    """A prioritized replay table.

    Args:
        capacity: items held before the oldest is evicted.
        alpha: priority exponent (0 = uniform sampling).
        priority_eps: added to |δ| so no item's probability is 0.
        rate_limiter: optional samples-per-insert limiter; without one, sampling needs
            only a non-empty table.
        storage: where rows live; in-memory numpy arrays by default.
        seed: seed of the sampling generator.
    """

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        rate_limiter: RateLimiter | None = None,
        storage: Storage | None = None,
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if priority_eps <= 0:
            raise ValueError(f"priority_eps must be > 0, got {priority_eps}")
        self.capacity = int(capacity)
        self.alpha = float(alpha)
        self.priority_eps = float(priority_eps)
        self._limiter = rate_limiter or RateLimiter(min_size_to_sample=1)
        self._storage = storage if storage is not None else MemoryStorage(self.capacity)
        self._rng = np.random.default_rng(seed)
        self._tree = SumTree(self.capacity)
        self._keys = np.full(self.capacity, -1, dtype=np.int64)
        self._cond = threading.Condition()
        self._next_key = 0  # == total inserts
        self._max_priority = 1.0
        self._samples = 0
        self._updates = 0
        self._stale_updates = 0

    @property
    def size(self) -> int:
        return min(self._next_key, self.capacity)

    def _scaled(self, priorities: np.ndarray) -> np.ndarray:
        """(|p| + ε)^α, the sum-tree's leaf values."""
        p = np.abs(np.asarray(priorities, dtype=np.float64)) + self.priority_eps
        return p if self.alpha == 1 else p**self.alpha

    def insert(self, batch: TransitionBatch, timeout: float | None = None) -> int:
        """Add `batch` (evicting the oldest items at capacity); returns the items added.

        Items without an initial priority get the largest priority seen so far.
        Blocks up to `timeout` seconds (the limiter's default when None) if the rate
        limiter says the learner is behind.
        """
        n = len(batch)
        if n == 0:
            return 0
        skip = max(0, n - self.capacity)  # only the newest `capacity` rows would survive
        if skip:
            batch = batch.take(slice(skip, n))
        with self._cond:
            self._limiter.await_insert(self._cond, lambda: self.size, timeout)
            keys = self._next_key + skip + np.arange(n - skip, dtype=np.int64)
            slots = keys % self.capacity
            # The priority lives in the sum-tree, not in the rows.
            self._storage.write(slots, dataclasses.replace(batch, priority=None))
            if batch.priority is None:
                leaf = np.full(len(batch), self._scaled(np.array([self._max_priority]))[0])
            else:
                self._max_priority = max(self._max_priority, float(np.abs(batch.priority).max()))
                leaf = self._scaled(batch.priority)
            self._tree.set(slots, leaf)
            self._keys[slots] = keys
            self._next_key += n
            self._limiter.record_insert(n)
            self._cond.notify_all()
        return n

    def sample(self, n: int, timeout: float | None = None) -> SampleResult:
        """n items drawn with probability p^α / Σ p^α (with replacement).

        Blocks up to `timeout` seconds while the table is below its minimum size or the
        rate limiter says the actors are behind; raises RateLimitTimeout after that.
        """
        if n < 1:
            raise ValueError(f"sample size must be >= 1, got {n}")
        with self._cond:
            self._limiter.await_sample(self._cond, lambda: self.size, timeout)
            size = self.size
            if size == 0:
                raise ReplayError("cannot sample from an empty replay shard; insert first")
            # Slots past `size` are empty leaves, which the search never returns.
            slots = self._tree.sample(n, self._rng)
            total = self._tree.total
            probabilities = self._tree.get(slots) / total
            result = SampleResult(
                keys=self._keys[slots],
                batch=self._storage.read(slots),
                probabilities=probabilities,
                shard_total=total,
                shard_size=size,
            )
            self._samples += n
            self._limiter.record_sample(n)
            self._cond.notify_all()
        return result

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """Set new priorities |δ| for sampled `keys`; returns how many were applied.

        Keys whose slot was overwritten since they were sampled are ignored and counted.
        """
        keys = np.asarray(keys, dtype=np.int64)
        priorities = np.asarray(priorities, dtype=np.float64)
        if keys.shape != priorities.shape:
            raise ValueError(f"keys {keys.shape} and priorities {priorities.shape} differ in shape")
        if not np.all(np.isfinite(priorities)):
            raise ValueError("priorities must be finite; check the learner's TD errors for NaN/inf")
        with self._cond:
            slots = keys % self.capacity
            live = self._keys[slots] == keys
            n_live = int(live.sum())
            if n_live:
                self._tree.set(slots[live], self._scaled(priorities[live]))
                self._max_priority = max(self._max_priority, float(np.abs(priorities[live]).max()))
            self._updates += n_live
            self._stale_updates += len(keys) - n_live
        return n_live

    def can_sample(self) -> bool:
        """Whether a sample would be served now without waiting on the rate limiter."""
        with self._cond:
            return self._limiter.can_sample(self.size)

    def bytes_per_item(self) -> int:
        """Bytes one stored transition takes: its rows, its key and its sum-tree leaf."""
        return self._storage.nbytes_per_item() + self._keys.itemsize + 2 * 8

    def info(self) -> ShardInfo:
        """Size, capacity, priority mass and counters."""
        with self._cond:
            return ShardInfo(
                size=self.size,
                capacity=self.capacity,
                total_priority=self._tree.total,
                inserts=self._next_key,
                samples=self._samples,
                priority_updates=self._updates,
                stale_updates=self._stale_updates,
                insert_blocked_s=self._limiter.insert_blocked_s,
                sample_blocked_s=self._limiter.sample_blocked_s,
            )

    def checkpoint(self, directory: str) -> None:
        """Write items, priorities, keys and counters to `directory` (npz + JSON, no pickle)."""
        with self._cond:
            size = self.size
            meta = {
                "capacity": self.capacity,
                "alpha": self.alpha,
                "priority_eps": self.priority_eps,
                "next_key": self._next_key,
                "max_priority": self._max_priority,
                "samples": self._samples,
                "updates": self._updates,
                "stale_updates": self._stale_updates,
                "limiter": self._limiter.state(),
                "schema": self._storage.schema,
            }
            arrays = {
                "leaves": self._tree.get(np.arange(size)),
                "keys": self._keys[:size],
                **{f"field.{k}": v for k, v in self._storage.arrays(size).items()},
            }
            ckpt.write(directory, meta, arrays)

    def restore(self, directory: str) -> None:
        """Load a checkpoint written by `checkpoint`; CheckpointError if it is corrupted or
        was written by a shard with another capacity or alpha."""
        meta, arrays = ckpt.read(directory)
        ckpt.expect_equal(meta, "capacity", self.capacity, "replay.capacity / replay.num_shards")
        ckpt.expect_equal(meta, "alpha", self.alpha, "replay.alpha")
        size = min(int(meta["next_key"]), self.capacity)
        ckpt.expect_rows(arrays, size)
        with self._cond:
            self._tree = SumTree(self.capacity)
            self._tree.set(np.arange(size), arrays["leaves"])
            self._keys[:] = -1
            self._keys[:size] = arrays["keys"]
            if meta["schema"] is not None:
                schema = {k: (d, tuple(s)) for k, (d, s) in meta["schema"].items()}
                fields = {k[len("field.") :]: v for k, v in arrays.items() if k.startswith("field.")}
                ckpt.expect_schema(schema, fields)
                self._storage.load_arrays(schema, self.capacity, fields)
            self._next_key = int(meta["next_key"])
            self._max_priority = float(meta["max_priority"])
            self._samples = int(meta["samples"])
            self._updates = int(meta["updates"])
            self._stale_updates = int(meta["stale_updates"])
            self._limiter.load_state(meta["limiter"])
