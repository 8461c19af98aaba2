"""What a runner reports to the supervisor after each slice of work (plain Python)."""

from __future__ import annotations

import dataclasses

from textdqn.learner.loop import LearnerStats
from textdqn.types import RolloutStats, ShardInfo


@dataclasses.dataclass
class Progress:
    """Work finished since the previous report, plus the replay's state now.

    counters: the replay client's running totals (sampler waits, rate-limited replies,
    lost-shard errors, dropped priority updates), as ShardedSampler.counters() names them.
    """

    rollouts: list[RolloutStats] = dataclasses.field(default_factory=list)
    learner: LearnerStats = dataclasses.field(default_factory=LearnerStats)
    replay: list[ShardInfo] = dataclasses.field(default_factory=list)
    actor_restarts: int = 0
    learner_restarts: int = 0
    """learner restarts so far in this process (a running total)"""
    counters: dict[str, float] = dataclasses.field(default_factory=dict)
