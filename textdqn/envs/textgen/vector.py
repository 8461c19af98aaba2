"""TextGen-v0's vector env: the reference LM reads the new tokens of all its envs in one batch.

A SyncVectorEnv (same-step autoreset, as every textdqn vector env) whose step runs in three
passes: every env scores its action (`step_begin`), the shared reference LM reads all the
new tokens in one forward pass (`ReferenceLM.advance_batch`), every env finishes its step
(`step_end`: action mask, observation, episode-end info). An actor stepping 16 envs thus
makes one batched reference call a step instead of 16. Resets, rarer, read their prompt
one env at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate


class TextGenVectorEnv(SyncVectorEnv):
    """SyncVectorEnv over TextGen-v0 envs (made by `env_fns`) with batched reference reads."""

    def __init__(self, env_fns: list[Callable[[], gym.Env]]) -> None:
        super().__init__(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
        self._inner = [env.unwrapped for env in self.envs]
        models = {id(env.reference.model) for env in self._inner}
        if len(models) != 1:
            raise ValueError("TextGenVectorEnv needs envs that share one reference LM (one lm setting)")

    def step(self, actions):
        actions = np.asarray(actions).reshape(self.num_envs)
        tokens = [env.step_begin(int(a)) for env, a in zip(self._inner, actions, strict=True)]
        reading = [i for i, t in enumerate(tokens) if t is not None]
        reference = self._inner[0].reference
        reference.advance_batch([self._inner[i]._state for i in reading], [tokens[i] for i in reading])
        infos: dict = {}
        for i, env in enumerate(self._inner):
            obs, self._rewards[i], self._terminations[i], self._truncations[i], info = env.step_end()
            if self._terminations[i] or self._truncations[i]:
                infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                obs, info = self.envs[i].reset()
            self._env_obs[i] = obs
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return (
            np.copy(self._observations),
            np.copy(self._rewards),
            np.copy(self._terminations),
            np.copy(self._truncations),
            infos,
        )
