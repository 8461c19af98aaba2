"""LMQNetwork: a causal LM's logits as Q-values over its vocabulary, checked against full LM
forwards on tiny seeded GPT-2s; its config checks; the learner training it."""

import dataclasses
import inspect

import gymnasium as gym
import numpy as np
import pytest
import torch

from textdqn.actors.exploration import masked_argmax as acting_argmax
from textdqn.config import Config, EnvConfig, EvalConfig, LearnerConfig, NetworkConfig, validate
from textdqn.errors import ConfigError
from textdqn.learner.learner import Learner
from textdqn.learner.losses import double_dqn_targets
from textdqn.lm import causal_lm
from textdqn.lm_network import LMQNetwork
from textdqn.networks import load_numpy_state_, make_q_network, state_to_numpy
from textdqn.types import TransitionBatch, WeightedSample

V, T = 50, 12
SPEC = {"layers": 1, "width": 16, "heads": 2, "seed": 0}
OBS_SPACE = gym.spaces.Box(0, V - 1, (1 + T,), np.int32)
ACTIONS = gym.spaces.Discrete(V)


def _rows(lengths: list[int], seed: int = 0, pad: int = 0) -> torch.Tensor:
    """Length-prefixed rows [B, 1 + T]: obs[0] = L, then L random tokens, then `pad`."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.full((len(lengths), 1 + T), pad, dtype=torch.int64)
    for row, n in enumerate(lengths):
        obs[row, 0] = n
        obs[row, 1 : 1 + n] = torch.randint(1, V, (n,), generator=gen)
    return obs


def _net(dueling: bool = False, seed: int = 0) -> LMQNetwork:
    config = NetworkConfig(kind="lm", lm={**SPEC, "seed": seed}, dueling=dueling)
    return make_q_network(OBS_SPACE, ACTIONS, config)


def _logits_at_last_token(lm: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """By hand: each row alone through the full LM, its logits at token position L − 1."""
    out = []
    for row in obs:
        n = int(row[0])
        out.append(lm(input_ids=row[None, 1 : 1 + n]).logits[0, n - 1])
    return torch.stack(out)


@torch.no_grad()
def test_q_is_the_lm_logits_at_the_last_real_token():
    net, obs = _net(), _rows([1, 5, 12, 3])
    q = net(obs)
    assert q.shape == (4, V) and q.dtype == torch.float32
    torch.testing.assert_close(q, _logits_at_last_token(net.lm, obs))
    for dtype in (torch.uint16, torch.int32):
        torch.testing.assert_close(net(obs.to(dtype)), q)


@torch.no_grad()
def test_padding_columns_do_not_change_q():
    net, obs = _net(), _rows([2, 6, 4])
    q = net(obs)
    garbage = _rows([2, 6, 4], pad=7)  # same tokens, other padding
    torch.testing.assert_close(net(garbage), q)
    torch.testing.assert_close(net(obs[:, : 1 + 6]), q)  # trimmed to the longest row
    for row in range(3):  # alone, a row is not padded to the batch's longest
        torch.testing.assert_close(net(obs[row : row + 1]), q[row : row + 1])
    changed = obs.clone()
    changed[1, 6] = changed[1, 6] % (V - 1) + 1  # row 1's last real token: only its Q moves
    moved = net(changed)
    assert not torch.allclose(moved[1], q[1])
    torch.testing.assert_close(moved[[0, 2]], q[[0, 2]])


@torch.no_grad()
def test_dueling_is_a_zero_value_head_plus_centred_logits():
    net, obs = _net(dueling=True), _rows([3, 7])
    logits = _logits_at_last_token(net.lm, obs)
    q = net(obs)
    torch.testing.assert_close(q, logits - logits.mean(-1, keepdim=True))  # V starts at 0
    assert torch.equal(q.argmax(1), logits.argmax(1))  # the LM's greedy token
    net.value.bias.fill_(2.5)
    torch.testing.assert_close(net(obs).mean(-1), torch.full((2,), 2.5))  # mean_a Q = V


@torch.no_grad()
def test_masked_argmax_picks_the_best_allowed_token():
    net, obs = _net(), _rows([4, 9])
    q = net(obs)
    order = q.argsort(dim=1, descending=True)
    mask = torch.zeros(2, V, dtype=torch.bool)
    mask[0, order[0, [3, 5, 9]]] = True  # row 0 allows its 4th, 6th and 10th best tokens
    mask[1, order[1, [0, 1]]] = True
    expected = np.array([order[0, 3], order[1, 0]])
    np.testing.assert_array_equal(acting_argmax(q.numpy(), mask.numpy()), expected)


@torch.no_grad()
def test_double_dqn_target_on_a_tiny_lm_by_hand():
    online, target = _net(seed=0), _net(seed=1)
    next_obs = _rows([2, 8, 5], seed=3)
    mask = torch.zeros(3, V, dtype=torch.bool)
    mask[:, [4, 9, 17, 30]] = True
    reward, discount = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.9, 0.81, 0.0])
    y = double_dqn_targets(reward, discount, online(next_obs), target(next_obs), mask)
    q_online = _logits_at_last_token(online.lm, next_obs)
    q_target = _logits_at_last_token(target.lm, next_obs)
    expected = []
    for row in range(3):
        best = max([4, 9, 17, 30], key=lambda a, r=row: float(q_online[r, a]))
        expected.append(float(reward[row] + discount[row] * q_target[row, best]))
    torch.testing.assert_close(y, torch.tensor(expected))


@torch.no_grad()
def test_initial_q_from_a_checkpoint_is_its_logits(tmp_path):
    pretrained = causal_lm(vocab_size=V, max_positions=T, layers=2, width=32, heads=4, seed=7)
    pretrained.save_pretrained(tmp_path / "lm")
    spec = {"path": str(tmp_path / "lm")}
    obs = _rows([1, 6, 12])
    for dueling in (False, True):
        net = make_q_network(OBS_SPACE, ACTIONS, NetworkConfig(kind="lm", lm=spec, dueling=dueling))
        logits = _logits_at_last_token(pretrained, obs)
        expected = logits - logits.mean(-1, keepdim=True) if dueling else logits
        torch.testing.assert_close(net(obs), expected)


def test_checkpoint_whose_vocabulary_is_not_the_action_space_is_a_config_error(tmp_path):
    causal_lm(vocab_size=V + 3, max_positions=T, layers=1, width=16, heads=2).save_pretrained(tmp_path)
    config = NetworkConfig(kind="lm", lm={"path": str(tmp_path)})
    with pytest.raises(ConfigError, match=rf"gives {V + 3} logits .* {V} actions.*set network\.lm"):
        make_q_network(OBS_SPACE, ACTIONS, config)
    short = gym.spaces.Box(0, V - 1, (1 + 2 * T,), np.int32)
    with pytest.raises(ConfigError, match=rf"at most {T} tokens"):
        make_q_network(short, gym.spaces.Discrete(V + 3), config)


def test_lm_kind_needs_token_rows():
    config = NetworkConfig(kind="lm", lm=SPEC)
    for space in (gym.spaces.Box(-1, 1, (4,)), gym.spaces.Box(0, 9, (1,), np.int32)):
        with pytest.raises(ConfigError, match="length-prefixed"):
            make_q_network(space, ACTIONS, config)


def test_weights_travel_as_numpy_with_tied_embeddings_once():
    source, dest = _net(dueling=True, seed=0), _net(dueling=True, seed=1)
    state = state_to_numpy(source)
    assert "lm.lm_head.weight" not in state and "lm.transformer.wte.weight" in state  # tied
    assert set(state) | {"lm.lm_head.weight"} == set(source.state_dict())
    obs = _rows([3, 9])
    load_numpy_state_(dest, state)
    with torch.no_grad():
        torch.testing.assert_close(dest(obs), source(obs))
    assert dest.lm.lm_head.weight is dest.lm.transformer.wte.weight  # still tied


# --- config checks ---


@pytest.mark.parametrize(
    ("network", "needle"),
    [
        (NetworkConfig(kind="gpt"), r"network\.kind = 'gpt' is not a Q-network kind: expected one of"),
        (NetworkConfig(kind="lm"), r"network\.kind = 'lm' needs network\.lm.*YAML anchor"),
        (NetworkConfig(lm=SPEC), r"network\.lm is set but network\.kind = 'auto'.*set network\.kind to 'lm'"),
        (NetworkConfig(kind="lm", lm={**SPEC, "depth": 2}), r"network\.lm\.depth is not a key"),
        (NetworkConfig(kind="lm", lm={"path": "/no/such/dir"}), r"network\.lm\.path = .* not a local"),
        (NetworkConfig(kind="lm", lm={**SPEC, "width": 15}), r"network\.lm\.width = 15 is not a multiple"),
        (NetworkConfig(kind="lm", lm={**SPEC, "layers": 0}), r"network\.lm\.layers = 0 is out of range"),
    ],
)
def test_network_kind_and_lm_errors_say_what_to_do(network, needle):
    with pytest.raises(ConfigError, match=needle):
        validate(Config(network=network))


def test_network_lm_must_be_the_env_lm():
    network = NetworkConfig(kind="lm", lm=SPEC)
    validate(Config(network=network, env=EnvConfig(kwargs={"lm": dict(SPEC)})))  # equal: fine
    validate(Config(network=network))  # an env without an lm: nothing to compare
    other = EnvConfig(kwargs={"lm": {**SPEC, "seed": 1}})
    with pytest.raises(ConfigError, match=r"differs from env\.kwargs\.lm .*set network\.lm to the env's lm"):
        validate(Config(network=network, env=other))
    eval_other = EvalConfig(env_kwargs={"lm": {**SPEC, "seed": 1}})
    with pytest.raises(ConfigError, match=r"differs from eval\.env_kwargs\.lm"):
        validate(Config(network=network, eval=eval_other))


def test_every_network_field_has_a_doc_under_it():
    import textdqn.network_config as module

    source = inspect.getsource(module)
    for f in dataclasses.fields(NetworkConfig):
        lines = source.split(f"\n    {f.name}: ", 1)[1].splitlines()
        assert lines[1].strip().startswith('"""'), f"NetworkConfig.{f.name} has no doc"


