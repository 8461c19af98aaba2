"""Q-networks: an MLP for vector observations with an optional dueling head.

Token observations (dialogue text, text generation) get transformer Q-networks built with
`transformers`; those come with the language environments.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from textdqn.errors import ConfigError


class MLPQNetwork(nn.Module):
    """Q(s, ·) for float observations [B, obs_dim] (extra dims are flattened).

    dueling: Q = V + A − mean(A) (Wang et al. 2016); otherwise one linear head.
    """

    def __init__(
        self, obs_dim: int, num_actions: int, hidden: tuple[int, ...] = (256, 256), dueling: bool = True
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.torso = nn.Sequential(*layers)
        self.dueling = dueling
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: Tensor) -> Tensor:
        features = self.torso(obs.flatten(1).float())
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


def make_q_network(
    observation_space: gym.Space, action_space: gym.Space, hidden: tuple[int, ...], dueling: bool
) -> nn.Module:
    """The Q-network for these spaces; ConfigError for spaces it cannot serve."""
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"textdqn needs a Discrete action space, got {action_space}")
    if isinstance(observation_space, gym.spaces.Box) and np.issubdtype(observation_space.dtype, np.floating):
        obs_dim = int(np.prod(observation_space.shape))
        return MLPQNetwork(obs_dim, int(action_space.n), tuple(hidden), dueling)
    raise ConfigError(
        f"no Q-network for observation space {observation_space}: float Box observations use "
        "the MLP; token observations need the transformer Q-network of the language envs"
    )


def state_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's parameters and buffers as CPU numpy copies (for publishing weights)."""
    return {k: v.detach().float().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_state_(module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load weights produced by `state_to_numpy` into `module` in place."""
    module.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
