"""A samples-per-insert rate limiter, after Reverb's SampleToInsertRatio.

Ape-X wants the learner to replay each transition a bounded number of times: with actors
far faster than the learner, replay turns over before anything is learnt from it; with a
fast learner, it overfits a few transitions. The limiter keeps

    drift = (inserts - min_size_to_sample) * samples_per_insert - samples

inside [-error_buffer, +error_buffer] (units: sampled transitions). It checks the state
*before* an operation, so a batch of any size can always proceed once the state allows
it; the overshoot is bounded by one batch. Counting is done by the caller holding a lock;
the blocking wrappers wait on the caller's threading.Condition.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from textdqn.errors import RateLimitTimeout


class RateLimiter:
    """Answers can-insert / can-sample and blocks with a timeout when asked to.

    Args:
        min_size_to_sample: items the table must hold before any sample is allowed.
        samples_per_insert: target sampled transitions per inserted one; 0 disables the
            ratio (then only min_size_to_sample applies).
        error_buffer: allowed drift from the target, in sampled transitions.
        timeout_s: default wait for the blocking wrappers, in seconds.
    """

    def __init__(
        self,
        min_size_to_sample: int = 1,
        samples_per_insert: float = 0.0,
        error_buffer: float = math.inf,
        timeout_s: float = 60.0,
    ) -> None:
        if min_size_to_sample < 1:
            raise ValueError(f"min_size_to_sample must be >= 1, got {min_size_to_sample}")
        if samples_per_insert < 0:
            raise ValueError(f"samples_per_insert must be >= 0, got {samples_per_insert}")
        if error_buffer < 0:
            raise ValueError(f"error_buffer must be >= 0, got {error_buffer}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.min_size_to_sample = int(min_size_to_sample)
        self.samples_per_insert = float(samples_per_insert)
        self.error_buffer = float(error_buffer)
        self.timeout_s = float(timeout_s)
        self.inserts = 0
        self.samples = 0
        self.insert_blocked_s = 0.0
        self.sample_blocked_s = 0.0
        self.insert_timeouts = 0
        self.sample_timeouts = 0

    @property
    def drift(self) -> float:
        """Sampled transitions ahead (< 0) or behind (> 0) the target ratio."""
        over = self.inserts - self.min_size_to_sample
        return over * self.samples_per_insert - self.samples

    def can_insert(self, size: int) -> bool:
        """Whether an insert may proceed now, the table holding `size` items."""
        if self.samples_per_insert == 0 or size < self.min_size_to_sample:
            return True
        return self.drift <= self.error_buffer

    def can_sample(self, size: int) -> bool:
        """Whether a sample may proceed now, the table holding `size` items."""
        if size < self.min_size_to_sample:
            return False
        return self.samples_per_insert == 0 or self.drift >= -self.error_buffer

    def record_insert(self, n: int) -> None:
        self.inserts += int(n)

    def record_sample(self, n: int) -> None:
        self.samples += int(n)

    def await_insert(
        self, cond: threading.Condition, size: Callable[[], int], timeout: float | None = None
    ) -> None:
        """Wait (holding `cond`) until an insert may proceed; RateLimitTimeout past `timeout`."""
        self.insert_blocked_s += self._wait(cond, lambda: self.can_insert(size()), timeout, "insert")

    def await_sample(
        self, cond: threading.Condition, size: Callable[[], int], timeout: float | None = None
    ) -> None:
        """Wait (holding `cond`) until a sample may proceed; RateLimitTimeout past `timeout`."""
        self.sample_blocked_s += self._wait(cond, lambda: self.can_sample(size()), timeout, "sample")

    def _wait(
        self, cond: threading.Condition, ready: Callable[[], bool], timeout: float | None, op: str
    ) -> float:
        if ready():
            return 0.0
        timeout = self.timeout_s if timeout is None else timeout
        start = time.monotonic()
        deadline = start + timeout
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = time.monotonic() - start
                if op == "insert":
                    self.insert_timeouts += 1
                    self.insert_blocked_s += waited
                else:
                    self.sample_timeouts += 1
                    self.sample_blocked_s += waited
                raise RateLimitTimeout(self._timeout_message(op, waited))
            cond.wait(remaining)
        return time.monotonic() - start

    def _timeout_message(self, op: str, waited: float) -> str:
        other = "samples (is the learner running?)" if op == "insert" else "inserts (are actors running?)"
        return (
            f"replay {op} waited {waited:.1f}s for {other}: inserts={self.inserts}, "
            f"samples={self.samples}, min_size_to_sample={self.min_size_to_sample}, "
            f"samples_per_insert={self.samples_per_insert}, error_buffer={self.error_buffer}. "
            "Raise replay.rate_limiter.timeout_s or error_buffer, or set samples_per_insert=0 "
            "to turn the ratio off."
        )

    def state(self) -> dict[str, float]:
        """Counters, for checkpoints and info()."""
        return {
            "inserts": self.inserts,
            "samples": self.samples,
            "insert_blocked_s": self.insert_blocked_s,
            "sample_blocked_s": self.sample_blocked_s,
            "insert_timeouts": self.insert_timeouts,
            "sample_timeouts": self.sample_timeouts,
        }

    def load_state(self, state: dict[str, float]) -> None:
        self.inserts = int(state["inserts"])
        self.samples = int(state["samples"])
        self.insert_blocked_s = float(state["insert_blocked_s"])
        self.sample_blocked_s = float(state["sample_blocked_s"])
        self.insert_timeouts = int(state["insert_timeouts"])
        self.sample_timeouts = int(state["sample_timeouts"])
