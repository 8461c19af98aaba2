"""The supervisor's books: the run's counters, and the metric rows it makes of each slice of
progress (console, metrics.csv, TensorBoard) with the run-wide totals for summary.json."""

from __future__ import annotations

import collections
import dataclasses
import logging

import numpy as np

from textdqn.cluster.progress import Progress

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Counters:
    env_steps: int = 0
    updates: int = 0
    wall_s: float = 0.0  # before this process (a resumed run continues its clock)
    env_errors: int = 0
    actor_restarts: int = 0
    learner_restarts: int = 0
    episodes: int = 0
    actor_env_steps: list = dataclasses.field(default_factory=list)  # each actor's ε position


class Aggregator:
    """Turns slices of Progress into metric rows."""

    def __init__(self, counters: Counters) -> None:
        self.c = counters
        self.returns: collections.deque = collections.deque(maxlen=100)
        self.successes: collections.deque = collections.deque(maxlen=100)
        # Run-wide totals for summary.json.
        self.compute_s = self.learner_wall_s = 0.0
        self.lag_sum, self.lag_count, self.lag_max = 0.0, 0, 0
        self.insert_retries = 0
        self.replay_counters: dict[str, float] = {}
        self._learner_restarts_seen = 0

    def totals(self) -> dict:
        """Learner utilization and policy lag over the whole run (this process's part)."""
        return {
            "learner_utilization": self.compute_s / self.learner_wall_s if self.learner_wall_s else None,
            "policy_lag_mean": self.lag_sum / self.lag_count if self.lag_count else None,
            "policy_lag_max": self.lag_max,
            "replay_faults": {"insert_retries": self.insert_retries, **self.replay_counters},
        }

    def _note_replay_faults(self, p: Progress) -> None:
        """Add this slice's replay fault counts, and say on the console when they grow."""
        retries = sum(r.insert_retries for r in p.rollouts)
        errors = p.counters.get("shard_errors", 0) - self.replay_counters.get("shard_errors", 0)
        down = p.counters.get("shards_down", 0)
        if retries or errors > 0 or down:
            log.warning(
                "replay: %d shard(s) not answering, %d lost call(s), %d insert(s) resent to other shards",
                down,
                errors,
                retries,
            )
        self.insert_retries += retries
        self.replay_counters.update(p.counters)

    def row(self, p: Progress, wall_s: float, dt: float) -> dict:
        steps = sum(r.env_steps for r in p.rollouts)
        self.c.env_steps += steps
        self.c.updates = max(self.c.updates, p.learner.total_updates)
        self.c.env_errors += sum(r.env_errors for r in p.rollouts)
        self.c.actor_restarts += p.actor_restarts
        self.c.learner_restarts += p.learner_restarts - self._learner_restarts_seen
        self._learner_restarts_seen = p.learner_restarts
        for r in p.rollouts:
            self.returns.extend(r.episode_returns)
            self.successes.extend(r.episode_metrics.get("success", []))
            self.c.episodes += len(r.episode_returns)
        lag_n = sum(r.lag_count for r in p.rollouts)
        n_up = p.learner.updates
        self.compute_s += p.learner.compute_s
        self.learner_wall_s += p.learner.wall_s
        self.lag_sum += sum(r.lag_sum for r in p.rollouts)
        self.lag_count += lag_n
        self.lag_max = max([self.lag_max, *(r.lag_max for r in p.rollouts)])
        inserts = sum(i.inserts for i in p.replay)
        demos = p.learner.demo_rows
        self._note_replay_faults(p)
        return {
            "wall_s": wall_s,
            "env_steps": self.c.env_steps,
            "updates": self.c.updates,
            "env_steps_per_s": steps / dt if dt > 0 else None,
            "updates_per_s": n_up / dt if dt > 0 else None,
            "replay_size": sum(i.size for i in p.replay) if p.replay else None,
            "samples_per_insert": sum(i.samples for i in p.replay) / inserts if inserts else None,
            "policy_lag_mean": sum(r.lag_sum for r in p.rollouts) / lag_n if lag_n else None,
            "policy_lag_max": max((r.lag_max for r in p.rollouts), default=None),
            "sample_age_mean": p.learner.age_sum / n_up if n_up else None,
            "learner_utilization": p.learner.compute_s / p.learner.wall_s if p.learner.wall_s else None,
            "loss": p.learner.loss_sum / n_up if n_up else None,
            "q_mean": p.learner.q_sum / n_up if n_up else None,
            "train_return_mean": float(np.mean(self.returns)) if self.returns else None,
            "train_episodes": self.c.episodes,
            "eval_return_mean": None,
            "eval_return_std": None,
            "eval_success_rate": None,
            "env_errors": self.c.env_errors,
            "actor_restarts": self.c.actor_restarts,
            "learner_restarts": self.c.learner_restarts,
            "bad_updates": p.learner.bad_updates,
            "epsilon_mean": float(np.mean([r.epsilon_mean for r in p.rollouts])) if p.rollouts else None,
            "weight_version": p.learner.version,
            "insert_retries": self.insert_retries,
            "shard_errors": self.replay_counters.get("shard_errors"),
            "shards_down": self.replay_counters.get("shards_down"),
            "rate_limited": self.replay_counters.get("rate_limited"),
            "insert_wait_s": sum(r.insert_wait_s for r in p.rollouts),
            "sample_wait_s": p.learner.wait_s,
            # DQfD's terms (None without them): the share of sampled rows a demonstrator chose, and
            # the large-margin loss over those rows (0 once every demonstrated action leads by the margin)
            "demo_share": demos / p.learner.rows if p.learner.uses_demos and n_up else None,
            "demo_margin_loss": p.learner.demo_margin_sum / demos if demos else None,
        }
