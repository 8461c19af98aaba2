"""Where a replay shard keeps its items: struct-of-arrays rows addressed by slot.

A shard owns the priorities and keys; a storage backend owns only the rows. The memory
backend below is the default; a durable backend (Redis) plugs in behind the same methods.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from textdqn.errors import SchemaError
from textdqn.types import Schema, TransitionBatch


class Storage(Protocol):
    """Rows of transitions by slot. Allocated from the schema of the first batch written."""

    schema: Schema | None

    def write(self, slots: np.ndarray, batch: TransitionBatch) -> None:
        """Store batch row i at slot slots[i] (slots are distinct)."""

    def read(self, slots: np.ndarray) -> TransitionBatch:
        """The rows at `slots`, in order."""

    def arrays(self, size: int) -> dict[str, np.ndarray]:
        """The first `size` rows of every field (for checkpoints)."""

    def load_arrays(self, schema: Schema, capacity: int, arrays: dict[str, np.ndarray]) -> None:
        """Replace the contents with `arrays` (rows 0..len-1) under `schema`."""

    def nbytes_per_item(self) -> int:
        """Bytes one stored row takes (0 before the first write)."""


def check_schema(expected: Schema, batch: TransitionBatch) -> None:
    """Raise SchemaError naming the first field whose dtype or shape differs from `expected`."""
    got = batch.schema()
    if got.keys() != expected.keys():
        fix = "every batch sent to one replay must carry the same optional fields"
        if "demo" in got.keys() ^ expected.keys():
            fix = (
                "the learner's demonstration terms (learner.demo_margin, learner.demo_priority_bonus) "
                "were switched on or off since this replay was filled: keep the settings it was "
                "filled with, or start a fresh replay"
            )
        raise SchemaError(
            f"batch has fields {sorted(got)}, but the replay was allocated for {sorted(expected)}; {fix}"
        )
    for name, (dtype, shape) in expected.items():
        if got[name] != (dtype, shape):
            fix = f"cast or pad it to match (e.g. batch.{name}.astype({np.dtype(dtype).name!r}))"
            if name == "next_action_mask":  # its form and id width follow the env (textdqn/masks.py)
                fix = (
                    "the masks come in another form (packed uint8, or ids as many as the env's "
                    "max_allowed_actions()): fill one replay from envs of the same action space and "
                    "env.kwargs (top_k, prompts), or start a fresh replay"
                )
            raise SchemaError(
                f"batch field {name!r} has dtype {np.dtype(got[name][0])} and item shape "
                f"{got[name][1]}, but the replay holds {np.dtype(dtype)} {shape}; {fix}"
            )


class MemoryStorage:
    """Pre-allocated numpy arrays in the shard's process."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.schema: Schema | None = None
        self._arrays: dict[str, np.ndarray] = {}

    def _allocate(self, schema: Schema) -> None:
        self.schema = dict(schema)
        self._arrays = {
            name: np.zeros((self.capacity, *shape), dtype=np.dtype(dtype))
            for name, (dtype, shape) in schema.items()
        }

    def write(self, slots: np.ndarray, batch: TransitionBatch) -> None:
        if self.schema is None:
            self._allocate(batch.schema())
        else:
            check_schema(self.schema, batch)
        for name, values in batch.fields().items():
            self._arrays[name][slots] = values

    def read(self, slots: np.ndarray) -> TransitionBatch:
        # np.take gathers rows of 2-D arrays ~3x faster than fancy indexing.
        rows = {
            name: np.take(a, slots, axis=0) if a.ndim > 1 else a[slots] for name, a in self._arrays.items()
        }
        return TransitionBatch(**rows)

    def arrays(self, size: int) -> dict[str, np.ndarray]:
        return {name: a[:size] for name, a in self._arrays.items()}

    def load_arrays(self, schema: Schema, capacity: int, arrays: dict[str, np.ndarray]) -> None:
        self.capacity = int(capacity)
        self._allocate(schema)
        for name, values in arrays.items():
            self._arrays[name][: len(values)] = values

    def nbytes_per_item(self) -> int:
        """Bytes one stored transition takes (0 before the first write)."""
        return sum(a.itemsize * int(np.prod(a.shape[1:])) for a in self._arrays.values())
