"""The learner's work loop, shared by serial mode and the Ray learner actor.

One step: take a sample, update, send new priorities back, anneal β, and publish
weights every `publish_every` updates. Compute and waiting are timed separately, so
learner utilization (compute / wall) is measured, not guessed.
"""

from __future__ import annotations

import dataclasses
import time

from textdqn.config import ReplayConfig
from textdqn.interfaces import ReplaySampler, WeightSink
from textdqn.learner.learner import Learner
from textdqn.replay_server.importance import annealed_beta

_SUMMED = ("updates", "compute_s", "wait_s", "wall_s", "loss_sum", "q_sum", "age_sum")
_SUMMED += ("rows", "demo_rows", "demo_margin_sum")


@dataclasses.dataclass
class LearnerStats:
    """What the learner reports for one unit of work."""

    updates: int = 0
    total_updates: int = 0
    version: int = 0
    compute_s: float = 0.0
    wait_s: float = 0.0
    wall_s: float = 0.0
    loss_sum: float = 0.0
    q_sum: float = 0.0
    age_sum: float = 0.0
    age_max: int = 0
    bad_updates: int = 0
    rows: int = 0
    demo_rows: int = 0
    demo_margin_sum: float = 0.0
    uses_demos: bool = False  # the learner has DQfD's terms (the demo rows are counted)

    def merge(self, other: LearnerStats) -> None:
        for f in _SUMMED:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.age_max = max(self.age_max, other.age_max)
        self.total_updates, self.version = other.total_updates, other.version
        self.bad_updates = other.bad_updates
        self.uses_demos = self.uses_demos or other.uses_demos


class LearnerLoop:
    """Drives a Learner from a replay sampler and publishes its weights.

    Args:
        learner: the Learner.
        replay: the replay config (its β schedule: beta, beta_final, beta_anneal_updates).
        sampler: where weighted samples come from and new priorities go (ReplaySampler).
        weights: receives (version, numpy weights) every learner.publish_every updates.
        sample_timeout: seconds to wait for a sample before re-checking the deadline
            (None: wait as long as it takes).
    """

    def __init__(
        self,
        learner: Learner,
        replay: ReplayConfig,
        sampler: ReplaySampler,
        weights: WeightSink,
        sample_timeout: float | None = None,
    ) -> None:
        self.learner = learner
        self.replay = replay
        self.sampler = sampler
        self.weights = weights
        self.sample_timeout = sample_timeout

    def beta(self) -> float:
        """β for the next sample, annealed with the learner's updates."""
        r = self.replay
        return annealed_beta(r.beta, r.beta_final, self.learner.updates, r.beta_anneal_updates)

    def run(self, seconds: float = float("inf"), max_updates: int | None = None) -> LearnerStats:
        """Update for about `seconds`, or until `max_updates` updates, whichever is first.

        A sampler's RateLimitTimeout (no shard may serve a sample yet) propagates.
        """
        stats = LearnerStats()
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline and (max_updates is None or stats.updates < max_updates):
            t0 = time.perf_counter()
            sample = self.sampler.sample(self.beta(), timeout=self.sample_timeout)
            t1 = time.perf_counter()
            stats.wait_s += t1 - t0
            if sample is None:
                continue
            result = self.learner.update(sample)
            stats.compute_s += time.perf_counter() - t1
            if result is None:
                continue
            self.sampler.update_priorities(sample, result.priorities)
            stats.updates += 1
            stats.loss_sum += result.loss
            stats.q_sum += result.q_mean
            stats.age_sum += result.sample_age_mean
            stats.age_max = max(stats.age_max, result.sample_age_max)
            stats.rows += len(result.priorities)
            stats.demo_rows += result.demo_rows
            stats.demo_margin_sum += result.demo_margin_sum
            if self.learner.should_publish():
                self.weights.publish(*self.learner.publish())
        stats.wall_s = time.perf_counter() - start
        stats.total_updates = self.learner.updates
        stats.version = self.learner.version
        stats.bad_updates = self.learner.bad_updates
        stats.uses_demos = self.learner.config.uses_demos
        return stats
