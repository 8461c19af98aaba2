"""A single-process DQN written to CleanRL's published recipe: `textdqn bench train`'s peer
for what one file with no framework does on the same machine.

The recipe is CleanRL's `dqn.py` with its defaults (the CartPole-v1 settings of its docs):
one env; a Q-network of 120 and 84 ReLU units; Adam at lr 2.5e-4; a uniform replay of 10,000
transitions; batch 128; γ 0.99; the target network copied every 500 env steps; ε linear from
1 to 0.05 over half of the 500,000-step budget; learning from env step 10,000, one update
every 10 env steps; the MSE loss on r + γ·max_a Q_target(s', a) (a truncated episode
bootstraps, a terminated one does not). It is written here, not imported: CleanRL is a set of
scripts, not a package. For token observations (dialogue-text, TextGen-v0) the config's own
Q-network replaces the MLP: the loop and its settings stay the recipe's.

What CleanRL leaves out is a stopping rule. This peer is judged by textdqn's own: the
config's greedy evaluation (`eval.episodes` episodes on `eval.num_envs` envs, every
`eval.every_env_steps` env steps, with textdqn's Evaluator) must meet `stop`'s target; both
sides pay the same evaluation cost. Where the env reports action masks (Dialogue-v0), ε
draws among the valid actions and the greedy and target maxima are taken over them.

Call `run_dqn_baseline(config, seed)`; it returns a `PeerRunResult`. `textdqn bench
dqn-baseline CONFIG` runs it alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from textdqn.actors.evaluator import Evaluator
from textdqn.actors.exploration import linear_decay, masked_argmax
from textdqn.bench.train_bench import PeerRunResult, check_judgeable
from textdqn.config import Config
from textdqn.envs import make_env
from textdqn.network_config import NetworkConfig
from textdqn.networks import make_q_network, state_to_numpy


@dataclasses.dataclass(frozen=True)
class Recipe:
    """CleanRL dqn.py's defaults."""

    total_timesteps: int = 500_000
    lr: float = 2.5e-4
    buffer_size: int = 10_000
    gamma: float = 0.99
    target_network_frequency: int = 500
    batch_size: int = 128
    start_e: float = 1.0
    end_e: float = 0.05
    exploration_fraction: float = 0.5
    learning_starts: int = 10_000
    train_frequency: int = 10
    hidden: tuple[int, ...] = (120, 84)


