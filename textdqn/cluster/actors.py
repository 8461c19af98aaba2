"""Ray actors around the plain components: parameter store, rollout actor, learner actor."""

from __future__ import annotations

import threading

import numpy as np
import ray

from textdqn.actors.worker import RolloutWorker
from textdqn.cluster.replay_service import ReplaySampler, ReplayWriter
from textdqn.config import Config
from textdqn.errors import RateLimitTimeout
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop, LearnerStats
from textdqn.learner.prefetch import Prefetcher
from textdqn.types import RolloutStats, WeightedSample


class ParameterStore:
    """Holds the newest published weights as an object ref (one `ray.put` by the learner)."""

    def __init__(self) -> None:
        self.version = -1
        self._refs: list | None = None

    def publish(self, version: int, refs: list) -> None:
        """`refs` is [ObjectRef]: wrapped in a list so Ray passes the ref, not the weights."""
        if version > self.version:
            self.version, self._refs = version, refs

    def latest(self, have_version: int = -1) -> tuple[int, list | None]:
        """(newest version, [ref]) if newer than `have_version`, else (newest version, None)."""
        return self.version, (self._refs if self.version > have_version else None)


class RolloutActor:
    """A RolloutWorker that syncs weights from the store and writes to the replay shards."""

    def __init__(self, config: Config, index: int, shards: list, store, seed: int) -> None:
        self.config = config
        self.worker = RolloutWorker(config, index, seed=seed)
        self.writer = ReplayWriter(shards, writer_index=index, max_in_flight=config.replay.insert_in_flight)
        self.store = store
        self._sync(RolloutStats(worker=index), transitions=0)

    def _sync(self, stats: RolloutStats, transitions: int) -> None:
        """Pull newer weights; the transitions made since the last sync count their lag."""
        latest, refs = ray.get(self.store.latest.remote(self.worker.version))
        stats.record_lag(latest, self.worker.version, transitions)
        if refs is not None:
            self.worker.set_weights(latest, ray.get(refs[0]))

    def run(self, num_env_steps: int) -> RolloutStats:
        """Act for `num_env_steps` env steps, syncing every `actors.sync_every`."""
        stats = RolloutStats(worker=self.worker.index, weight_version=self.worker.version)
        while stats.env_steps < num_env_steps:
            batches, part = self.worker.rollout(self.config.actors.sync_every)
            for batch in batches:
                self.writer.insert(batch)
            stats.merge(part)
            self._sync(stats, part.transitions)
        return stats


class LearnerActor:
    """The Learner fed by a prefetching ReplaySampler; publishes weights to the store."""

    def __init__(
        self, config: Config, spaces: tuple, shards: list, store, learner_state: dict | None
    ) -> None:
        self.learner = Learner(config, *spaces)
        if learner_state is not None:
            self.learner.load_state_dict(learner_state)
        self.store = store
        self.sampler = ReplaySampler(
            shards,
            batch_size=config.learner.batch_size,
            in_flight=config.replay.sample_in_flight,
            beta=config.replay.beta,
            seed=config.run.seed,
            coalesce=config.replay.priority_update_coalesce,
            batches_per_request=config.replay.sample_batches_per_request,
        )
        self._lock = threading.Lock()  # one update or one state read at a time
        self.rate_limit_timeouts = 0
        self._publish(self.learner.version, self.learner.weights())
        self.prefetcher = Prefetcher(self._sample_patiently, depth=config.learner.prefetch)
        self.loop = LearnerLoop(
            self.learner,
            config,
            next_sample=lambda: self.prefetcher.get(timeout=0.2),
            update_priorities=self.sampler.update_priorities,
            publish=self._publish,
            set_beta=lambda beta: setattr(self.sampler, "beta", beta),
        )

    def _sample_patiently(self) -> WeightedSample:
        """The next sample; a rate-limit timeout (replay still filling, actors slow) is retried."""
        while True:
            try:
                return self.sampler.sample()
            except RateLimitTimeout:
                self.rate_limit_timeouts += 1

    def _publish(self, version: int, weights: dict[str, np.ndarray]) -> None:
        self.store.publish.remote(version, [ray.put(weights)])

    def train(self, seconds: float) -> LearnerStats:
        """Update for about `seconds` (in short locked steps, so `state` can interleave)."""
        stats = LearnerStats()
        while stats.wall_s < seconds:
            with self._lock:
                stats.merge(self.loop.run(seconds=min(0.25, seconds - stats.wall_s)))
        return stats

    def state(self) -> dict:
        with self._lock:
            return self.learner.state_dict()
