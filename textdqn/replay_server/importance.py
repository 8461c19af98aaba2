"""Importance-sampling weights for prioritized replay across shards (pure functions).

A sharded replay samples item i of shard s with probability
    P(i) = (P_s / P) · (p_i / P_s) = p_i / P,
where p_i = (|δ_i| + ε)^α, P_s is shard s's priority mass and P = Σ_s P_s: picking the
shard in proportion to its mass, then the item inside it, is the same as sampling from
the union. The weights correct for that bias with the *global* size N and mass P:
    w_i = (N · P(i))^-β / max_j w_j        (Schaul et al. 2016, eq. 1 and §3.4)
"""

from __future__ import annotations

import numpy as np


def global_probabilities(shard_probabilities: np.ndarray, shard_total: float, total: float) -> np.ndarray:
    """P(i) over the union of shards from the probability inside one shard.

    shard_probabilities: [B] p_i / P_s as the shard returned it; shard_total: P_s;
    total: P, the sum of every shard's mass.
    """
    return np.asarray(shard_probabilities, dtype=np.float64) * (shard_total / total)


def importance_weights(probabilities: np.ndarray, size: int, beta: float) -> np.ndarray:
    """float32 [B] weights (N · P(i))^-β normalised by the batch max, so all are <= 1.

    probabilities: [B] global sampling probabilities P(i); size: N, items across shards.
    """
    if size < 1:
        raise ValueError(f"importance weights need a replay size >= 1, got {size}")
    # Work in logs: (N·P)^-β spans many orders of magnitude for tiny priorities.
    log_w = -beta * np.log(size * np.asarray(probabilities, dtype=np.float64))
    return np.exp(log_w - log_w.max()).astype(np.float32)


def annealed_beta(beta: float, beta_final: float, step: int, anneal_steps: int) -> float:
    """β linearly from `beta` to `beta_final` over `anneal_steps` learner updates."""
    if anneal_steps <= 0:
        return beta_final
    frac = min(1.0, max(0.0, step / anneal_steps))
    return beta + frac * (beta_final - beta)
