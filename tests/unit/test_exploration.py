"""ε schedules and ε-greedy against hand-computed numbers."""

import numpy as np
import pytest

from textdqn.actors.exploration import (
    ape_x_epsilons,
    epsilon_at,
    epsilon_greedy,
    exponential_decay,
    linear_decay,
    masked_argmax,
)


def test_ape_x_epsilons_for_eight_actors():
    eps = ape_x_epsilons(8)
    assert eps.dtype == np.float64 and eps.shape == (8,)
    assert eps[0] == pytest.approx(0.4)
    assert eps[7] == pytest.approx(0.4**8)
    assert eps[1] == pytest.approx(0.4 ** (1 + 7 / 7))  # α·i/(N−1) = 1 for i = 1
    assert np.all(np.diff(eps) < 0)


def test_ape_x_epsilons_single_actor_and_bad_args():
    np.testing.assert_array_equal(ape_x_epsilons(1, epsilon=0.3), [0.3])
    with pytest.raises(ValueError, match="num_actors"):
        ape_x_epsilons(0)
    with pytest.raises(ValueError, match="epsilon"):
        ape_x_epsilons(4, epsilon=1.5)


def test_linear_decay_points():
    assert linear_decay(1.0, 0.1, 100, 0) == pytest.approx(1.0)
    assert linear_decay(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_decay(1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert linear_decay(1.0, 0.1, 100, 10_000) == pytest.approx(0.1)
    assert linear_decay(1.0, 0.1, 0, 0) == pytest.approx(0.1)


def test_exponential_decay_points():
    assert exponential_decay(1.0, 0.0, 10, 0) == pytest.approx(1.0)
    assert exponential_decay(1.0, 0.0, 10, 10) == pytest.approx(0.5)
    assert exponential_decay(1.0, 0.2, 10, 20) == pytest.approx(0.2 + 0.8 * 0.25)
    assert exponential_decay(1.0, 0.2, 0, 5) == pytest.approx(0.2)


def test_epsilon_at_dispatches_and_names_schedules():
    assert epsilon_at("constant", 0.4, 0.01, 100, 1_000) == pytest.approx(0.4)
    assert epsilon_at("linear", 1.0, 0.0, 100, 25) == pytest.approx(0.75)
    assert epsilon_at("exponential", 1.0, 0.0, 100, 100) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="constant, linear, exponential"):
        epsilon_at("cosine", 1.0, 0.0, 100, 1)


Q = np.array([[1.0, 5.0, 3.0, 2.0], [4.0, 0.0, 9.0, 1.0], [0.5, 0.2, 0.1, 0.9]])
MASK = np.array([[True, False, True, True], [True, True, False, True], [False, True, True, False]])


def test_masked_argmax():
    np.testing.assert_array_equal(masked_argmax(Q), [1, 2, 3])
    np.testing.assert_array_equal(masked_argmax(Q, MASK), [2, 0, 1])
    assert masked_argmax(Q, MASK).dtype == np.int64


def test_epsilon_zero_is_masked_argmax():
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = epsilon_greedy(Q, 0.0, rng, MASK)
        np.testing.assert_array_equal(actions, [2, 0, 1])
    np.testing.assert_array_equal(epsilon_greedy(Q, np.zeros(3), rng), [1, 2, 3])


def test_epsilon_one_covers_exactly_the_valid_actions():
    rng = np.random.default_rng(1)
    q = np.tile(Q, (200, 1))
    mask = np.tile(MASK, (200, 1))
    actions = epsilon_greedy(q, np.ones(len(q)), rng, mask).reshape(200, 3)
    assert actions.dtype == np.int64
    for row in range(3):
        assert set(actions[:, row].tolist()) == set(np.flatnonzero(MASK[row]).tolist())
    unmasked = epsilon_greedy(q, 1.0, rng).reshape(200, 3)
    assert set(unmasked.ravel().tolist()) == {0, 1, 2, 3}


def test_per_row_epsilons():
    rng = np.random.default_rng(2)
    q = np.tile(Q[:1], (400, 1))
    eps = np.where(np.arange(400) % 2 == 0, 0.0, 1.0)
    actions = epsilon_greedy(q, eps, rng)
    assert np.all(actions[::2] == 1)  # ε = 0 rows are greedy
    assert set(actions[1::2].tolist()) == {0, 1, 2, 3}


def test_all_false_mask_raises():
    mask = MASK.copy()
    mask[1] = False
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        masked_argmax(Q, mask)
    with pytest.raises(ValueError, match="no action"):
        epsilon_greedy(Q, 0.5, np.random.default_rng(0), mask)


def test_boltzmann_exploration_draws_from_the_masked_softmax():
    rng = np.random.default_rng(3)
    q = np.array([[1.0, 0.0, -1.0, 5.0]])
    mask = np.array([[True, True, True, False]])
    rows = 20_000
    actions = epsilon_greedy(np.repeat(q, rows, 0), 1.0, rng, np.repeat(mask, rows, 0), temperature=0.5)
    counts = np.bincount(actions, minlength=4) / rows
    expected = np.exp(q[0, :3] / 0.5) / np.exp(q[0, :3] / 0.5).sum()
    assert counts[3] == 0.0  # the masked action, although its Q is the highest
    np.testing.assert_allclose(counts[:3], expected, atol=0.01)
    # ε = 0 rows stay greedy whatever the temperature
    np.testing.assert_array_equal(epsilon_greedy(Q, 0.0, rng, MASK, temperature=2.0), [2, 0, 1])
    with pytest.raises(ValueError, match="temperature"):
        epsilon_greedy(Q, 1.0, rng, MASK, temperature=-1.0)
