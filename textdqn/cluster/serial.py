"""Serial mode: the same components as local mode, wired in one process (for debugging).

Each slice of work runs every worker for `actors.steps_per_call` env steps, inserts their
batches, then updates the learner for as long as the replay's rate limiter allows.
Serial mode needs `replay.rate_limiter.samples_per_insert` > 0: with one process, that
ratio is what decides how often to train.
"""

from __future__ import annotations

import time

import numpy as np

from textdqn.actors.worker import RolloutWorker
from textdqn.cluster.progress import Progress
from textdqn.config import Config
from textdqn.errors import ConfigError
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop, LearnerStats
from textdqn.replay_server.local import LocalReplay


class SerialRunner:
    """Workers, a LocalReplay and the learner, stepped in turn in this process."""

    def __init__(self, config: Config, learner_state: dict | None = None) -> None:
        if config.replay.rate_limiter.samples_per_insert <= 0:
            raise ConfigError(
                "--serial needs replay.rate_limiter.samples_per_insert > 0 (it sets how often the "
                "learner trains in one process); e.g. --set replay.rate_limiter.samples_per_insert=8"
            )
        seed = config.run.seed
        self.config = config
        self.workers = [
            RolloutWorker(config, i, seed=seed * 7919 + i) for i in range(config.actors.num_actors)
        ]
        spaces = self.workers[0].envs
        self.learner = Learner(config, spaces.single_observation_space, spaces.single_action_space)
        if learner_state is not None:
            self.learner.load_state_dict(learner_state)
        self.replay = LocalReplay(config.replay, seed=seed)
        self._weights = (self.learner.version, self.learner.weights())
        self.loop = LearnerLoop(
            self.learner,
            config,
            next_sample=lambda: self.replay.sample(config.learner.batch_size),
            update_priorities=self.replay.update_priorities,
            publish=self._publish,
            set_beta=lambda beta: setattr(self.replay, "beta", beta),
        )

    def _publish(self, version: int, weights: dict[str, np.ndarray]) -> None:
        self._weights = (version, weights)

    def latest_weights(self) -> tuple[int, dict[str, np.ndarray]]:
        return self._weights

    def learner_state(self) -> dict:
        return self.learner.state_dict()

    def step(self, seconds: float) -> Progress:
        """Alternate acting and learning for about `seconds`."""
        progress = Progress(learner=LearnerStats())
        deadline = time.perf_counter() + seconds
        while True:
            for worker in self.workers:
                progress.rollouts.append(self._act(worker))
            while self.replay.can_sample():
                progress.learner.merge(self.loop.run(max_updates=1))
            if time.perf_counter() >= deadline:
                break
        progress.replay = self.replay.info()
        return progress

    def _act(self, worker: RolloutWorker):
        version, weights = self._weights
        if worker.version < version:
            worker.set_weights(version, weights)
        batches, stats = worker.rollout(self.config.actors.steps_per_call)
        stats.record_lag(version, worker.version, stats.transitions)
        for batch in batches:
            self.replay.insert(batch)
        return stats

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
