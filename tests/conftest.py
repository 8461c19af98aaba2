"""Shared test helpers: batches whose data encodes its own answer."""

from __future__ import annotations

import numpy as np

from textdqn.types import TransitionBatch


def make_batch(start: int, n: int, obs_dim: int = 4, with_priority: bool = False) -> TransitionBatch:
    """n transitions numbered start..start+n-1: obs[:, 0] = t, reward = t / 10, action = t % 3."""
    t = np.arange(start, start + n)
    obs = np.repeat(t[:, None], obs_dim, axis=1).astype(np.float32)
    return TransitionBatch(
        obs=obs,
        action=(t % 3).astype(np.int64),
        reward=(t / 10).astype(np.float32),
        discount=np.full(n, 0.99, dtype=np.float32),
        next_obs=obs + 1,
        priority=(1.0 + t % 5).astype(np.float32) if with_priority else None,
        policy_version=np.zeros(n, dtype=np.int32),
    )