def test_unknown_kind_is_also_refused_by_the_factory():
    with pytest.raises(ConfigError, match="not a Q-network kind"):
        make_q_network(OBS_SPACE, ACTIONS, NetworkConfig(kind="gpt"))


# --- learner ---


def _lm_sample(n: int = 6) -> WeightedSample:
    obs = _rows([1 + i % T for i in range(n)], seed=5).numpy().astype(np.int32)
    next_obs = obs.copy()
    for row in range(n):  # s' = s plus one token (the action)
        length = min(obs[row, 0] + 1, T)
        next_obs[row, 0], next_obs[row, length] = length, 3 + row
    mask = np.zeros((n, V), bool)
    mask[:, [3, 8, 21]] = True
    batch = TransitionBatch(
        obs=obs,
        action=np.arange(3, 3 + n, dtype=np.int64),
        reward=np.linspace(-1, 1, n, dtype=np.float32),
        discount=np.full(n, 0.99, np.float32),
        next_obs=next_obs,
        next_action_mask=mask,
        policy_version=np.zeros(n, np.int32),
    )
    return WeightedSample(batch=batch, weights=np.ones(n, np.float32), keys=np.arange(n), shard=0)


def _lm_learner(device: str, **learner) -> Learner:
    config = Config(
        network=NetworkConfig(kind="lm", lm=SPEC),
        learner=LearnerConfig(device=device, lr=1e-3, **learner),
    )
    return Learner(config, OBS_SPACE, ACTIONS)


