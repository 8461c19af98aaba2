"""Greedy evaluation (ε = 0) on env instances of its own."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from textdqn.actors.exploration import masked_argmax
from textdqn.config import BASELINE_AGENTS, Config
from textdqn.envs import action_masks, envs_have, episode_infos, make_env, make_vector_env
from textdqn.errors import ConfigError
from textdqn.lm_cache import acting_q
from textdqn.networks import load_numpy_state_, make_acting_network


class Episode(NamedTuple):
    """One shown episode: the env's text of it and its outcome (return, success, turns, ...)."""

    text: str
    outcome: dict[str, float]


Policy = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
_ENV_AGENTS = {  # baseline -> (the env method that plays it, an env that has one)
    "rule": ("rule_action", "textdqn/Dialogue-v0's rule agent, TextGen-v0's reference greedy"),
    "sample": ("sample_action", "TextGen-v0's reference LM sampled at temperature 1"),
    "beam": ("beam_action", "TextGen-v0's constrained beam search under the reference LM"),
}


def baseline_policy(name: str, envs: gym.vector.VectorEnv, seed: int = 0) -> Policy:
    """A baseline agent for `envs`: "random" (uniform over all actions, as TC-Bot's random
    agent), "rule" (the env's own rule agent, its rule_action() method), "sample" (the env's
    sample_action(): TextGen-v0's reference LM sampled at temperature 1) or "beam" (the env's
    beam_action(): TextGen-v0's constrained beam search)."""
    if name == "random":
        rng = np.random.default_rng(seed)
        n = int(envs.single_action_space.n)
        return lambda obs, mask: rng.integers(n, size=len(obs))
    if name in _ENV_AGENTS:
        method, example = _ENV_AGENTS[name]
        if not envs_have(envs, method):
            raise ConfigError(
                f"--agent {name} needs an env with a {method}() method (as {example}); this env has "
                "none: use --agent random"
            )
        return lambda obs, mask: np.asarray(envs.call(method), dtype=np.int64)
    raise ConfigError(f"unknown baseline agent {name!r}: use one of {BASELINE_AGENTS}")


def _numeric_info(final: dict) -> dict[str, float]:
    """The numbers of one episode's final info (success, turns, coverage, ...), as floats."""
    return {
        key: float(value)
        for key, value in final.items()
        if isinstance(value, (numbers.Real, np.bool_)) and key != "action_mask" and not key.startswith("_")
    }


