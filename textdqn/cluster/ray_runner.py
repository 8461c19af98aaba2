"""Local and cluster mode: shards, parameter store, learner and rollout actors on Ray.

The runner keeps one unit of work in flight on every actor (`run(steps)` on rollout
actors, `train(seconds)` on the learner) and collects what finishes. A rollout actor that
dies is restarted by Ray (`actors.max_restarts`); its lost call is counted and re-issued,
and training goes on meanwhile.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayError, RayTaskError

from textdqn.cluster.actors import LearnerActor, ParameterStore, RolloutActor
from textdqn.cluster.progress import Progress
from textdqn.cluster.replay_service import RayShards, make_shards
from textdqn.cluster.runtime import init_ray, kill_actors, shutdown_ray
from textdqn.config import Config
from textdqn.envs import check_warm_start, make_env
from textdqn.errors import ShardUnavailable, TextDQNError
from textdqn.learner.loop import LearnerStats
from textdqn.types import ShardInfo

log = logging.getLogger(__name__)
_ACTOR_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


def _logical_cpus(config: Config) -> int:
    """Enough logical CPUs for every actor's fractional request, and at least the cores."""
    need = (
        config.learner.num_cpus
        + config.actors.num_actors * config.actors.num_cpus
        + config.replay.num_shards * config.replay.shard_num_cpus
        + 1
    )
    return max(os.cpu_count() or 1, math.ceil(need))


def _learner_gpus(config: Config) -> float:
    """One GPU for the learner when asked for (cuda) or allowed (auto) and the cluster has one."""
    if config.learner.device == "cpu":
        return 0.0
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _get(refs):
    """ray.get(refs); an error that textdqn raised inside an actor surfaces as itself, with
    its own message first, instead of behind Ray's traceback."""
    try:
        return ray.get(refs)
    except RayTaskError as e:
        if isinstance(e.cause, TextDQNError):
            raise e.cause from None
        raise


class RayRunner:
    """All components as Ray actors; the driver only supervises."""

    def __init__(
        self,
        config: Config,
        address: str | None = None,
        learner_state: dict | None = None,
        replay_dir: str | None = None,
        storage_options: dict | None = None,
    ) -> None:
        self.config = config
        self._started_ray = init_ray(address=address, num_cpus=None if address else _logical_cpus(config))
        seed = config.run.seed
        env = make_env(config.env)  # fail fast here, with a clear error, before any actor starts
        spaces = (env.observation_space, env.action_space)
        check_warm_start(config, env.has_wrapper_attr("rule_action"))
        env.close()
        self.shards = make_shards(
            config.replay, seed=seed, max_restarts=config.replay.shard_max_restarts, **(storage_options or {})
        )
        _get([s.info.remote() for s in self.shards])  # e.g. an unreachable Redis: its own error
        if replay_dir:  # memory shards resume from the snapshot of the learner's checkpoint
            _get([s.restore.remote(str(Path(replay_dir) / f"shard-{i}")) for i, s in enumerate(self.shards)])
        self.shard_set = RayShards(self.shards)
        self._shards_down = 0
        self.replay_at_start = [i.size for i in self.replay_info()]
        self.store = ray.remote(ParameterStore).options(num_cpus=0).remote()
        learner_cls = ray.remote(LearnerActor).options(
            num_cpus=config.learner.num_cpus, num_gpus=_learner_gpus(config), max_concurrency=2
        )
        self.learner = learner_cls.remote(config, spaces, self.shards, self.store, learner_state)
        actor_cls = ray.remote(RolloutActor).options(
            num_cpus=config.actors.num_cpus, max_restarts=config.actors.max_restarts
        )
        self.actors = [
            actor_cls.remote(config, i, self.shards, self.store, seed * 7919 + i)
            for i in range(config.actors.num_actors)
        ]
        self._calls: dict = {}  # ObjectRef -> ("actor", index) | ("learner", None)
        for i in range(len(self.actors)):
            self._submit_actor(i)
        self._submit_learner()

    def _submit_actor(self, i: int) -> None:
        self._calls[self.actors[i].run.remote(self.config.actors.steps_per_call)] = ("actor", i)

    def _submit_learner(self) -> None:
        self._calls[self.learner.train.remote(self.config.run.log_every_s)] = ("learner", None)

    def step(self, seconds: float) -> Progress:
        """Collect the work that finishes within about `seconds`, re-issuing each call."""
        progress = Progress(learner=LearnerStats())
        deadline = time.perf_counter() + seconds
        while (remaining := deadline - time.perf_counter()) > 0:
            ready, _ = ray.wait(list(self._calls), num_returns=1, timeout=remaining)
            for ref in ready:
                kind, index = self._calls.pop(ref)
                if kind == "learner":
                    progress.learner.merge(_get(ref))  # ends the run
                    self._submit_learner()
                    continue
                try:
                    progress.rollouts.append(_get(ref))
                except _ACTOR_LOST as e:
                    progress.actor_restarts += 1
                    log.warning("rollout actor %d died (%s); Ray restarts it", index, type(e).__name__)
                self._submit_actor(index)
        progress.replay = self.replay_info()
        progress.counters = {**ray.get(self.learner.counters.remote()), "shards_down": self._shards_down}
        return progress

    def replay_info(self) -> list[ShardInfo]:
        """Infos of the shards that answer; those that do not are counted in `_shards_down`."""
        futures = [self.shard_set.call(i, "info") for i in range(len(self.shard_set))]
        infos = []
        for future in futures:
            try:
                infos.append(self.shard_set.result(future))
            except ShardUnavailable:
                continue
        self._shards_down = len(futures) - len(infos)
        return infos

    def checkpoint_replay(self, directory: str) -> None:
        """Every shard's items and priorities under directory/shard-<i> (memory storage)."""
        ray.get([s.checkpoint.remote(str(Path(directory) / f"shard-{i}")) for i, s in enumerate(self.shards)])

    def latest_weights(self) -> tuple[int, dict]:
        version, refs = ray.get(self.store.latest.remote(-1))
        return version, ray.get(refs[0])

    def learner_state(self) -> dict:
        return ray.get(self.learner.state.remote())

    def close(self) -> None:
        """Stop every actor; durable shards first write their pending priorities to Redis."""
        if self.config.replay.storage == "redis":
            try:
                ray.get([s.close.remote() for s in self.shards], timeout=60)
            except (RayError, TextDQNError) as e:  # e.g. Redis is gone: those updates are lost
                log.warning("replay shards could not write their last priorities (%s)", e)
        kill_actors([*self.actors, self.learner, self.store, *self.shards])
        if self._started_ray:
            shutdown_ray()
