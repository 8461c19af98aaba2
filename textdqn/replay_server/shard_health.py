"""Which replay shards a client should skip for now (plain Python, no Ray)."""

from __future__ import annotations

import time

import numpy as np

from textdqn.errors import ReplayError


class ShardHealth:
    """Which shards to skip: one that failed is skipped for a back-off that doubles while it
    keeps failing; ReplayError once every shard has been failing for `give_up_s` seconds."""

    def __init__(self, num_shards: int, give_up_s: float = 120.0) -> None:
        self.give_up_s = give_up_s
        self._down_until = np.zeros(num_shards)
        self._failing_since = np.full(num_shards, np.inf)
        self._failures = np.zeros(num_shards, dtype=np.int64)
        self.errors = 0

    def failed(self, shard: int, error: Exception) -> None:
        now = time.monotonic()
        self.errors += 1
        self._failures[shard] += 1
        self._failing_since[shard] = min(self._failing_since[shard], now)
        self._down_until[shard] = now + min(8.0, 0.5 * 2.0 ** (self._failures[shard] - 1))
        if np.all(now - self._failing_since >= self.give_up_s):
            raise ReplayError(
                f"no replay shard has answered for {self.give_up_s:.0f}s (last error: {error}); "
                "check that the shard actors can run (ray status) and that Redis is reachable"
            ) from error

    def ok(self, shard: int) -> None:
        self._failures[shard] = 0
        self._failing_since[shard] = np.inf
        self._down_until[shard] = 0.0

    def live(self) -> np.ndarray:
        """bool [S]: shards not in back-off now; waits for the first to come back if none is."""
        now = time.monotonic()
        live = self._down_until <= now
        if not live.any():
            time.sleep(max(0.0, float(self._down_until.min()) - now))
            live = self._down_until <= time.monotonic()
        return live