def _episode_end_means(finals: list[dict]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for final in finals:
        for key, value in _numeric_info(final).items():
            values.setdefault(key, []).append(value)
    return {
        "success_rate" if key == "success" else f"{key}_mean": float(np.mean(v)) for key, v in values.items()
    }


def _plan(envs: SyncVectorEnv, episodes: int) -> None:
    """Where the envs can plan their episodes (TextGen-v0: every test prompt once, in order),
    share `episodes` among them round-robin, as the evaluator's quotas do."""
    for slot, env in enumerate(envs.envs):
        if env.has_wrapper_attr("plan_episodes"):
            env.get_wrapper_attr("plan_episodes")(slot, len(envs.envs), episodes)


class Evaluator:
    """Runs the greedy policy for a fixed number of episodes and reports their metrics.

    Each env slot runs its share of the episodes (episodes // num_envs, plus one for the
    first episodes % num_envs slots), so short episodes are not over-represented.
    """

    def __init__(self, config: Config, seed: int = 10_000) -> None:
        self.num_envs = config.eval.num_envs
        env = dataclasses.replace(config.env, kwargs={**config.env.kwargs, **config.eval.env_kwargs})
        self.envs = make_vector_env(env, self.num_envs)
        self._env_config = env
        self.net = make_acting_network(self.envs, config.network)
        self._q = acting_q(self.net, config.network.kv_cache)
        self._seed = seed

    @torch.no_grad()
    def evaluate(self, weights: dict[str, np.ndarray], episodes: int) -> dict[str, float]:
        """The greedy policy of `weights`: see `run` for the metrics."""
        load_numpy_state_(self.net, weights)
        self._q.clear()
        return self.run(self._greedy, episodes)

    def _greedy(self, obs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        return masked_argmax(self._q(torch.as_tensor(obs)).numpy(), mask)

    def run(self, policy: Policy, episodes: int) -> dict[str, float]:
        """return_mean, return_std, length_mean, episodes, and the means of the env's numeric
        episode-end info: success_rate for "success", <key>_mean for the others (turns_mean,
        coverage_mean, ...), over the episodes that report the key.

        policy(obs [N, ...], mask [N, A] or None) -> actions [N] for the evaluator's N envs.
        """
        quota = np.full(self.num_envs, episodes // self.num_envs)
        quota[: episodes % self.num_envs] += 1
        _plan(self.envs, episodes)
        obs, info = self.envs.reset(seed=self._seed)
        mask = action_masks(info, self.num_envs)
        ep_return = np.zeros(self.num_envs)
        ep_length = np.zeros(self.num_envs, dtype=np.int64)
        returns, lengths, ends = [], [], []
        while quota.sum() > 0:
            actions = policy(obs, mask)
            obs, reward, terminated, truncated, info = self.envs.step(actions)
            mask = action_masks(info, self.num_envs)
            ep_return += reward
            ep_length += 1
            done = terminated | truncated
            finals = iter(episode_infos(info))
            for i in np.flatnonzero(done):
                final = next(finals, {})
                if quota[i] > 0:
                    quota[i] -= 1
                    returns.append(ep_return[i])
                    lengths.append(ep_length[i])
                    ends.append(final)
            ep_return[done] = 0
            ep_length[done] = 0
        out = {
            "return_mean": float(np.mean(returns)),
            "return_std": float(np.std(returns)),
            "length_mean": float(np.mean(lengths)),
            "episodes": float(len(returns)),
        }
        out.update(_episode_end_means(ends))
        # e.g. TextGen-v0's corpus perplexity, and its texts' variety as a set (from info["text"])
        derived = getattr(self.envs.envs[0].unwrapped, "evaluation_metrics", None)
        texts = [final["text"] for final in ends if isinstance(final.get("text"), str)]
        return {**out, **(derived(out, texts) if derived else {})}

    @torch.no_grad()
    def show(self, agent: str, episodes: int, weights: dict[str, np.ndarray] | None = None) -> list[Episode]:
        """`episodes` episodes of `agent` ("greedy" with `weights`, or a baseline) on one env of
        the evaluation settings, each as readable text (the env's episode_text()) and outcome.

        Episodes run one at a time on a vector env of one that does not reset by itself, so the
        finished episode's text can still be read from the env.
        """
        env_config = self._env_config
        envs = SyncVectorEnv([lambda: make_env(env_config)], autoreset_mode=AutoresetMode.DISABLED)
        try:
            if not envs_have(envs, "episode_text"):
                raise ConfigError(
                    f"{env_config.id!r} cannot show its episodes as text (it has no episode_text() "
                    "method, as the textdqn language envs have): evaluate it without --show"
                )
            if agent == "greedy":
                load_numpy_state_(self.net, weights or {})
                self._q.clear()
                policy = self._greedy
            else:
                policy = baseline_policy(agent, envs, self._seed)
            _plan(envs, episodes)
            return [self._show_one(envs, policy, self._seed + i) for i in range(episodes)]
        finally:
            envs.close()

    @staticmethod
    def _show_one(envs: SyncVectorEnv, policy: Policy, seed: int) -> Episode:
        obs, info = envs.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = envs.step(policy(obs, action_masks(info, 1)))
            total += float(reward[0])
            done = bool(terminated[0] or truncated[0])
        final = _numeric_info({key: value[0] for key, value in info.items() if not key.startswith("_")})
        return Episode(text=envs.call("episode_text")[0], outcome={"return": total, **final})

    def close(self) -> None:
        self.envs.close()
