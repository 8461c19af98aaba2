"""The sum-tree against a brute-force reference (plain numpy cumulative sums)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdqn.replay_server.sum_tree import SumTree

values = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 70),
    writes=st.lists(st.tuples(st.integers(0, 69), values), min_size=1, max_size=120),
)
def test_total_and_leaves_match_brute_force(capacity, writes):
    tree, ref = SumTree(capacity), np.zeros(capacity)
    slots = np.array([s % capacity for s, _ in writes])
    vals = np.array([v for _, v in writes])
    # Batched writes in chunks, duplicates included: the last write of a slot wins.
    for chunk in np.array_split(np.arange(len(slots)), 3):
        tree.set(slots[chunk], vals[chunk])
        for i in chunk:
            ref[slots[i]] = vals[i]
    np.testing.assert_allclose(tree.leaves(), ref)
    assert tree.total == pytest.approx(ref.sum(), rel=1e-12, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=64),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=32),
)
def test_find_matches_prefix_search(leaves, fractions):
    leaves = np.array(leaves)
    if leaves.sum() <= 0:
        leaves[0] = 1.0
    tree = SumTree(len(leaves))
    tree.set(np.arange(len(leaves)), leaves)
    targets = np.array(fractions) * tree.total
    cumulative = np.cumsum(leaves)
    expected = np.searchsorted(cumulative, targets, side="right")
    found = tree.find(targets)
    # Brute force may land on a zero leaf at a boundary where the tree skips it; both
    # then agree on the prefix mass, and the tree's answer has non-zero value.
    assert np.all(leaves[found] > 0)
    prefix = np.concatenate([[0.0], cumulative])
    assert np.all(prefix[found] <= targets + 1e-9)
    assert np.all(targets < prefix[found + 1] + 1e-9)
    # Away from segment boundaries (where rounding of the tree's sums may pick the neighbour,
    # e.g. of a leaf of 1e-230) the tree's leaf is brute force's.
    index = np.minimum(expected, len(leaves) - 1)
    clear = (targets - prefix[index] > 1e-9) & (prefix[index + 1] - targets > 1e-9)
    same = (leaves[index] > 0) & clear
    np.testing.assert_array_equal(found[same], index[same])


def test_targets_at_total_land_on_last_non_empty_leaf():
    tree = SumTree(8)
    tree.set(np.arange(3), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(tree.find(np.array([6.0, 6.0 + 1e-12, 100.0])), [2, 2, 2])


def test_sampling_frequencies_follow_leaf_mass():
    rng = np.random.default_rng(0)
    leaves = np.array([1.0, 0.0, 3.0, 6.0, 0.5, 9.5])
    tree = SumTree(len(leaves))
    tree.set(np.arange(len(leaves)), leaves)
    draws = np.concatenate([tree.sample(100, rng) for _ in range(400)])
    freq = np.bincount(draws, minlength=len(leaves)) / len(draws)
    p = leaves / leaves.sum()
    # Binomial standard error bound, 5 sigma: fails by chance with probability ~1e-6.
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / len(draws)) + 1e-12)
    assert freq[1] == 0


def test_rejects_bad_values_and_slots():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="finite"):
        tree.set(np.array([0]), np.array([np.nan]))
    with pytest.raises(ValueError, match=">= 0"):
        tree.set(np.array([0]), np.array([-1.0]))
    with pytest.raises(IndexError):
        tree.set(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="total is 0"):
        tree.sample(1, np.random.default_rng(0))


def test_large_tree_matches_brute_force():
    """Past 4096 leaves `find` starts with a jump over the top levels; check it too."""
    rng = np.random.default_rng(1)
    leaves = rng.random(20_000) * (rng.random(20_000) < 0.7)  # ~30% empty leaves
    tree = SumTree(len(leaves))
    tree.set(np.arange(len(leaves)), leaves)
    targets = np.sort(rng.random(5000)) * tree.total
    found = tree.find(targets)
    prefix = np.concatenate([[0.0], np.cumsum(leaves)])
    assert np.all(leaves[found] > 0)
    assert np.all(prefix[found] <= targets + 1e-6) and np.all(targets < prefix[found + 1] + 1e-6)
    np.testing.assert_array_equal(found, np.searchsorted(prefix[1:], targets, side="right"))
    tree.set(rng.integers(0, len(leaves), 3000), rng.random(3000))
    assert tree.total == pytest.approx(tree.leaves().sum(), rel=1e-12)
