"""Environments: making single and vector envs from an EnvConfig, with clear errors.

textdqn's own environments register under the `textdqn/` namespace when this package is
imported; any gymnasium env with a Discrete action space works too (CartPole-v1 is the
smoke test).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from textdqn.config import Config, EnvConfig
from textdqn.errors import ConfigError

if "textdqn/Dialogue-v0" not in gym.registry:
    gym.register(id="textdqn/Dialogue-v0", entry_point="textdqn.envs.dialogue.env:DialogueEnv")
if "textdqn/TextGen-v0" not in gym.registry:
    gym.register(id="textdqn/TextGen-v0", entry_point="textdqn.envs.textgen.env:TextGenEnv")


def make_env(config: EnvConfig) -> gym.Env:
    """One env; ConfigError for an unknown id, bad kwargs or a non-Discrete action space."""
    kwargs = dict(config.kwargs)
    if config.max_episode_steps:
        kwargs["max_episode_steps"] = config.max_episode_steps
    try:
        env = gym.make(config.id, **kwargs)
    except gym.error.Error as e:
        known = sorted(k for k in gym.registry if k.startswith("textdqn/"))
        raise ConfigError(
            f"env.id = {config.id!r} cannot be made ({e}). Use a registered gymnasium id "
            f"such as 'CartPole-v1'{' or one of ' + ', '.join(known) if known else ''}."
        ) from None
    except TypeError as e:
        raise ConfigError(f"env.kwargs = {config.kwargs!r} are not accepted by {config.id!r}: {e}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ConfigError(
            f"env.id = {config.id!r} has action space {env.action_space}; textdqn needs a Discrete one"
        )
    return env


def make_vector_env(config: EnvConfig, num_envs: int) -> SyncVectorEnv:
    """`num_envs` envs stepped together; a finished episode resets in the same step, and its
    final observation and info come back in info["final_obs"] / info["final_info"]. An env
    class may name its own SyncVectorEnv subclass in `vector_env_class` (TextGen-v0 does, to
    batch its reference LM across the envs)."""
    probe = make_env(config)  # fail here, with our message, rather than inside the vector env
    vector_class = getattr(probe.unwrapped, "vector_env_class", None)  # e.g. batched LM reads
    probe.close()
    env_fns = [lambda: make_env(config) for _ in range(num_envs)]
    if vector_class is not None:
        return vector_class(env_fns)
    return SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)


def envs_have(envs: gym.vector.VectorEnv, name: str) -> bool:
    """Whether every env of `envs` has the attribute `name` (e.g. a rule_action() method)."""
    return all(envs.call("has_wrapper_attr", name))


def save_run_files(envs: SyncVectorEnv, run_dir: Path) -> None:
    """Let the env write what reading its runs needs (e.g. a tokenizer) into `run_dir`: its
    save_run_files(run_dir) method, where it has one."""
    env = envs.envs[0]
    if env.has_wrapper_attr("save_run_files"):
        env.get_wrapper_attr("save_run_files")(run_dir)


def check_warm_start(config: Config, has_attr: Callable[[str], bool]) -> None:
    """ConfigError when actors.warm_start_steps asks for an agent the env lacks; `has_attr`
    says whether the env has a named attribute (e.g. gymnasium's env.has_wrapper_attr)."""
    a = config.actors
    if a.demonstrates and not has_attr(a.warm_start_method):
        raise ConfigError(
            f"actors.warm_start_steps = {a.warm_start_steps} and actors.demo_envs = {a.demo_envs} need "
            f"an env with a {a.warm_start_agent} agent (a {a.warm_start_method}() method, as "
            "textdqn/Dialogue-v0 has a rule agent and textdqn/TextGen-v0 both); "
            f"{config.env.id!r} has none: set both to 0"
        )


def action_masks(info: dict, num_envs: int) -> np.ndarray | None:
    """info["action_mask"] of a vector env as bool [N, A], or None if the env reports none."""
    mask = info.get("action_mask")
    if mask is None:
        return None
    return np.asarray(mask, dtype=bool).reshape(num_envs, -1)


def true_next_obs(next_obs: np.ndarray, info: dict) -> np.ndarray:
    """The observations that follow this step's actions: the final ones for finished episodes."""
    done = info.get("_final_obs")
    if done is None or not done.any():
        return next_obs
    out = next_obs.copy()
    out[done] = np.stack(info["final_obs"][done])
    return out


def true_next_masks(mask: np.ndarray | None, info: dict) -> np.ndarray | None:
    """Like true_next_obs, for the action masks (the final step's mask for finished episodes)."""
    if mask is None:
        return None
    done = info.get("_final_info")
    final = info.get("final_info", {})
    if done is None or not done.any() or "action_mask" not in final:
        return mask
    out = mask.copy()
    out[done] = np.asarray(final["action_mask"], dtype=bool).reshape(len(mask), -1)[done]
    return out


def episode_infos(info: dict) -> list[dict]:
    """The final info dict of each episode that ended this step (for success, turns, ...)."""
    done = info.get("_final_info")
    if done is None or not done.any():
        return []
    final = info["final_info"]
    return [
        {k: v[i] for k, v in final.items() if not k.startswith("_") and final.get(f"_{k}", done)[i]}
        for i in np.flatnonzero(done)
    ]
