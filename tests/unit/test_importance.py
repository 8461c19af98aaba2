"""Importance weights against hand-computed numbers."""

import numpy as np
import pytest

from textdqn.replay_server.importance import annealed_beta, global_probabilities, importance_weights


def test_global_probability_rescales_by_shard_mass():
    # Shard of mass 2 out of a global 8: an item with p_i/P_s = 0.5 has P(i) = 1/8.
    np.testing.assert_allclose(global_probabilities(np.array([0.5, 0.25]), 2.0, 8.0), [0.125, 0.0625])


def test_weights_by_hand():
    # N = 4, P(i) = [0.5, 0.125], β = 1: (N·P)^-1 = [0.5, 2]; normalised by 2: [0.25, 1].
    np.testing.assert_allclose(importance_weights(np.array([0.5, 0.125]), 4, 1.0), [0.25, 1.0])
    # β = 0.5: N·P = [2, 0.5], so (N·P)^-0.5 = [0.7071, 1.4142]; normalised: [0.5, 1].
    np.testing.assert_allclose(importance_weights(np.array([0.5, 0.125]), 4, 0.5), [0.5, 1.0])
    # β = 0: no correction.
    np.testing.assert_allclose(importance_weights(np.array([0.9, 1e-9]), 4, 0.0), [1.0, 1.0])


def test_tiny_probabilities_stay_finite():
    w = importance_weights(np.array([1e-300, 0.5]), 10**9, 1.0)
    assert np.all(np.isfinite(w)) and w[0] == 1.0


def test_beta_anneals_linearly_and_stops():
    assert annealed_beta(0.4, 1.0, 0, 100) == pytest.approx(0.4)
    assert annealed_beta(0.4, 1.0, 50, 100) == pytest.approx(0.7)
    assert annealed_beta(0.4, 1.0, 500, 100) == pytest.approx(1.0)
    assert annealed_beta(0.4, 1.0, 5, 0) == 1.0
