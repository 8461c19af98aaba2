"""An env whose steps fail after a few good ones, like a simulator that lost its backend."""

import gymnasium as gym
import numpy as np


class FailingEnv(gym.Env):
    """CartPole-shaped observations; every step after its first four raises RuntimeError
    (resets do not help)."""

    def __init__(self) -> None:
        self._t = 0

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self._t += 1
        if self._t > 4:
            raise RuntimeError("simulator backend unreachable")
        return np.zeros(4, np.float32), 0.0, False, False, {}


if "tests/Failing-v0" not in gym.registry:
    gym.register(id="tests/Failing-v0", entry_point=FailingEnv)
