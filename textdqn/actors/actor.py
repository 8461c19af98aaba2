"""A rollout actor as every mode runs it: a RolloutWorker, a replay writer and a weight source.

Call order: `Actor(worker, writer, weights, sync_every)` pulls the newest weights once;
then `run(num_env_steps) -> RolloutStats` acts in slices of `sync_every` env steps, sends
each slice's full batches to the writer, and checks for newer weights after each slice.
Serial mode calls `run` in the driver's process; textdqn/cluster calls it in a Ray actor.
"""

from __future__ import annotations

from typing import Any

from textdqn.actors.worker import RolloutWorker
from textdqn.interfaces import WeightSource
from textdqn.replay_server.client import ShardedWriter
from textdqn.types import RolloutStats


class LatestWeights:
    """The newest published (version, payload), for WeightSink and WeightSource.

    Serial mode keeps numpy weights in it; on Ray, the ParameterStore actor keeps one
    holding [ObjectRef] (a list, so Ray passes the reference, not the weights).
    """

    def __init__(self) -> None:
        self.version = -1
        self._payload: Any = None

    def publish(self, version: int, payload: Any) -> None:
        if version > self.version:
            self.version, self._payload = version, payload

    def latest(self, have_version: int = -1) -> tuple[int, Any]:
        """(newest version, payload) if newer than `have_version`, else (newest version, None)."""
        return self.version, (self._payload if self.version > have_version else None)


class Actor:
    """Acts, writes to the replay and keeps its weights fresh (see the module docstring)."""

    def __init__(
        self, worker: RolloutWorker, writer: ShardedWriter, weights: WeightSource, sync_every: int
    ) -> None:
        self.worker = worker
        self.writer = writer
        self.weights = weights
        self.sync_every = int(sync_every)
        self.sync(RolloutStats(worker=worker.index), transitions=0)

    def sync(self, stats: RolloutStats, transitions: int) -> None:
        """Pull newer weights; the `transitions` made since the last sync count their lag."""
        latest, state = self.weights.latest(self.worker.version)
        stats.record_lag(latest, self.worker.version, transitions)
        if state is not None:
            self.worker.set_weights(latest, state)

    def run(self, num_env_steps: int) -> RolloutStats:
        """Act for `num_env_steps` env steps; returns what happened (episodes, lag, errors)."""
        stats = RolloutStats(worker=self.worker.index, weight_version=self.worker.version)
        retries, wait_s = self.writer.retries, self.writer.wait_s
        while stats.env_steps < num_env_steps:
            batches, part = self.worker.rollout(min(self.sync_every, num_env_steps - stats.env_steps))
            for batch in batches:
                self.writer.insert(batch)
            stats.merge(part)
            self.sync(stats, part.transitions)
        stats.insert_retries = self.writer.retries - retries
        stats.insert_wait_s = self.writer.wait_s - wait_s
        return stats

    def close(self) -> None:
        try:
            self.writer.flush()
        finally:
            self.worker.close()