def test_learner_updates_an_lm_q_network_on_cpu():
    learner = _lm_learner("cpu")
    sample = _lm_sample()
    before = [p.clone() for p in learner.online.parameters()]
    result = learner.update(sample)
    assert result is not None and result.priorities.shape == (6,)
    assert np.isfinite(result.priorities).all() and np.isfinite(result.loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.online.parameters(), strict=True))
    plain = _lm_learner("cpu", double_q=False)
    assert np.isfinite(plain.update(sample).priorities).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_learner_updates_an_lm_q_network_on_cuda_in_bf16():
    sample = _lm_sample()
    results = {bf16: _lm_learner("cuda", bf16=bf16).update(sample) for bf16 in (True, False)}
    for result in results.values():
        assert result.priorities.dtype == np.float32 and np.isfinite(result.priorities).all()
    # bf16 forward passes, float32 targets: close to the float32 run at bf16's precision.
    np.testing.assert_allclose(results[True].priorities, results[False].priorities, rtol=0.05, atol=0.05)
    cpu = _lm_learner("cpu").update(sample)
    np.testing.assert_allclose(results[False].priorities, cpu.priorities, rtol=1e-3, atol=1e-3)


def test_lm_train_layers_updates_only_the_top_layers_final_norm_and_value_head():
    spec = {**SPEC, "layers": 3}
    config = Config(
        network=NetworkConfig(kind="lm", lm=spec, dueling=True, lm_train_layers=1),
        learner=LearnerConfig(device="cpu", lr=1e-2),
    )
    learner = Learner(config, OBS_SPACE, ACTIONS)
    before = {n: p.detach().clone() for n, p in learner.online.named_parameters()}
    for _ in range(3):
        assert learner.update(_lm_sample()) is not None
    changed = {n for n, p in learner.online.named_parameters() if not torch.equal(before[n], p)}
    trained = {n for n, p in learner.online.named_parameters() if p.requires_grad}
    assert changed and changed <= trained
    assert all(n.startswith(("lm.transformer.h.2.", "lm.transformer.ln_f.", "value.")) for n in trained)
    assert "lm.transformer.wte.weight" not in changed  # the embeddings, and the LM head tied to them
    with pytest.raises(ConfigError, match=r"lm_train_layers = 4 exceeds the LM's 3 layers"):
        make_q_network(OBS_SPACE, ACTIONS, NetworkConfig(kind="lm", lm=spec, lm_train_layers=4))
    with pytest.raises(ConfigError, match=r"network\.lm_train_layers is for network\.kind = 'lm'"):
        validate(Config(network=NetworkConfig(lm_train_layers=2)))
    with pytest.raises(ConfigError, match=r"network\.kv_cache is for network\.kind = 'lm'"):
        validate(Config(network=NetworkConfig(kv_cache=True)))


