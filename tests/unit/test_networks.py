"""Q-networks: dueling head algebra, the factory's space checks, numpy weight transfer."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from textdqn.config import Config, NetworkConfig, validate
from textdqn.errors import ConfigError
from textdqn.networks import (
    MLPQNetwork,
    TransformerQNetwork,
    load_numpy_state_,
    make_q_network,
    state_to_numpy,
)


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
        net = make_q_network(env.observation_space, env.action_space, NetworkConfig(hidden=(16,)))
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
        (gym.spaces.Box(0, 100, (4, 4), dtype=np.int32), gym.spaces.Discrete(2), "token ids"),
        (gym.spaces.Box(-1, 100, (16,), dtype=np.int32), gym.spaces.Discrete(2), "low >= 0"),
        (gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))}), gym.spaces.Discrete(2), "transformer"),
    ],
)
def test_unsupported_spaces_raise_config_error(obs_space, act_space, needle):
    with pytest.raises(ConfigError, match=needle):
        make_q_network(obs_space, act_space, NetworkConfig(hidden=(8,), dueling=False))


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


# --- transformer Q-network (token observations) ---

VOCAB, T = 20, 12
TINY = {"layers": 1, "width": 16, "heads": 2}


def _tokens(rows: int = 4, length: int = 8, seed: int = 0) -> torch.Tensor:
    """[CLS]-first token rows with 2..length real tokens, padded with 0 to T."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(rows, T, dtype=torch.int64)
    for row in range(rows):
        n = 2 + row % (length - 1)
        tokens[row, 0] = 2
        tokens[row, 1:n] = torch.randint(3, VOCAB, (n - 1,), generator=gen)
    return tokens


def _transformer(dueling=True, seed=0):
    torch.manual_seed(seed)
    return TransformerQNetwork(VOCAB, T, 5, dueling=dueling, **TINY).eval()


def test_transformer_gives_q_per_action_for_any_integer_dtype():
    net, tokens = _transformer(), _tokens()
    with torch.no_grad():
        q = net(tokens)
        assert q.shape == (4, 5) and q.dtype == torch.float32 and torch.isfinite(q).all()
        for dtype in (torch.uint16, torch.int32):
            torch.testing.assert_close(net(tokens.to(dtype)), q)
        assert torch.isfinite(net(torch.zeros(2, T, dtype=torch.int64))).all()  # all padding


def test_transformer_ignores_padding():
    net, tokens = _transformer(), _tokens(length=6)
    longer = torch.cat([tokens, torch.zeros(4, 4, dtype=tokens.dtype)], dim=1)[:, :T]
    with torch.no_grad():
        q, q_short = net(tokens), net(tokens[:, :6])
        torch.testing.assert_close(net(longer), q)
        torch.testing.assert_close(q_short, q)  # fewer pad positions, same Q
        for row in range(4):  # alone, a row needs no padding; in the batch it is padded
            torch.testing.assert_close(net(tokens[row : row + 1]), q[row : row + 1])
        net.encoder.get_input_embeddings().weight[0].add_(5.0)  # what a pad embeds: irrelevant
        torch.testing.assert_close(net(tokens), q)
        changed = tokens.clone()
        changed[:, 1] = (changed[:, 1] + 1 - 3) % (VOCAB - 3) + 3  # a real token: Q moves
        assert not torch.allclose(net(changed), q)


def test_a_batch_of_short_and_long_rows_in_two_passes_gives_each_rows_own_q():
    """A batch whose short half is much shorter runs as two passes (each cut to its longest
    row); Q and its gradients are the same as row by row."""
    net = _transformer()
    short, long = _tokens(rows=12, length=4, seed=1), _tokens(rows=12, length=T, seed=2)
    tokens = torch.cat([long[:6], short, long[6:]])  # interleaved: the order must come back
    passes, state = [], net._state
    net._state = lambda rows, mask: passes.append(len(rows)) or state(rows, mask)
    q = net(tokens)
    assert passes == [12, 12]
    for row in range(len(tokens)):
        torch.testing.assert_close(q[row : row + 1], net(tokens[row : row + 1]))
    q[:, 0].sum().backward()
    grads = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    net.zero_grad()
    sum(net(tokens[row : row + 1])[0, 0] for row in range(len(tokens))).backward()
    for before, after in zip(grads, [p.grad for p in net.parameters() if p.grad is not None], strict=True):
        torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_transformer_dueling_head_is_value_plus_centred_advantage():
    net, tokens = _transformer(), _tokens()
    with torch.no_grad():
        q = net(tokens)
        hidden = net.encoder(input_ids=tokens, attention_mask=(tokens != 0).long()).last_hidden_state[:, 0]
        adv, value = net.advantage(hidden), net.value(hidden)
    torch.testing.assert_close(q - q.mean(-1, keepdim=True), adv - adv.mean(-1, keepdim=True))
    torch.testing.assert_close(q.mean(-1), value.squeeze(-1))
    plain = _transformer(dueling=False)
    assert plain.value is None and plain(tokens).shape == (4, 5)


