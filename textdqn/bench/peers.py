"""Peer prioritized replay buffers, behind one interface, for `textdqn bench replay`.

The replay benchmark measures our ReplayShard against two peers on identical data:
RLlib's `PrioritizedReplayBuffer` and cpprb's `PrioritizedReplayBuffer`. Each adapter
stores every field of a transition (obs and next_obs included, no memory tricks) and
returns them all from `sample`, so every implementation gathers the same bytes.

Call order: `make_peer(...)`, then any interleaving of `insert(fields)` (one call per
batch, through the peer's own batched add), `sample(n)` -> `PeerSample`, and
`update(sample, priorities)`. Both peers use proportional PER: P(i) ∝ p_i ** alpha,
importance weights with exponent beta, new items at the largest priority seen so far.

ray.rllib and cpprb are imported inside the factories: `import textdqn.bench.peers` is
cheap, and a missing library only removes its peer from `available_peers()`.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from textdqn.errors import ConfigError

Schema = dict[str, tuple[np.dtype, tuple[int, ...]]]
"""Field name -> (dtype, per-item shape), e.g. {"obs": (np.float32, (8,)), "reward": ...}."""

_LIBRARIES = {"rllib": "ray.rllib", "cpprb": "cpprb"}


@dataclass
class PeerSample:
    """What `sample(n)` returns: the gathered rows plus what `update` needs.

    fields: field name -> array with leading dim n, per-item shape and dtype as in the schema.
    indexes: int array [n], the peer's slot of each row (repeats possible).
    weights: float array [n], importance weights normalized by the largest possible weight.
    """

    fields: dict[str, np.ndarray]
    indexes: np.ndarray
    weights: np.ndarray


class PeerReplay(Protocol):
    """A prioritized replay buffer measured by the replay benchmark."""

    name: str

    def insert(self, fields: dict[str, np.ndarray]) -> None:
        """Store one batch of B transitions (arrays with leading dim B) in one call."""

    def sample(self, n: int) -> PeerSample:
        """Draw n transitions in proportion to priority ** alpha, gathering all fields."""

    def update(self, handle: PeerSample, priorities: np.ndarray) -> None:
        """Set new priorities (float [n], > 0) for the n items of `handle`."""

    def __len__(self) -> int:
        """Number of transitions stored (at most the capacity)."""


class RLlibPeer:
    """RLlib's PrioritizedReplayBuffer storing one SampleBatch row per item.

    storage_unit="timesteps" makes `add` split a multi-row SampleBatch into one item per
    row (`batch.timeslices(1)`), a Python loop per transition that is part of its cost.
    """

    name = "rllib"

    def __init__(self, capacity: int, alpha: float, beta: float, schema: Schema) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from ray.rllib.policy.sample_batch import SampleBatch
            from ray.rllib.utils.replay_buffers.prioritized_replay_buffer import (
                PrioritizedReplayBuffer,
            )
        self._sample_batch = SampleBatch
        self._buffer = PrioritizedReplayBuffer(capacity=capacity, storage_unit="timesteps", alpha=alpha)
        self._beta = beta
        self._keys = list(schema)

    def insert(self, fields: dict[str, np.ndarray]) -> None:
        """Store one batch of B transitions with a single `add(SampleBatch)`."""
        self._buffer.add(self._sample_batch({k: fields[k] for k in self._keys}))

    def sample(self, n: int) -> PeerSample:
        """Draw n transitions; RLlib concatenates the n stored rows into one batch."""
        batch = self._buffer.sample(n, beta=self._beta)
        return PeerSample(
            fields={k: batch[k] for k in self._keys},
            indexes=batch["batch_indexes"],
            weights=batch["weights"],
        )

    def update(self, handle: PeerSample, priorities: np.ndarray) -> None:
        """Set the priorities of the sampled items (RLlib's `update_priorities`)."""
        self._buffer.update_priorities(handle.indexes, priorities)

    def __len__(self) -> int:
        """Number of items stored; one per transition with storage_unit="timesteps"."""
        return len(self._buffer)


class CpprbPeer:
    """cpprb's PrioritizedReplayBuffer with every field, next_obs included, stored plainly.

    cpprb cannot allocate shape () fields, so scalars are stored as shape (1,) and
    flattened back to [n] on sample.
    """

    name = "cpprb"

    def __init__(self, capacity: int, alpha: float, beta: float, schema: Schema) -> None:
        import cpprb

        env_dict = {
            k: {"shape": shape if shape else 1, "dtype": dtype} for k, (dtype, shape) in schema.items()
        }
        self._buffer = cpprb.PrioritizedReplayBuffer(capacity, env_dict, alpha=alpha)
        self._beta = beta
        self._scalars = [k for k, (_, shape) in schema.items() if not shape]
        self._keys = list(schema)

    def insert(self, fields: dict[str, np.ndarray]) -> None:
        """Store one batch of B transitions with a single batched `add(**fields)`."""
        self._buffer.add(**{k: fields[k] for k in self._keys})

    def sample(self, n: int) -> PeerSample:
        """Draw n transitions; cpprb gathers every field into fresh arrays."""
        out = self._buffer.sample(n, beta=self._beta)
        fields = {k: out[k] for k in self._keys}
        for k in self._scalars:
            fields[k] = fields[k].reshape(n)
        return PeerSample(fields=fields, indexes=out["indexes"], weights=out["weights"])

    def update(self, handle: PeerSample, priorities: np.ndarray) -> None:
        """Set the priorities of the sampled items (cpprb's `update_priorities`)."""
        self._buffer.update_priorities(handle.indexes, priorities)

    def __len__(self) -> int:
        """Number of transitions stored."""
        return int(self._buffer.get_stored_size())


_PEERS: dict[str, type[RLlibPeer] | type[CpprbPeer]] = {"rllib": RLlibPeer, "cpprb": CpprbPeer}


def available_peers() -> list[str]:
    """Names of the peers whose library is installed ("rllib" needs ray[rllib])."""
    found = []
    for name, module in _LIBRARIES.items():
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:  # the parent package (ray) is missing
            spec = None
        if spec is not None:
            found.append(name)
    return found


def make_peer(name: str, capacity: int, alpha: float, beta: float, schema: Schema) -> PeerReplay:
    """Build the peer `name` ("rllib" or "cpprb") holding up to `capacity` transitions.

    alpha is the priority exponent (> 0), beta the importance-weight exponent (>= 0),
    schema gives each field's dtype and per-item shape. Raises ConfigError for an
    unknown or uninstalled peer, or an out-of-range argument.
    """
    if name not in _PEERS:
        raise ConfigError(f"unknown replay peer {name!r}; choose one of {sorted(_PEERS)}")
    if name not in available_peers():
        raise ConfigError(
            f"replay peer {name!r} needs the {_LIBRARIES[name]!r} package; install it or "
            f"drop {name!r} from the peers to measure (available: {available_peers()})"
        )
    if capacity < 1:
        raise ConfigError(f"peer capacity must be >= 1, got {capacity}")
    if alpha <= 0:
        raise ConfigError(f"peer alpha must be > 0 (both peers assert it), got {alpha}")
    if beta < 0:
        raise ConfigError(f"peer beta must be >= 0, got {beta}")
    return _PEERS[name](capacity, alpha, beta, schema)
