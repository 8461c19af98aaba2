"""ReplayShard: one prioritized replay table (Reverb's vocabulary, Schaul et al.'s PER).

Items live in a ring of `capacity` slots (FIFO eviction). Each item is sampled with
probability p_i^α / Σ p^α, p_i = |δ_i| + ε, through a vectorized sum-tree. An item's key
is its global insertion index, i.e. generation * capacity + slot, so a priority update
for a slot that has since been overwritten is recognised and ignored.

With `durable` (a RedisSpec) the shard keeps a durable tier in Redis (redis_tier.py): inserts
are acknowledged once Redis holds them, priority updates reach it within `flush_s` seconds
(a background thread), and a shard built on existing keys reloads them and carries on.

The class is plain Python and thread-safe (one lock); textdqn/cluster makes it a Ray actor.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref

import numpy as np

from textdqn.errors import ReplayError, ReplayStorageError
from textdqn.replay_server import checkpoint as ckpt
from textdqn.replay_server.rate_limiter import RateLimiter
from textdqn.replay_server.redis_tier import PAGE, RedisSpec, RedisTier, Restored, slot_keys
from textdqn.replay_server.storage import MemoryStorage, Storage, check_schema
from textdqn.replay_server.sum_tree import SumTree
from textdqn.types import SampleResult, ShardInfo, TransitionBatch

log = logging.getLogger(__name__)


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
        durable: where the shard's durable tier lives in Redis (None: memory only). Its keys
            are reloaded here if they exist; ReplayStorageError if Redis is unreachable or
            the keys belong to another shard.
    """

    def __init__(
        self,
        capacity: int,
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        rate_limiter: RateLimiter | None = None,
        storage: Storage | None = None,
        seed: int = 0,
        durable: RedisSpec | None = None,
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
        self._restored = 0
        self._flushes = self._flush_errors = 0
        self._tier: RedisTier | None = None
        if durable is not None:
            self._open_durable(durable)

    def _open_durable(self, spec: RedisSpec) -> None:
        """Connect the Redis tier, reload what it holds, and start the write-behind flusher."""
        self._tier = RedisTier(spec, self.capacity, self.alpha, self.priority_eps)
        self._dirty = np.zeros(-(-self.capacity // PAGE), dtype=bool)  # pages of leaves to flush
        self._flushed_counters: dict[str, int] = {}
        restored = self._tier.load()
        if restored is not None:
            size = len(restored.leaves)
            self._storage.load_arrays(restored.schema, self.capacity, restored.fields)
            self._tree.set(np.arange(size), restored.leaves)
            self._keys[:size] = slot_keys(restored.next_key, self.capacity)
            self._next_key = restored.next_key
            self._max_priority = restored.max_priority
            self._samples = restored.counters["samples"]
            self._updates = restored.counters["updates"]
            self._stale_updates = restored.counters["stale_updates"]
            self._restored = size
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=_flush_loop, args=(weakref.ref(self), self._stop, spec.flush_s), daemon=True
        )
        self._flusher.start()

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
            rows = dataclasses.replace(batch, priority=None)  # the priority lives in the sum-tree
            max_priority = self._max_priority
            if batch.priority is None:
                leaf = np.full(len(batch), self._scaled(np.array([max_priority]))[0])
            else:
                max_priority = max(max_priority, float(np.abs(batch.priority).max()))
                leaf = self._scaled(batch.priority)
            if self._tier is None:
                self._apply_insert(slots, keys, rows, leaf, max_priority)
            else:
                self._insert_durably(slots, keys, rows, leaf, max_priority)
            self._limiter.record_insert(n)
            self._cond.notify_all()
        return n

    def _apply_insert(
        self,
        slots: np.ndarray,
        keys: np.ndarray,
        rows: TransitionBatch,
        leaf: np.ndarray,
        max_priority: float,
    ) -> None:
        self._storage.write(slots, rows)
        self._tree.set(slots, leaf)
        self._keys[slots] = keys
        self._next_key = int(keys[-1]) + 1
        self._max_priority = max_priority

    def _insert_durably(
        self,
        slots: np.ndarray,
        keys: np.ndarray,
        rows: TransitionBatch,
        leaf: np.ndarray,
        max_priority: float,
    ) -> None:
        """Send the rows to Redis, apply them in memory while Redis writes them, and return once
        Redis holds them; if it fails, the memory copy is put back as it was and the error raised."""
        if self._storage.schema is not None:
            check_schema(self._storage.schema, rows)
        wait = self._tier.write_insert(int(slots[0]), rows.fields(), leaf, int(keys[-1]) + 1, max_priority)
        occupied = self._keys[slots] >= 0  # slots whose current item this insert evicts
        undo = (
            self._storage.schema,
            self._storage.read(slots[occupied]) if occupied.any() else None,
            self._tree.get(slots),
            self._keys[slots],
            self._next_key,
            self._max_priority,
        )
        self._apply_insert(slots, keys, rows, leaf, max_priority)
        try:
            wait()
        except ReplayStorageError:
            schema, old_rows, old_leaves, old_keys, self._next_key, self._max_priority = undo
            if old_rows is not None:
                self._storage.write(slots[occupied], old_rows)
            if schema is None:
                self._storage.schema = None  # the failed insert was the first: allocate anew next time
            self._tree.set(slots, old_leaves)
            self._keys[slots] = old_keys
            raise

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
                if self._tier is not None:
                    self._dirty[slots[live] // PAGE] = True
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
                restored_items=self._restored,
                durable_flushes=self._flushes,
                durable_flush_errors=self._flush_errors,
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
            if self._tier is not None:
                self._rewrite_durable(size)

    def _rewrite_durable(self, size: int) -> None:
        """Make the Redis tier hold exactly the memory state (after `restore`); under the lock."""
        counters = self._counters()
        self._tier.rewrite(
            Restored(
                self._storage.schema or {},
                self._storage.arrays(size),
                self._tree.get(np.arange(size)),
                self._next_key,
                self._max_priority,
                counters,
            )
        )
        self._dirty[:] = False

    def flush(self) -> None:
        """Write pending priority updates to the durable tier now (no-op without one).

        Dirty pages of leaves are written under the shard's lock, so an insert (which writes
        its own leaves) never interleaves with a flush of the same slots.
        """
        if self._tier is None:
            return
        with self._cond:
            pages = np.flatnonzero(self._dirty)
            starts, leaves = [], []
            if len(pages):
                # Runs of dirty pages; gaps of up to 8 clean pages are written too (fewer commands).
                cut = np.flatnonzero(np.diff(pages) > 9) + 1
                for first, last in zip(
                    pages[np.r_[0, cut]], pages[np.r_[cut - 1, len(pages) - 1]], strict=True
                ):
                    start, stop = int(first) * PAGE, min(int(last + 1) * PAGE, self.capacity)
                    starts.append(start)
                    leaves.append(self._tree.get(np.arange(start, stop)))
            counters = self._counters()
            if not starts and counters == self._flushed_counters:
                return
            self._tier.write_leaves(starts, leaves, {**counters, "max_priority": repr(self._max_priority)})
            self._dirty[:] = False
            self._flushed_counters = counters
            self._flushes += 1

    def _counters(self) -> dict[str, int]:
        return {"samples": self._samples, "updates": self._updates, "stale_updates": self._stale_updates}

    def close(self) -> None:
        """Stop the flusher, write pending priority updates, and disconnect (no-op without a
        durable tier). The shard cannot insert afterwards."""
        if self._tier is None or self._stop.is_set():
            return
        self._stop.set()
        self._flusher.join()
        try:
            self.flush()
        finally:
            self._tier.close()


def _flush_loop(shard_ref: weakref.ref, stop: threading.Event, period_s: float) -> None:
    """The write-behind flusher: flush every `period_s` until stopped or the shard is gone.

    A failed flush is counted and logged, and its updates stay pending for the next one;
    inserts report a dead Redis to their caller themselves.
    """
    while not stop.wait(period_s):
        shard = shard_ref()
        if shard is None:
            return
        try:
            shard.flush()
        except ReplayStorageError as e:
            shard._flush_errors += 1
            log.warning("replay shard: priority flush failed (%d so far): %s", shard._flush_errors, e)
        del shard
