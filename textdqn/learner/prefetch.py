"""A background thread that keeps the next few samples ready for the learner."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

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
