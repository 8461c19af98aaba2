"""A background thread that keeps the next few samples ready for the learner."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from textdqn.errors import RateLimitTimeout

T = TypeVar("T")
_STOP = object()


class Prefetcher(Generic[T]):
    """Calls `fetch()` on a daemon thread, keeping up to `depth` results queued.

    `get()` returns the oldest result, waiting only when none is ready (the wait is
    counted in `wait_s`); an exception raised by `fetch` is re-raised by `get`, and the
    thread stops.
    """

    def __init__(self, fetch: Callable[[], T], depth: int = 4) -> None:
        self._fetch = fetch
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self.wait_s = 0.0
        self._thread = threading.Thread(target=self._run, name="textdqn-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._fetch()
            except BaseException as e:  # handed to the consumer, which decides
                item = e
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def get(self, timeout: float | None = None) -> T | None:
        """The next result; None if `timeout` seconds pass first."""
        start = time.perf_counter()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        finally:
            self.wait_s += time.perf_counter() - start
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class PrefetchingSampler:
    """A ShardedSampler whose draws run on a background thread (the ReplaySampler interface).

    The learner never waits on the network in steady state: `depth` drawn batches stay
    ready; `sample(beta, timeout)` weighs the oldest for the β of the call, or returns None
    if none arrived within `timeout`. Draws refused by the rate limiter (replay still
    filling, actors slow) are retried; the sampler counts them (`rate_limited`).
    """

    def __init__(self, sampler, depth: int = 4) -> None:
        self.sampler = sampler
        self._prefetcher = Prefetcher(self._draw_patiently, depth=depth)

    def _draw_patiently(self):
        while True:
            try:
                return self.sampler.draw()
            except RateLimitTimeout:
                time.sleep(0.05)  # every shard refused just now: let inserts arrive

    def sample(self, beta: float, timeout: float | None = None):
        drawn = self._prefetcher.get(timeout=timeout)
        return None if drawn is None else drawn.weighted(beta)

    def update_priorities(self, sample, priorities) -> None:
        self.sampler.update_priorities(sample, priorities)

    def flush(self) -> None:
        self.sampler.flush()

    def counters(self) -> dict[str, float]:
        """The sampler's counters, plus the seconds the learner waited for a drawn batch."""
        return {**self.sampler.counters(), "prefetch_wait_s": self._prefetcher.wait_s}

    def close(self) -> None:
        self._prefetcher.close()
        self.sampler.close()
