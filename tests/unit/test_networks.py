"""Q-networks: dueling head algebra, the factory's space checks, numpy weight transfer."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from textdqn.errors import ConfigError
from textdqn.networks import MLPQNetwork, load_numpy_state_, make_q_network, state_to_numpy


def _net(seed, dueling=True, obs_dim=4, num_actions=3):
    torch.manual_seed(seed)
    return MLPQNetwork(obs_dim, num_actions, hidden=(8, 8), dueling=dueling)


def test_dueling_head_is_value_plus_centred_advantage():
    net = _net(0)
    obs = torch.randn(5, 4)
    q = net(obs)
    assert q.shape == (5, 3)
    with torch.no_grad():
        features = net.torso(obs)
        adv, value = net.advantage(features), net.value(features)
        q = q.detach()
    # Q − mean_a Q = A − mean_a A, and mean_a Q = V
    torch.testing.assert_close(q - q.mean(-1, keepdim=True), adv - adv.mean(-1, keepdim=True))
    torch.testing.assert_close(q.mean(-1), value.squeeze(-1))


def test_plain_head_is_one_linear_layer():
    net = _net(0, dueling=False)
    assert net.value is None
    obs = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(net(obs), net.advantage(net.torso(obs)))


def test_extra_observation_dims_are_flattened():
    net = _net(0, obs_dim=6)
    obs = torch.randn(2, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(net(obs), net(obs.reshape(2, 6)))


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="hidden"):
        MLPQNetwork(4, 2, hidden=(8, 0))


def test_make_q_network_for_cartpole():
    env = gym.make("CartPole-v1")
    try:
        net = make_q_network(env.observation_space, env.action_space, hidden=(16,), dueling=True)
        obs = np.stack([env.observation_space.sample() for _ in range(7)])
    finally:
        env.close()
    assert isinstance(net, MLPQNetwork)
    assert net(torch.from_numpy(obs)).shape == (7, 2)


@pytest.mark.parametrize(
    ("obs_space", "act_space", "needle"),
    [
        (gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(-1, 1, (2,)), "Discrete action"),
        (gym.spaces.Discrete(5), gym.spaces.Discrete(2), "float Box"),
        (gym.spaces.Box(0, 100, (16,), dtype=np.int32), gym.spaces.Discrete(2), "token"),
        (gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))}), gym.spaces.Discrete(2), "transformer"),
    ],
)
def test_unsupported_spaces_raise_config_error(obs_space, act_space, needle):
    with pytest.raises(ConfigError, match=needle):
        make_q_network(obs_space, act_space, hidden=(8,), dueling=False)


def test_numpy_state_round_trip_gives_identical_outputs():
    source, dest = _net(0), _net(1)
    obs = torch.randn(6, 4)
    assert not torch.equal(source(obs), dest(obs))
    state = state_to_numpy(source)
    assert set(state) == set(source.state_dict())
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    for value in state.values():
        value.flags.writeable = False  # as Ray's object store hands them out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_numpy_state_(dest, state)
    with torch.no_grad():
        assert torch.equal(source(obs), dest(obs))


def test_numpy_state_is_a_copy():
    net = _net(0)
    state = state_to_numpy(net)
    before = state["advantage.bias"].copy()
    with torch.no_grad():
        net.advantage.bias.add_(1.0)
    np.testing.assert_array_equal(state["advantage.bias"], before)


def test_numpy_state_of_bfloat16_module_is_float32():
    net = _net(0).to(torch.bfloat16)
    state = state_to_numpy(net)
    assert all(v.dtype == np.float32 for v in state.values())
    load_numpy_state_(net, state)  # and loads back (cast to the module's dtype)


def test_loading_a_mismatched_state_raises():
    state = state_to_numpy(_net(0, num_actions=3))
    with pytest.raises(RuntimeError, match="advantage"):
        load_numpy_state_(_net(0, num_actions=2), state)
