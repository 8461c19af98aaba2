"""The data contracts shared by every component (see DESIGN.md, "Contracts").

Components exchange only these types. Each is a struct of numpy arrays with a leading
batch dimension B, so every hot path (replay writes, sampling, the learner's batch
assembly) is a handful of vectorized array operations.

Call order, as in Acme's core.py:
  actor:   TransitionBatch -> shard.insert(batch)
  learner: shard.sample(n) -> SampleResult; shard.update_priorities(result.keys, new_p)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from textdqn.errors import SchemaError
from textdqn.masks import pack_masks, unpack_masks  # noqa: F401  (the contract's mask forms, re-exported)

# Field name -> whether it may be omitted.
_FIELDS: dict[str, bool] = {
    "obs": False,
    "action": False,
    "reward": False,
    "discount": False,
    "next_obs": False,
    "next_action_mask": True,
    "priority": True,
    "policy_version": True,
    "demo": True,
}

# A schema maps each present field to (numpy dtype string, per-item shape).
Schema = dict[str, tuple[str, tuple[int, ...]]]


@dataclasses.dataclass(frozen=True)
class TransitionBatch:
    """B n-step transitions, one array per field, leading dim B.

    obs, next_obs: float32 [B, ...] feature vectors, or token ids (uint16/int32) [B, T]
        padded with the env's pad id.
    action: int64 [B].
    reward: float32 [B], the discounted n-step sum r_t + γ r_{t+1} + ... + γ^{k-1} r_{t+k-1}.
    discount: float32 [B], γ^k if the episode went on after k <= n steps, 0 if it
        terminated inside the window (truncation bootstraps, so it keeps γ^k).
    next_action_mask: the actions valid in next_obs, or None: bool [B, A]; packed 8 to a
        byte (uint8 [B, ceil(A / 8)]); or the valid ids of each row (uint16/int32 [B, W],
        padded), whichever the env's action space makes smallest (textdqn/masks.py): actors
        send them so, and a text-generation mask over a 49K-token vocabulary then costs
        ~160 bytes a transition instead of 6 KB packed or 49 KB as bool. Consumers read any
        form with `unpack_masks`.
    priority: float32 [B] or None, the initial priority |δ| computed by the actor.
    policy_version: int32 [B] or None, the weight version that chose `action`.
    demo: bool [B] or None, whether a demonstrator chose `action` (the env's warm-start agent,
        `actors.warm_start_agent`) rather than the Q-network: the learner's large-margin loss
        (DQfD, `learner.demo_margin`) applies to those rows. Present when that loss is on.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    next_obs: np.ndarray
    next_action_mask: np.ndarray | None = None
    priority: np.ndarray | None = None
    policy_version: np.ndarray | None = None
    demo: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.obs)
        for name, array in self.fields().items():
            if not isinstance(array, np.ndarray):
                raise SchemaError(f"TransitionBatch.{name} must be a numpy array, got {type(array)}")
            if array.ndim == 0 or len(array) != n:
                raise SchemaError(
                    f"TransitionBatch.{name} has leading dim {array.shape[:1]}, expected {n} "
                    "(every field needs the same batch size)"
                )

    def __len__(self) -> int:
        return len(self.obs)

    def fields(self) -> dict[str, np.ndarray]:
        """The present fields, by name (optional fields that are None are left out)."""
        out = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def schema(self) -> Schema:
        """Per field: dtype string and per-item shape."""
        return {k: (v.dtype.str, tuple(v.shape[1:])) for k, v in self.fields().items()}

    def take(self, index: np.ndarray | slice) -> TransitionBatch:
        """The rows at `index` (a slice or an int array), as a new batch."""
        return TransitionBatch(**{k: v[index] for k, v in self.fields().items()})

    def nbytes(self) -> int:
        return sum(v.nbytes for v in self.fields().values())

    @staticmethod
    def from_fields(fields: dict[str, Any]) -> TransitionBatch:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise SchemaError(f"unknown TransitionBatch fields {sorted(unknown)}; known: {list(_FIELDS)}")
        missing = [k for k, optional in _FIELDS.items() if not optional and k not in fields]
        if missing:
            raise SchemaError(f"TransitionBatch is missing required fields {missing}")
        return TransitionBatch(**fields)

    @staticmethod
    def concat(batches: list[TransitionBatch]) -> TransitionBatch:
        """Concatenate batches that share one schema."""
        first = batches[0].fields()
        return TransitionBatch(**{k: np.concatenate([b.fields()[k] for b in batches]) for k in first})