def test_make_q_network_dispatches_token_boxes_to_the_transformer():
    space = gym.spaces.Box(0, VOCAB - 1, (T,), np.uint16)
    config = NetworkConfig(encoder_layers=1, encoder_width=16, encoder_heads=2, dueling=False)
    net = make_q_network(space, gym.spaces.Discrete(3), config)
    assert isinstance(net, TransformerQNetwork) and net.value is None
    assert net.encoder.get_input_embeddings().num_embeddings == VOCAB
    assert net.encoder.config.max_position_embeddings == T
    obs = np.stack([space.sample() for _ in range(3)])
    assert net(torch.from_numpy(obs)).shape == (3, 3)
    other = make_q_network(space, gym.spaces.Discrete(3), config)
    load_numpy_state_(other, state_to_numpy(net))  # weights travel as numpy, as for the MLP
    with torch.no_grad():
        torch.testing.assert_close(other(torch.from_numpy(obs)), net(torch.from_numpy(obs)))


def test_encoder_ff_sets_the_feed_forward_width():
    space = gym.spaces.Box(0, VOCAB - 1, (T,), np.uint16)
    default = make_q_network(space, gym.spaces.Discrete(3), NetworkConfig(encoder_width=16, encoder_heads=2))
    narrow = make_q_network(
        space, gym.spaces.Discrete(3), NetworkConfig(encoder_width=16, encoder_heads=2, encoder_ff=24)
    )
    assert default.encoder.config.intermediate_size == 64  # BERT's 4 × the width
    assert narrow.encoder.config.intermediate_size == 24
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in default.parameters())


def test_pretrained_encoder_loads_from_a_local_directory(tmp_path):
    source = _transformer()
    source.encoder.save_pretrained(tmp_path / "encoder")
    net = TransformerQNetwork(VOCAB + 3, T, 5, pretrained=str(tmp_path / "encoder")).eval()
    assert net.encoder.get_input_embeddings().num_embeddings == VOCAB + 3  # resized to the env's
    torch.testing.assert_close(
        net.encoder.encoder.layer[0].attention.self.query.weight,
        source.encoder.encoder.layer[0].attention.self.query.weight,
    )
    with pytest.raises(ConfigError, match="max_tokens"):
        TransformerQNetwork(VOCAB, T + 1, 5, pretrained=str(tmp_path / "encoder"))


def test_missing_pretrained_path_is_a_config_error(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"network\.pretrained = .*nope.* not a local directory"):
        TransformerQNetwork(VOCAB, T, 5, pretrained=missing)
    with pytest.raises(ConfigError, match=r"network\.pretrained"):
        validate(Config(network=NetworkConfig(pretrained=missing)))


def test_encoder_heads_must_divide_the_width():
    with pytest.raises(ConfigError, match=r"network\.encoder_width = 30 is not a multiple of"):
        validate(Config(network=NetworkConfig(encoder_width=30, encoder_heads=4)))
    with pytest.raises(ValueError, match="heads dividing width"):
        TransformerQNetwork(VOCAB, T, 5, layers=1, width=30, heads=4)


def test_q_scale_multiplies_the_heads_output():
    torch.manual_seed(0)
    plain = MLPQNetwork(4, 3, (8,), dueling=True)
    scaled = MLPQNetwork(4, 3, (8,), dueling=True, q_scale=40.0)
    scaled.load_state_dict(plain.state_dict())
    obs = torch.randn(5, 4)
    torch.testing.assert_close(scaled(obs), 40.0 * plain(obs))
