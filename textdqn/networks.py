"""Q-networks: an MLP for vector observations with an optional dueling head.

Token observations (dialogue text, text generation) get transformer Q-networks built with
`transformers`; those come with the language environments, and `transformers` is imported
only there.

Weights cross process boundaries as plain numpy arrays (`state_to_numpy` /
`load_numpy_state_`), never as pickled modules.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from textdqn.errors import ConfigError


class MLPQNetwork(nn.Module):
    """Q(s, ·) for float observations.

    obs_dim: features per observation (the product of the observation shape).
    num_actions: A, the size of the Discrete action space.
    hidden: widths of the ReLU torso's layers; () maps observations straight to the head.
    dueling: Q = V + A − mean(A) over actions (Wang et al. 2016); otherwise one linear head.

    forward(obs [B, ...]) -> Q [B, A]: dims after the first are flattened, obs cast to float.
    """

    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        hidden: tuple[int, ...] = (256, 256),
        dueling: bool = True,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or num_actions < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"MLPQNetwork needs obs_dim >= 1, num_actions >= 1 and hidden widths >= 1; "
                f"got obs_dim={obs_dim}, num_actions={num_actions}, hidden={tuple(hidden)}"
            )
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.torso = nn.Sequential(*layers)
        self.dueling = dueling
        # Without dueling, `advantage` is the whole Q head.
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: Tensor) -> Tensor:
        """Q-values [B, A] of observations [B, obs_dim] (or [B, *shape], flattened)."""
        features = self.torso(obs.flatten(1).float())
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        # Subtracting the mean advantage makes V and A identifiable (Wang et al. 2016, eq. 9).
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


def make_q_network(
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    hidden: tuple[int, ...],
    dueling: bool,
) -> nn.Module:
    """The Q-network for an env's spaces (single-env spaces, not batched vector-env ones).

    Supported: a Discrete action space, and a Box observation space of floats (-> MLPQNetwork
    over the flattened observation). Raises ConfigError for anything else; token-id
    observations will be served by the transformer Q-network of the language envs.
    """
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"textdqn's Q-networks need a Discrete action space, got {action_space}; "
            "use an env with Discrete actions (or wrap yours to discretize them)"
        )
    if isinstance(observation_space, gym.spaces.Box):
        if np.issubdtype(observation_space.dtype, np.floating):
            obs_dim = int(np.prod(observation_space.shape))
            return MLPQNetwork(obs_dim, int(action_space.n), tuple(hidden), dueling)
        raise ConfigError(
            f"observation space {observation_space} holds {observation_space.dtype} values; the MLP "
            "Q-network takes float Box observations. Integer observations look like token ids: "
            "token observations need the transformer Q-network (coming with the language envs)"
        )
    raise ConfigError(
        f"no Q-network for observation space {observation_space}: supported are float Box "
        "observations (MLP Q-network); token observations need the transformer Q-network "
        "(coming with the language envs)"
    )


def state_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's parameters and buffers as CPU numpy copies, by state-dict key.

    Dtypes are kept, except bfloat16 (which numpy lacks), sent as float32. The copies share
    no memory with the module, so they stay valid while training goes on.
    """
    out = {}
    for key, value in module.state_dict().items():
        tensor = value.detach()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        out[key] = tensor.cpu().numpy().copy()
    return out


def load_numpy_state_(module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load arrays produced by `state_to_numpy` into `module` in place (onto its device/dtype).

    Read-only arrays (e.g. from Ray's object store) are fine: values are copied. Missing,
    unexpected or mis-shaped keys raise RuntimeError (from `load_state_dict`, naming them).
    """
    module.load_state_dict({key: _to_tensor(value) for key, value in state.items()})


def _to_tensor(array: np.ndarray) -> Tensor:
    array = np.asarray(array)
    # torch warns on (and must not share) read-only memory: copy those arrays, view the rest.
    return torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)


def make_acting_network(envs: gym.vector.VectorEnv, hidden: tuple[int, ...], dueling: bool) -> nn.Module:
    """The Q-network for one env of `envs`, in eval mode: what actors and evaluators act with."""
    return make_q_network(envs.single_observation_space, envs.single_action_space, hidden, dueling).eval()