@dataclasses.dataclass(frozen=True)
class SampleResult:
    """What a replay shard returns for `sample(n)`.

    keys: int64 [n], one per item, encoding (slot, generation) as generation * capacity + slot:
        the item's global insertion index. A key is stale once its slot is overwritten.
    batch: the sampled transitions.
    probabilities: float64 [n], the probability the shard sampled each item with
        (p_i^α / Σ_shard p^α).
    shard_total: Σ p^α over the shard when it sampled (the shard's priority mass).
    shard_size: number of items in the shard when it sampled.
    """

    keys: np.ndarray
    batch: TransitionBatch
    probabilities: np.ndarray
    shard_total: float
    shard_size: int


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """A replay shard's counters, as reported by `info()`."""

    size: int
    capacity: int
    total_priority: float
    inserts: int
    samples: int
    priority_updates: int
    stale_updates: int
    insert_blocked_s: float
    sample_blocked_s: float
    restored_items: int = 0
    """items the shard reloaded from its durable tier (Redis) when it was built"""
    durable_flushes: int = 0
    """write-behind flushes of priority updates to the durable tier"""
    durable_flush_errors: int = 0
    """background flushes that failed (logged; their updates stay pending and are retried)"""

    @property
    def samples_per_insert(self) -> float:
        return self.samples / self.inserts if self.inserts else 0.0


@dataclasses.dataclass(frozen=True)
class WeightedSample:
    """A batch for the learner: transitions, their importance weights, and where they live.

    weights: float32 [B], (N·P(i))^-β normalised by the batch max.
    keys: int64 [B], the shard's keys, for `update_priorities`.
    shard: index of the shard that served the batch.
    """

    batch: TransitionBatch
    weights: np.ndarray
    keys: np.ndarray
    shard: int


@dataclasses.dataclass
class RolloutStats:
    """What a rollout actor reports for one unit of work (a supervisor call).

    Policy lag is measured when the actor checks for newer weights: the transitions it
    made since its last check were chosen by version v while the learner had published
    version V; each counts V − v (in publish periods).
    """

    worker: int
    env_steps: int = 0
    transitions: int = 0
    episode_returns: list[float] = dataclasses.field(default_factory=list)
    episode_lengths: list[int] = dataclasses.field(default_factory=list)
    episode_metrics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    env_errors: int = 0
    weight_version: int = -1
    lag_sum: float = 0.0
    lag_count: int = 0
    lag_max: int = 0
    epsilon_mean: float = 0.0
    insert_retries: int = 0
    """inserts sent again because a shard was lost before it acknowledged them"""
    insert_wait_s: float = 0.0
    """seconds spent waiting for shards to acknowledge inserts"""

    def record_lag(self, latest: int, used: int, transitions: int) -> None:
        if transitions and used >= 0:
            self.lag_sum += (latest - used) * transitions
            self.lag_count += transitions
            self.lag_max = max(self.lag_max, latest - used)

    def merge(self, other: RolloutStats) -> None:
        """Add `other` (a later unit of work of the same worker) into this one."""
        self.env_steps += other.env_steps
        self.transitions += other.transitions
        self.episode_returns += other.episode_returns
        self.episode_lengths += other.episode_lengths
        for key, values in other.episode_metrics.items():
            self.episode_metrics.setdefault(key, []).extend(values)
        self.env_errors += other.env_errors
        self.weight_version = other.weight_version
        self.lag_sum += other.lag_sum
        self.lag_count += other.lag_count
        self.lag_max = max(self.lag_max, other.lag_max)
        self.epsilon_mean = other.epsilon_mean
        self.insert_retries += other.insert_retries
        self.insert_wait_s += other.insert_wait_s
