"""A vectorized sum-tree: batched priority updates and batched prefix-sum search.

The tree is an implicit binary heap over a power-of-two number of leaves, stored in one
float64 array: node 1 is the root, node i has children 2i and 2i+1, and leaf j sits at
node `leaves + j`. Float64 keeps the root's drift negligible over billions of updates.
Every operation touches `depth` levels with one numpy call per level and never loops
over items in Python.
"""

from __future__ import annotations

import numpy as np

# Levels with at most this many nodes are recomputed whole on update (see `set`).
_DENSE_LEVEL = 2048
# `find` starts its descent at the level of this many nodes (see `_descend`).
_JUMP_WIDTH = 4096


class SumTree:
    """Sums of non-negative leaf values over `capacity` slots.

    Args:
        capacity: number of leaves (slots); rounded up internally to a power of two.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self._depth = self._leaves.bit_length() - 1
        self._nodes = np.zeros(2 * self._leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self._nodes[1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        """Leaf values at `slots` (int array), float64."""
        return self._nodes[self._leaves + np.asarray(slots, dtype=np.int64)]

    def leaves(self) -> np.ndarray:
        """A copy of all `capacity` leaf values."""
        return self._nodes[self._leaves : self._leaves + self.capacity].copy()

    def set(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set leaves `slots` to `values` and refresh their ancestors.

        Duplicate slots are allowed; the last value written for a slot wins.
        """
        slots = np.asarray(slots, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if slots.size == 0:
            return
        if slots.min() < 0 or slots.max() >= self.capacity:
            raise IndexError(f"slot out of range [0, {self.capacity})")
        if not np.all(values >= 0) or not np.all(np.isfinite(values)):
            raise ValueError("sum-tree values must be finite and >= 0")
        nodes = self._leaves + slots
        tree = self._nodes
        tree[nodes] = values
        # Recompute each touched parent from its two children, level by level. A parent
        # written twice gets the same value both times, so duplicates are harmless.
        width = self._leaves >> 1  # nodes in the parents' level
        while width > _DENSE_LEVEL:
            nodes >>= 1
            children = nodes << 1
            tree[nodes] = tree[children] + tree[children + 1]
            width >>= 1
        # Near the root, recomputing whole levels with strided slices is cheaper than
        # gathering and scattering the touched nodes.
        while width >= 1:
            tree[width : 2 * width] = tree[2 * width : 4 * width : 2] + tree[2 * width + 1 : 4 * width : 2]
            width >>= 1

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target mass u in [0, total), the slot j with prefix(j) <= u < prefix(j+1).

        prefix(j) is the sum of leaves 0..j-1. Targets at or past the total (possible
        through rounding) land on the last leaf with non-zero value.
        """
        values = np.array(targets, dtype=np.float64)
        slots = self._descend(values.copy(), guard=False)
        # Rounding can walk into an empty leaf at the top end; redo those with a guard.
        empty = self._nodes[self._leaves + slots] <= 0
        if empty.any():
            slots[empty] = self._descend(values[empty], guard=True)
        return slots

    def _descend(self, values: np.ndarray, guard: bool) -> np.ndarray:
        tree, width = self._nodes, 1
        nodes = np.ones(values.shape, dtype=np.int64)
        if not guard and self._leaves > _JUMP_WIDTH:
            # Skip the top levels: one prefix sum over a whole level and a binary search
            # replace log2(_JUMP_WIDTH) steps of the descent.
            width = _JUMP_WIDTH
            level = tree[width : 2 * width]
            prefix = np.cumsum(level)
            index = np.minimum(np.searchsorted(prefix, values, side="right"), width - 1)
            values -= prefix[index] - level[index]
            nodes = width + index
        while width < self._leaves:
            nodes <<= 1
            left = tree[nodes]
            go_right = values >= left
            if guard:  # never step into an empty right subtree
                go_right &= tree[nodes + 1] > 0
            np.subtract(values, left, out=values, where=go_right)
            nodes += go_right
            width <<= 1
        return nodes - self._leaves

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n slots drawn with probability leaf/total, stratified over n equal segments.

        Stratification (as in Schaul et al. 2016) lowers the variance of the batch's
        composition without changing each draw's marginal probability.
        """
        total = self.total
        if total <= 0:
            raise ValueError("cannot sample from a sum-tree whose total is 0")
        targets = (np.arange(n) + rng.random(n)) * (total / n)
        return self.find(targets)
