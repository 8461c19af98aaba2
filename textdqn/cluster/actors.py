"""Ray actors around the plain components: parameter store, rollout actor, learner actor."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import numpy as np
import ray
import torch

from textdqn.actors.actor import Actor, LatestWeights
from textdqn.actors.worker import RolloutWorker
from textdqn.cluster.replay_service import RayShards
from textdqn.config import Config
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop, LearnerStats
from textdqn.learner.prefetch import PrefetchingSampler
from textdqn.replay_server.client import ShardedWriter, make_sampler
from textdqn.types import RolloutStats


class ParameterStore:
    """The newest weights on Ray: a version and [ObjectRef] (one `ray.put` by the learner).

    An asyncio actor: `newer_than(v)` answers only once a version newer than v is
    published (a long poll), so rollout actors waiting for weights cost it nothing
    between versions, however often they check."""

    def __init__(self) -> None:
        self._weights = LatestWeights()
        self._published = asyncio.Event()

    async def publish(self, version: int, payload: list) -> None:  # async: all on the event loop
        self._weights.publish(version, payload)
        self._published.set()  # wakes every waiter; later ones wait on a fresh event
        self._published = asyncio.Event()

    async def latest(self, have_version: int = -1) -> tuple[int, list | None]:
        return self._weights.latest(have_version)

    async def newer_than(self, have_version: int) -> tuple[int, list | None]:
        while self._weights.version <= have_version:
            await self._published.wait()
        return self._weights.latest(have_version)


class StoreWeights:
    """WeightSource and WeightSink over the ParameterStore actor.

    `latest` waits for the store only while the caller has no weights yet. After that one
    `newer_than` request is always in flight, and a check only looks whether it has been
    answered (no round trip). At the first check after a publish it takes the newest
    version, and the transitions made meanwhile count as lagging behind it."""

    def __init__(self, store) -> None:
        self.store = store
        self._asked: ray.ObjectRef | None = None  # the newer_than request in flight

    def publish(self, version: int, weights: dict[str, np.ndarray]) -> None:
        self.store.publish.remote(version, [ray.put(weights)])

    def latest(self, have_version: int = -1) -> tuple[int, dict[str, np.ndarray] | None]:
        answered = self._asked is not None and ray.wait([self._asked], timeout=0)[0]
        if have_version >= 0 and not answered:  # nothing newer yet: keep one request waiting
            self._asked = self._asked or self.store.newer_than.remote(have_version)
            return have_version, None
        # The first weights, or something newer was published: the newest (several may have been).
        version, refs = ray.get(self.store.latest.remote(have_version))
        self._asked = self.store.newer_than.remote(version)
        if refs is None or version <= have_version:
            return max(version, have_version), None
        return version, ray.get(refs[0])


def process_clock(_actor=None) -> dict:
    """pid, CPU seconds (all threads) and monotonic seconds of the calling process; a Ray
    actor's via `handle.__ray_call__.remote(process_clock)`."""
    return {"pid": os.getpid(), "cpu_s": time.process_time(), "wall_s": time.monotonic()}


class RolloutActor:
    """An Actor (worker + sharded writer + weights from the store) in a Ray actor."""

    def __init__(
        self, config: Config, index: int, shards: list, store, seed: int, start_env_steps: int = 0
    ) -> None:
        # Batched inference of a small network: one thread, so that idle OpenMP workers do
        # not spin on the cores the learner needs.
        torch.set_num_threads(1)
        writer = ShardedWriter(
            RayShards(shards), writer_index=index, max_in_flight=config.replay.insert_in_flight
        )
        worker = RolloutWorker(config, index, seed=seed, start_env_steps=start_env_steps)
        self.actor = Actor(worker, writer, StoreWeights(store), config.actors.sync_every)

    def run(self, num_env_steps: int) -> RolloutStats:
        return self.actor.run(num_env_steps)

    @ray.method(concurrency_group="inspect")
    def status(self) -> dict:
        """Answered on its own thread, beside a running `run` (whose inserts may be waiting
        for the learner): pid, CPU seconds and monotonic seconds of this process, env steps."""
        return {**process_clock(), "env_steps": self.actor.worker.env_steps}


class LearnerActor:
    """The Learner fed by a prefetching sharded sampler; publishes weights to the store.

    min_version: the newest weight version published so far (-1: none); a learner restored
    from an older checkpoint continues past it, so actors take its weights."""

    def __init__(
        self,
        config: Config,
        spaces: tuple,
        shards: list,
        store,
        learner_state: dict | None,
        min_version: int = -1,
    ) -> None:
        self.learner = Learner(config, *spaces)
        if learner_state is not None:
            self.learner.load_state_dict(learner_state)
        if min_version >= self.learner.version:  # a restart: publish past what actors have seen
            self.learner.version = min_version + 1
        weights = StoreWeights(store)
        # Published before the constructor returns, so the driver's first evaluation finds weights.
        ray.get(store.publish.remote(self.learner.version, [ray.put(self.learner.weights())]))
        self.sampler = make_sampler(
            config.replay, RayShards(shards), config.learner.batch_size, config.run.seed
        )
        self.prefetching = PrefetchingSampler(self.sampler, depth=config.learner.prefetch)
        self._lock = threading.Lock()  # one update or one state read at a time
        self.loop = LearnerLoop(self.learner, config.replay, self.prefetching, weights, sample_timeout=0.2)

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

    def counters(self) -> dict[str, float]:
        return self.prefetching.counters()
