"""The single-process DQN peer (CleanRL's recipe): its replay, its update, and a short run
that keeps its own books (updates every 10 env steps after learning starts, evaluations on
the config's schedule, the target judged as textdqn judges it)."""

import dataclasses

import numpy as np
import pytest
import torch

from textdqn.bench.dqn_baseline import Recipe, UniformReplay, _update, run_dqn_baseline
from textdqn.config import load_config
from textdqn.errors import ConfigError


def test_uniform_replay_wraps_and_samples_what_it_holds():
    replay = UniformReplay(4, (2,), np.dtype(np.float32), 3)
    for i in range(6):
        replay.add(np.full(2, i), i % 3, float(i), np.full(2, i + 1), 0.0, np.array([True, i % 2 == 0, True]))
    assert replay.size == 4
    batch = replay.sample(64, np.random.default_rng(0))
    assert set(batch["reward"].tolist()) == {2.0, 3.0, 4.0, 5.0}  # 0 and 1 were overwritten
    assert torch.equal(batch["next_obs"][:, 0], batch["obs"][:, 0] + 1)
    assert torch.equal(batch["next_mask"][:, 1], batch["reward"] % 2 == 0)


def test_update_moves_q_toward_the_masked_one_step_target():
    net = torch.nn.Linear(1, 2, bias=False)
    target = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        net.weight.zero_()
        target.weight.copy_(torch.tensor([[1.0], [5.0]]))
    batch = {
        "obs": torch.ones(2, 1),
        "action": torch.tensor([0, 0]),
        "reward": torch.tensor([1.0, 1.0]),
        "next_obs": torch.ones(2, 1),
        "done": torch.tensor([0.0, 1.0]),
        "next_mask": torch.tensor([[True, False], [False, False]]),  # the 5 is masked; row 2 ended
    }
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    _update(net, target, optimizer, batch, gamma=0.5)
    # targets 1 + 0.5·1 = 1.5 and 1 (terminal, no valid action: no NaN); Q = 0, so the MSE's
    # gradient on w0 is (0 − 1.5) + (0 − 1) = −2.5 and SGD at 0.5 moves w0 to 1.25.
    assert net.weight[0, 0].item() == pytest.approx(1.25)
    assert net.weight[1, 0].item() == 0.0


def test_a_short_run_keeps_its_books():
    config = load_config(
        "configs/cartpole.yaml", ("eval.every_env_steps=500", "eval.episodes=2", "eval.num_envs=2")
    )
    recipe = dataclasses.replace(Recipe(), total_timesteps=2000, learning_starts=600)
    lines = []
    result = run_dqn_baseline(config, seed=3, recipe=recipe, log=lines.append)
    assert not result.reached_target  # 475 is out of reach in 2000 steps
    assert result.env_steps == 2000
    assert result.updates == (2000 - 600) // 10
    assert [steps for _, steps, _ in result.evals] == [500, 1000, 1500, 2000]
    assert result.evals[-1][2] == result.final_eval["return_mean"]
    assert len(lines) == 4 and "greedy eval return_mean" in lines[0]


def test_a_run_stops_at_the_target():
    config = load_config("configs/cartpole.yaml", ("eval.every_env_steps=200", "stop.target_value=5"))
    result = run_dqn_baseline(
        config, seed=0, recipe=dataclasses.replace(Recipe(), total_timesteps=5000), log=print
    )
    assert result.reached_target and result.env_steps == 200  # any policy balances a pole 5 steps


@pytest.mark.parametrize(
    ("override", "word"),
    [("stop.target_metric=''", r"stop\.target_metric"), ("eval.every_env_steps=0", r"eval\.every_env_steps")],
)
def test_a_config_it_cannot_judge_is_refused(override, word):
    with pytest.raises(ConfigError, match=word):
        run_dqn_baseline(load_config("configs/cartpole.yaml", (override,)))