def test_acting_in_bfloat16_gives_float32_q_values_close_to_float32():
    from textdqn.networks import make_acting_network

    class Envs:  # what make_acting_network reads of a vector env
        single_observation_space, single_action_space = OBS_SPACE, ACTIONS

    network = NetworkConfig(kind="lm", lm=SPEC, dueling=True, act_dtype="bfloat16")
    half = make_acting_network(Envs, network)
    full = make_acting_network(Envs, dataclasses.replace(network, act_dtype="float32"))
    assert next(half.parameters()).dtype == torch.bfloat16
    load_numpy_state_(half, state_to_numpy(full))  # weights arrive as float32 numpy
    obs = _rows([3, 9, 12])
    with torch.no_grad():
        q_half, q_full = half(obs), full(obs)
    assert q_half.dtype == torch.float32
    torch.testing.assert_close(q_half, q_full, atol=0.05, rtol=0.05)
    with pytest.raises(ConfigError, match=r"network\.act_dtype = 'float16': use float32 or bfloat16"):
        validate(Config(network=dataclasses.replace(network, act_dtype="float16")))


def test_cpu_bf16_learner_updates_close_to_float32():
    sample = _lm_sample()
    half, full = _lm_learner("cpu", cpu_bf16=True), _lm_learner("cpu")
    seen = {}  # the dtype of a matrix product in the LM, for each learner

    def watch(name):
        def hook(module, args, out):
            seen.setdefault(name, out.dtype)

        return hook

    for name, learner in (("half", half), ("full", full)):
        learner.online.lm.transformer.h[0].mlp.c_fc.register_forward_hook(watch(name))
    results = [learner.update(sample) for learner in (half, full)]
    assert seen == {"half": torch.bfloat16, "full": torch.float32}
    assert all(np.isfinite(r.priorities).all() and r.priorities.dtype == np.float32 for r in results)
    np.testing.assert_allclose(results[0].priorities, results[1].priorities, rtol=0.05, atol=0.05)
    assert next(half.online.parameters()).dtype == torch.float32  # autocast: the weights stay float32


