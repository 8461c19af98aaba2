"""The component interfaces of textdqn, with their call order (after Acme's core.py).

Every execution mode wires the same components through these interfaces; only the
shard set and the weight store differ (in-process objects in serial mode and unit tests,
Ray actors in textdqn/cluster/).

Call order of one run:

  shards: ShardSet            S replay shards behind futures
  writer = ShardedWriter(shards, writer_index=i)        # one per rollout actor
      writer.insert(batch) ... writer.flush()           # acknowledged once stored
  sampler = ShardedSampler(shards, batch_size, ...)     # one, in the learner
      sample = sampler.sample(beta)                     # importance weights for this β
      sampler.update_priorities(sample, |δ|)            # sent behind, coalesced
  weights: WeightSink & WeightSource                    # the newest published weights
      learner side: weights.publish(version, state)     # every learner.publish_every updates
      actor side:   weights.latest(have_version)        # every actors.sync_every env steps
  runner: Runner                                        # what the supervisor drives
      runner.step(seconds) -> Progress, repeatedly; runner.latest_weights(),
      runner.learner_state(), runner.checkpoint_replay(dir) at checkpoints; runner.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from textdqn.types import ShardInfo, TransitionBatch, WeightedSample

if TYPE_CHECKING:
    from textdqn.cluster.progress import Progress


class ShardSet(Protocol):
    """S replay shards whose methods return futures (ReplayShard's vocabulary).

    `call(i, "insert", batch)`, `call(i, "sample", n)`, `call(i, "update_priorities", keys,
    priorities)` and `call(i, "info")` start a call on shard i and return a future; `wait`
    returns the futures among `futures` that are done (at least one, unless `timeout`
    seconds pass first); `result` returns a done future's value or raises its error: the
    shard's own (RateLimitTimeout, SchemaError, ReplayStorageError, ...) or
    ShardUnavailable when the shard's process is gone or restarting.
    """

    def __len__(self) -> int: ...

    def call(self, index: int, method: str, *args: Any) -> Any: ...

    def wait(self, futures: Sequence[Any], timeout: float | None = None) -> list[Any]: ...

    def result(self, future: Any) -> Any: ...


class ReplayWriter(Protocol):
    """An actor's side of the replay: insert batches, wait until they are stored."""

    def insert(self, batch: TransitionBatch) -> None: ...

    def flush(self) -> None: ...


class ReplaySampler(Protocol):
    """The learner's side of the replay: weighted samples out, new priorities back."""

    def sample(self, beta: float, timeout: float | None = None) -> WeightedSample | None: ...

    def update_priorities(self, sample: WeightedSample, priorities: np.ndarray) -> None: ...

    def flush(self) -> None: ...

    def counters(self) -> dict[str, float]: ...


class WeightSink(Protocol):
    """Where the learner publishes (version, numpy weights)."""

    def publish(self, version: int, weights: dict[str, np.ndarray]) -> None: ...


class WeightSource(Protocol):
    """Where actors look for newer weights: (newest version, weights or None if not newer)."""

    def latest(self, have_version: int = -1) -> tuple[int, dict[str, np.ndarray] | None]: ...


class Runner(Protocol):
    """One way of running every component (serial, local Ray, a Ray cluster)."""

    def step(self, seconds: float, env_steps: int | None = None) -> Progress:
        """Run for about `seconds`; return sooner once `env_steps` more env steps are made (serial
        mode stops there, Ray modes at the first actor report past it): the supervisor's next
        evaluation point."""
        ...

    def latest_weights(self) -> tuple[int, dict[str, np.ndarray]]: ...

    def learner_state(self) -> dict: ...

    def replay_info(self) -> list[ShardInfo]: ...

    def checkpoint_replay(self, directory: str) -> None: ...

    def close(self) -> None: ...