class UniformReplay:
    """A ring buffer of single transitions, sampled uniformly (CleanRL uses SB3's)."""

    def __init__(
        self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype, num_actions: int
    ) -> None:
        self.obs = np.zeros((capacity, *obs_shape), obs_dtype)
        self.next_obs = np.zeros_like(self.obs)
        self.action = np.zeros(capacity, np.int64)
        self.reward = np.zeros(capacity, np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.next_mask = np.ones((capacity, num_actions), bool)
        self.capacity, self.size, self._at = capacity, 0, 0

    def add(self, obs, action, reward, next_obs, done, next_mask) -> None:
        i = self._at
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.done[i] = next_obs, done
        if next_mask is not None:
            self.next_mask[i] = next_mask
        self._at = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(self.size, size=n)
        fields = ("obs", "action", "reward", "next_obs", "done", "next_mask")
        return {k: torch.from_numpy(getattr(self, k)[idx]) for k in fields}


def recipe_network(config: Config, space, recipe: Recipe) -> NetworkConfig:
    """The recipe's 120-84 MLP for vector observations; the config's own Q-network for token
    observations (dialogue-text's transformer, TextGen-v0's LM), which no MLP can read."""
    vector = config.network.kind == "mlp" or (
        config.network.kind == "auto" and np.issubdtype(space.dtype, np.floating)
    )
    if not vector:
        return config.network
    return dataclasses.replace(config.network, kind="mlp", hidden=recipe.hidden, dueling=False, q_scale=1.0)


def _mask(info: dict) -> np.ndarray | None:
    mask = info.get("action_mask")
    return None if mask is None else np.asarray(mask, bool)


def run_dqn_baseline(
    config: Config,
    seed: int = 0,
    recipe: Recipe = Recipe(),
    time_budget_s: float | None = None,
    log: Callable[[str], None] = print,
) -> PeerRunResult:
    """Train the recipe's DQN on config.env until config.stop's target (greedy evaluation),
    recipe.total_timesteps, or time_budget_s (default config.stop.time_s)."""
    from textdqn.stopping import target_reached

    check_judgeable(config, "the DQN baseline")
    budget = config.stop.time_s if time_budget_s is None else time_budget_s
    set_up = time.perf_counter()
    torch.set_num_threads(1)  # one process, one env: as CleanRL runs on a laptop
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = make_env(config.env)
    network = recipe_network(config, env.observation_space, recipe)
    q_net = make_q_network(env.observation_space, env.action_space, network)
    target_net = make_q_network(env.observation_space, env.action_space, network)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=recipe.lr)
    evaluator = Evaluator(dataclasses.replace(config, network=network))
    space = env.observation_space
    n = int(env.action_space.n)
    replay = UniformReplay(recipe.buffer_size, space.shape, space.dtype, n)
    obs, info = env.reset(seed=seed)
    mask = _mask(info)
    evals: list[tuple[float, int, float]] = []
    final: dict[str, float] = {}
    reached, updates, step = False, 0, 0
    start = time.perf_counter()
    decay = int(recipe.exploration_fraction * recipe.total_timesteps)
    while step < recipe.total_timesteps and not reached and time.perf_counter() - start < budget:
        epsilon = linear_decay(recipe.start_e, recipe.end_e, decay, step)
        if rng.random() < epsilon:
            action = int(rng.choice(np.flatnonzero(mask))) if mask is not None else int(rng.integers(n))
        else:
            with torch.no_grad():
                q = q_net(torch.as_tensor(obs[None])).numpy()
            action = int(masked_argmax(q, None if mask is None else mask[None])[0])
        next_obs, reward, terminated, truncated, info = env.step(action)
        next_mask = _mask(info)
        replay.add(obs, action, reward, next_obs, float(terminated), next_mask)
        obs, mask = next_obs, next_mask
        if terminated or truncated:
            obs, info = env.reset()
            mask = _mask(info)
        step += 1
        if step > recipe.learning_starts:
            if step % recipe.train_frequency == 0:
                _update(q_net, target_net, optimizer, replay.sample(recipe.batch_size, rng), recipe.gamma)
                updates += 1
            if step % recipe.target_network_frequency == 0:
                target_net.load_state_dict(q_net.state_dict())
        if step % config.eval.every_env_steps == 0:
            final = evaluator.evaluate(state_to_numpy(q_net), config.eval.episodes)
            reached = target_reached(config.stop, final)
            wall = time.perf_counter() - start
            evals.append((wall, step, final[config.stop.target_metric]))
            log(
                f"[dqn-baseline] {wall:6.1f} s  {step:8,d} env steps  greedy eval "
                f"{config.stop.target_metric} {final[config.stop.target_metric]:.3f}"
                + ("  (target reached)" if reached else "")
            )
    env.close()
    return PeerRunResult(
        name="dqn-baseline",
        reached_target=reached,
        wall_s=time.perf_counter() - start,
        setup_s=start - set_up,
        env_steps=step,
        final_eval=final,
        evals=evals,
        updates=updates,
    )


def _update(q_net, target_net, optimizer, batch: dict[str, torch.Tensor], gamma: float) -> None:
    """One step of CleanRL's loss: MSE between Q(s, a) and r + γ·max over valid a' of
    Q_target(s', a') (0 after termination)."""
    with torch.no_grad():
        q_next = target_net(batch["next_obs"]).masked_fill(~batch["next_mask"], float("-inf"))
        best = q_next.max(dim=1).values
        best = torch.where(batch["done"] > 0, 0.0, best)  # a final state may have no valid action
        target = batch["reward"] + gamma * best
    q = q_net(batch["obs"]).gather(1, batch["action"][:, None]).squeeze(1)
    loss = F.mse_loss(q, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