def test_lm_train_layers_is_checked_before_start_and_on_resume():
    from textdqn.cluster.preflight import _check_networks_fit, check_before_start
    from textdqn.config import load_config

    shipped = load_config("configs/textgen.yaml", ("network.lm_train_layers=3",))  # the shipped LM has 2
    with pytest.raises(ConfigError, match=r"network\.lm_train_layers = 3 exceeds the LM's 2 layers"):
        check_before_start(shipped, "serial", None, None)
    spec = {**SPEC, "layers": 3}
    one = Config(
        network=NetworkConfig(kind="lm", lm=spec, lm_train_layers=1), learner=LearnerConfig(device="cpu")
    )
    learner = Learner(one, OBS_SPACE, ACTIONS)
    learner.update(_lm_sample())
    state = learner.state_dict()
    _check_networks_fit(one, (OBS_SPACE, ACTIONS), state)  # the same settings: fits
    two = dataclasses.replace(one, network=dataclasses.replace(one.network, lm_train_layers=2))
    with pytest.raises(ConfigError, match=r"optimizer holds \d+ trained tensors but this config trains \d+"):
        _check_networks_fit(two, (OBS_SPACE, ACTIONS), state)
    with pytest.raises(ConfigError, match=r"cpu_bf16 = true does nothing with learner\.bf16 = false"):
        validate(Config(learner=LearnerConfig(bf16=False, cpu_bf16=True)))


def test_with_lm_train_layers_the_learner_publishes_only_what_trains_and_actors_act_the_same():
    from textdqn.networks import make_acting_network

    class Envs:  # what make_acting_network reads of a vector env
        single_observation_space, single_action_space = OBS_SPACE, ACTIONS

    network = NetworkConfig(kind="lm", lm={**SPEC, "layers": 3}, dueling=True, lm_train_layers=1)
    learner = Learner(
        Config(network=network, learner=LearnerConfig(device="cpu", lr=1e-2)), OBS_SPACE, ACTIONS
    )
    for _ in range(3):
        assert learner.update(_lm_sample()) is not None
    published = learner.weights()
    trained = {n for n, p in learner.online.named_parameters() if p.requires_grad}
    assert set(published) == trained  # no embeddings, no lower layers
    full = state_to_numpy(learner.online)
    assert sum(a.nbytes for a in published.values()) < 0.5 * sum(a.nbytes for a in full.values())
    actor = make_acting_network(Envs, network)  # built from the same LM: the frozen part is there
    load_numpy_state_(actor, published)
    obs = _rows([2, 7, 12])
    with torch.no_grad():
        torch.testing.assert_close(actor(obs), learner.online(obs))
    del published["value.bias"]  # a trained parameter missing is still an error
    with pytest.raises(RuntimeError, match=r"missing keys \['value.bias'\]"):
        load_numpy_state_(actor, published)
