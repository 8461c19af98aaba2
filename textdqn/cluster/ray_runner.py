"""Local and cluster mode: shards, parameter store, learner and rollout actors on Ray.

The runner keeps work queued on every actor (two `run(steps)` calls on each rollout actor,
one `train(seconds)` on the learner) and collects what finishes. A learner or rollout
actor that dies is replaced (cluster/crew.py) and its lost call re-issued; shards are
restarted by Ray (replay.shard_max_restarts) and the replay client routes around them.
Training goes on meanwhile.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import ray
import torch
from ray.exceptions import RayActorError, RayError

from textdqn.cluster.actors import ParameterStore
from textdqn.cluster.crew import Crew, get_or_raise_cause
from textdqn.cluster.placement import Placement, where
from textdqn.cluster.progress import Progress
from textdqn.cluster.replay_service import RayShards, make_shards
from textdqn.cluster.runtime import init_ray, kill_actors, shutdown_ray
from textdqn.config import Config
from textdqn.envs import check_warm_start, make_env
from textdqn.errors import ShardUnavailable, TextDQNError
from textdqn.learner.loop import LearnerStats
from textdqn.types import ShardInfo

log = logging.getLogger(__name__)

# Calls queued on each rollout actor: the next starts as soon as one ends, instead of after
# a round trip through the driver.
_CALLS_PER_ACTOR = 2


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


class RayRunner:
    """All components as Ray actors; the driver only supervises."""

    def __init__(
        self,
        config: Config,
        address: str | None = None,
        learner_state: dict | None = None,
        replay_dir: str | None = None,
        storage_options: dict | None = None,
        restore_learner: Callable[[], dict | None] | None = None,
        actor_env_steps: list[int] | None = None,
        with_learner: bool = True,
    ) -> None:
        """`restore_learner` returns the learner state a dead learner restarts from (the
        run's last checkpoint); `actor_env_steps` the env steps each actor had made (resume);
        `with_learner=False` runs the actors and shards alone (bench scaling --no-learner)."""
        # The driver only supervises and evaluates: one thread, leaving the cores to the
        # actors and the learner (their processes set their own).
        torch.set_num_threads(1)
        self.config = config
        self.started_ray = init_ray(address=address, num_cpus=None if address else _logical_cpus(config))
        try:
            seed = config.run.seed
            env = make_env(config.env)  # fail fast here, with a clear error, before any actor starts
            spaces = (env.observation_space, env.action_space)
            check_warm_start(config, env.has_wrapper_attr)
            env.close()
            placement = Placement(config.cluster)
            self.shards = make_shards(
                config.replay,
                seed=seed,
                max_restarts=config.replay.shard_max_restarts,
                placement=placement.shard(),
                **(storage_options or {}),
            )
            get_or_raise_cause(
                [s.info.remote() for s in self.shards]
            )  # e.g. an unreachable Redis: its own error
            if replay_dir:  # memory shards resume from the snapshot of the learner's checkpoint
                get_or_raise_cause(
                    [
                        s.restore.remote(str(Path(replay_dir) / f"shard-{i}"))
                        for i, s in enumerate(self.shards)
                    ]
                )
            self.shard_set = RayShards(self.shards)
            self._shards_down = 0
            self.replay_at_start = [i.size for i in self.replay_info()]
            # Every rollout actor keeps one newer_than call waiting on the store (and a replaced
            # one's may linger until the next publish): room for all, and for publish and latest.
            concurrency = max(1000, 4 * config.actors.num_actors + 64)
            self.store = ray.remote(ParameterStore).options(num_cpus=0, max_concurrency=concurrency).remote()
            self.crew = Crew(
                config,
                spaces,
                self.shards,
                self.store,
                learner_state,
                restore_learner or (lambda: learner_state),
                actor_env_steps,
                _learner_gpus(config),
                placement,
                with_learner,
            )
            self.placement = self._record_placement()
            self._calls: dict = {}  # ObjectRef -> ("actor", index, handle) | ("learner", None, handle)
            for i in self.crew.actors:
                self._submit_actor(i, _CALLS_PER_ACTOR)
            self._submit_learner()
        except BaseException:  # a start that fails (or Ctrl-C) leaves no actor or Ray behind
            self.close()
            raise

    def _record_placement(self) -> dict:
        """Where each component runs (node id and address, GPUs), logged and kept for summary.json."""
        learner = self.crew.learner
        found = {
            "learner": where(learner) if learner else {"node": "", "address": "", "gpus": []},
            "shards": [where(s) for s in self.shards],
            "actors": [where(a) for a in self.crew.actors.values()],
        }
        learner = found["learner"]
        log.info(
            "placement: learner on %s (GPUs %s); shards on %s; actors on %s",
            learner["address"] or learner["node"][:8],
            learner["gpus"] or "none",
            sorted({s["node"][:8] for s in found["shards"]}),
            sorted({a["node"][:8] for a in found["actors"]}),
        )
        return found

    def _submit_actor(self, i: int, calls: int = 1) -> None:
        actor = self.crew.actors[i]
        for _ in range(calls):
            self._calls[actor.run.remote(self.config.actors.steps_per_call)] = ("actor", i, actor)

    def _submit_learner(self) -> None:
        learner = self.crew.learner
        if learner is None:
            return
        self._calls[learner.train.remote(self.config.run.log_every_s)] = ("learner", None, learner)

    @property
    def learner_restarts(self) -> int:
        return self.crew.learner_restarts

    @property
    def actor_env_steps(self) -> list[int]:
        """Env steps each rollout actor has made (its ε schedule's position), for checkpoints."""
        return list(self.crew.env_steps)

    def step(self, seconds: float, env_steps: int | None = None) -> Progress:
        """Collect the work that finishes within about `seconds`, re-issuing each call; return
        sooner once the actors' reports add up to `env_steps` (the next evaluation's point:
        the actors run on, so evaluation comes at the first report past it)."""
        progress = Progress(learner=LearnerStats())
        deadline = time.perf_counter() + seconds
        made = 0
        while (remaining := deadline - time.perf_counter()) > 0 and (env_steps is None or made < env_steps):
            ready, _ = ray.wait(list(self._calls), num_returns=1, timeout=remaining)
            for ref in ready:
                kind, index, handle = self._calls.pop(ref)
                if kind == "learner":
                    try:
                        progress.learner.merge(get_or_raise_cause(ref))
                    except RayActorError as e:  # the process died or is restarting (ActorDiedError, ...)
                        self._restart_learner(e)
                    self._submit_learner()
                    continue
                try:
                    stats = get_or_raise_cause(ref)
                except RayActorError as e:
                    if self.crew.actors.get(index) is not handle:  # the other call of one replaced
                        continue
                    progress.actor_restarts += 1
                    if self.crew.replace_actor(index, e):
                        self._submit_actor(index, _CALLS_PER_ACTOR)
                    continue
                progress.rollouts.append(stats)
                made += stats.env_steps
                if self.crew.actors.get(index) is handle:  # not a replaced or dropped actor's
                    self.crew.env_steps[index] += stats.env_steps
                    self._submit_actor(index)
        progress.replay = self.replay_info()
        counters = self._learner_call("counters") if self.crew.learner else {}
        progress.counters = {**counters, "shards_down": self._shards_down, "actors": len(self.crew.actors)}
        progress.learner_restarts = self.crew.learner_restarts
        return progress

    def _restart_learner(self, error: Exception) -> None:
        self._calls = {ref: call for ref, call in self._calls.items() if call[0] != "learner"}
        self.crew.restart_learner(error)

    def _learner_call(self, method: str):
        """A call on the learner; a dead learner is restarted first (its train call re-issued)."""
        try:
            return get_or_raise_cause(getattr(self.crew.learner, method).remote())
        except RayActorError as e:
            self._restart_learner(e)
            self._submit_learner()
            return get_or_raise_cause(getattr(self.crew.learner, method).remote())

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
        return self._learner_call("state")

    def close(self) -> None:
        """Stop every actor (also after a start that failed half-way); durable shards first
        write their pending priorities to Redis."""
        shards = getattr(self, "shards", [])
        if shards and self.config.replay.storage == "redis":
            try:
                ray.get([s.close.remote() for s in shards], timeout=60)
            except (RayError, TextDQNError) as e:  # e.g. Redis is gone: those updates are lost
                log.warning("replay shards could not write their last priorities (%s)", e)
        crew = getattr(self, "crew", None)
        store = getattr(self, "store", None)
        kill_actors([*(crew.handles() if crew else []), *([store] if store else []), *shards])
        if self.started_ray:
            shutdown_ray()
