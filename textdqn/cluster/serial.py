"""Serial mode: the same components as local mode, wired in one process (for debugging).

The actors, the sharded writer and sampler, the learner loop and the weight store are the
very classes local mode runs; only the shard set is in-process (LocalShards) and calls
run on the spot. One process cannot block one side until the other catches up, so the
runner keeps `replay.rate_limiter.samples_per_insert` itself: after each actor's slice it
trains as many updates as the inserted transitions owe (inserts × ratio / batch size);
the shards keep only their min_size_to_sample. Serial mode therefore needs the ratio > 0.
"""

from __future__ import annotations

import time
from pathlib import Path

from textdqn.actors.actor import Actor, LatestWeights
from textdqn.actors.worker import RolloutWorker
from textdqn.cluster.progress import Progress
from textdqn.config import Config
from textdqn.errors import ConfigError, RateLimitTimeout
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop, LearnerStats
from textdqn.replay_server.client import ShardedWriter, make_local_shards, make_sampler, shard_infos
from textdqn.types import ShardInfo


class SerialRunner:
    """Actors, in-process shards and the learner, stepped in turn in this process."""

    def __init__(
        self,
        config: Config,
        learner_state: dict | None = None,
        replay_dir: str | None = None,
        storage_options: dict | None = None,
        actor_env_steps: list[int] | None = None,
    ) -> None:
        if config.replay.rate_limiter.samples_per_insert <= 0:
            raise ConfigError(
                "--serial needs replay.rate_limiter.samples_per_insert > 0 (it sets how often the "
                "learner trains in one process); e.g. --set replay.rate_limiter.samples_per_insert=8"
            )
        seed = config.run.seed
        self.config = config
        self.shards = make_local_shards(config.replay, seed=seed, ratio=False, **(storage_options or {}))
        if replay_dir:
            for i, shard in enumerate(self.shards.shards):
                shard.restore(str(Path(replay_dir) / f"shard-{i}"))
        self.replay_at_start = [i.size for i in self.replay_info()]
        steps = actor_env_steps or [0] * config.actors.num_actors
        workers = [
            RolloutWorker(config, i, seed=seed * 7919 + i, start_env_steps=steps[i])
            for i in range(config.actors.num_actors)
        ]
        envs = workers[0].envs
        self.learner = Learner(config, envs.single_observation_space, envs.single_action_space)
        if learner_state is not None:
            self.learner.load_state_dict(learner_state)
        self.weights = LatestWeights()
        self.weights.publish(self.learner.version, self.learner.weights())
        self.actors = [
            Actor(
                worker,
                ShardedWriter(self.shards, writer_index=i, max_in_flight=config.replay.insert_in_flight),
                self.weights,
                config.actors.sync_every,
            )
            for i, worker in enumerate(workers)
        ]
        self.sampler = make_sampler(config.replay, self.shards, config.learner.batch_size, seed)
        self.loop = LearnerLoop(self.learner, config.replay, self.sampler, self.weights)
        self._owed = 0.0  # updates the inserted transitions are owed under the ratio

    learner_restarts = 0  # one process: a dead learner is a dead run

    @property
    def placement(self) -> dict:
        """Everything runs in this process."""
        return {"mode": "serial"}

    @property
    def actor_env_steps(self) -> list[int]:
        """Env steps each actor has made (its ε schedule's position), for checkpoints."""
        return [actor.worker.env_steps for actor in self.actors]

    def latest_weights(self) -> tuple[int, dict]:
        return self.weights.latest(-1)

    def learner_state(self) -> dict:
        return self.learner.state_dict()

    def replay_info(self) -> list[ShardInfo]:
        return shard_infos(self.shards)

    def checkpoint_replay(self, directory: str) -> None:
        """Every shard's items and priorities under directory/shard-<i>."""
        self.sampler.flush()
        for i, shard in enumerate(self.shards.shards):
            shard.checkpoint(str(Path(directory) / f"shard-{i}"))

    def step(self, seconds: float, env_steps: int | None = None) -> Progress:
        """Alternate acting and learning for about `seconds`, or until `env_steps` more env
        steps are made (the next evaluation's point: serial mode evaluates on its grid)."""
        progress = Progress(learner=LearnerStats())
        per_update = self.config.learner.batch_size / self.config.replay.rate_limiter.samples_per_insert
        deadline = time.perf_counter() + seconds
        made = 0
        while True:
            for actor in self.actors:
                stats = actor.run(self.config.actors.steps_per_call)
                progress.rollouts.append(stats)
                made += stats.env_steps
                self._owed += stats.transitions / per_update
                self._train_owed(progress.learner)
            if time.perf_counter() >= deadline or (env_steps is not None and made >= env_steps):
                break
        progress.replay = self.replay_info()
        progress.counters = self.sampler.counters()
        return progress

    def _train_owed(self, stats: LearnerStats) -> None:
        while self._owed >= 1:
            try:
                stats.merge(self.loop.run(max_updates=1))
            except RateLimitTimeout:  # below min_size_to_sample: nothing to learn from yet
                self._owed = 0.0
                return
            self._owed -= 1

    def close(self) -> None:
        """Flush every writer, then close the shards (a durable shard writes its pending
        priorities)."""
        try:
            for actor in self.actors:
                actor.close()
        finally:
            for shard in self.shards.shards:
                shard.close()
