"""Learner: double DQN updates with importance weights, a target network and Adam, and DQfD's
large-margin loss (and a cross-entropy) on demonstrations when `learner.demo_margin`
(`learner.demo_ce`) asks for it.

Plain Python and torch. Call order: `update(sample) -> UpdateResult` (new priorities for
the replay and metrics, or None for a skipped NaN/inf update), `weights()` when publishing,
`state_dict()` / `load_state_dict()` for checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses

import gymnasium as gym
import numpy as np
import torch

from textdqn.actors.exploration import linear_decay
from textdqn.config import Config
from textdqn.errors import TextDQNError
from textdqn.learner.losses import (
    demo_cross_entropy,
    double_dqn_targets,
    hard_update_,
    large_margin_loss,
    soft_update_,
    td_loss,
)
from textdqn.networks import make_q_network, state_to_numpy
from textdqn.types import WeightedSample, unpack_masks


class TrainingDivergedError(TextDQNError):
    """Too many updates had a NaN/inf loss."""


def resolve_device(name: str) -> torch.device:
    """ "auto" → cuda when available, else cpu; "cuda" without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TextDQNError("learner.device = 'cuda' but torch sees no GPU; use 'auto' or 'cpu'")
    return torch.device(name)


@dataclasses.dataclass(frozen=True)
class UpdateResult:
    """New priorities |δ| (float32 [B]) for the sampled items, and scalar metrics."""

    priorities: np.ndarray
    loss: float
    q_mean: float
    sample_age_mean: float
    """learner version − the version that chose each sampled transition (replay age)"""
    sample_age_max: int
    demo_rows: int = 0
    """sampled rows a demonstrator chose (0 without the learner's demonstration terms)"""
    demo_margin_sum: float = 0.0
    """the large-margin loss summed over those rows (0 once each demonstrated action leads by the margin)"""


class Learner:
    """Owns the online and target networks and the optimizer."""

    def __init__(
        self, config: Config, observation_space: gym.Space, action_space: gym.Space, device: str | None = None
    ) -> None:
        self.config = config.learner
        torch.set_num_threads(self.config.torch_threads)
        self.device = resolve_device(device or self.config.device)
        self.num_actions = int(action_space.n)
        self.online = make_q_network(observation_space, action_space, config.network).to(self.device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        # fused: one kernel for all parameters instead of a loop over them; for the small
        # networks of CartPole or the dialogue that loop was a quarter of an update's time.
        trained = [p for p in self.online.parameters() if p.requires_grad]  # an LM may be partly frozen
        self.optimizer = torch.optim.Adam(trained, lr=self.config.lr, eps=self.config.adam_eps, fused=True)
        self.updates = 0
        self.version = 0  # published weight versions so far; 0 = the initial weights
        self.bad_updates = 0

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        # Arrays that come out of Ray's object store are read-only; torch wants writable memory.
        array = np.ascontiguousarray(array) if array.flags.writeable else np.array(array)
        t = torch.from_numpy(array)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def update(self, sample: WeightedSample) -> UpdateResult | None:
        """One gradient step on `sample`; None if its loss was NaN/inf (skipped, counted)."""
        b = sample.batch
        obs, next_obs = self._tensor(b.obs), self._tensor(b.next_obs)
        action, reward = self._tensor(b.action), self._tensor(b.reward)
        discount, weights = self._tensor(b.discount), self._tensor(sample.weights)
        mask = unpack_masks(b.next_action_mask, self.num_actions)
        mask = None if mask is None else self._tensor(mask)
        # bf16 autocast for the forward passes (on CPU only if asked); targets and loss in float32.
        bf16 = self.config.bf16 and (self.device.type == "cuda" or self.config.cpu_bf16)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            q = self.online(obs)
            # s' without gradient: a joint pass over s and s' would keep s' activations and
            # run the backward over both halves (a third more compute for an LM Q-network).
            with torch.no_grad():
                q_next_target = self.target(next_obs)
                q_next_online = self.online(next_obs) if self.config.double_q else q_next_target
        target = double_dqn_targets(reward, discount, q_next_online.float(), q_next_target.float(), mask)
        loss, td = td_loss(q.float(), action, target, weights, self.config.loss)
        demo = None if b.demo is None else self._tensor(b.demo)
        margin = None  # per row; with demo_margin 0 (a priority bonus only) a metric, not a loss
        if demo is not None:
            margin = large_margin_loss(q.float(), action, demo, self.config.demo_margin)
            if self.config.demo_margin > 0:
                loss = loss + self.config.demo_loss_weight * margin.mean()
            if self.config.demo_ce > 0:
                cloned = demo_cross_entropy(q.float(), action, demo, self.config.demo_ce_temperature)
                loss = loss + self.config.demo_ce * cloned.mean()
        if not torch.isfinite(loss):
            self.bad_updates += 1
            if self.bad_updates > self.config.max_bad_updates:
                raise TrainingDivergedError(
                    f"{self.bad_updates} updates had a NaN/inf loss (learner.max_bad_updates = "
                    f"{self.config.max_bad_updates}); lower learner.lr or check the rewards' scale"
                )
            return None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.updates += 1
        self._anneal_lr()
        self._update_target()
        age = self.version - b.policy_version if b.policy_version is not None else np.zeros(1)
        priorities = td.abs().float()
        if demo is not None:  # DQfD's ε_d: demonstrations keep being sampled
            priorities = priorities + self.config.demo_priority_bonus * demo.float()
        return UpdateResult(
            priorities=priorities.cpu().numpy(),
            loss=float(loss.detach()),
            q_mean=float(q.detach().float().mean()),
            sample_age_mean=float(age.mean()),
            sample_age_max=int(age.max()),
            demo_rows=0 if demo is None else int(demo.sum()),
            demo_margin_sum=0.0 if margin is None else float(margin.detach().sum()),
        )

    def _anneal_lr(self) -> None:
        c = self.config
        if c.lr_anneal_updates > 0:
            lr = linear_decay(c.lr, c.lr_final, c.lr_anneal_updates, self.updates)
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def _update_target(self) -> None:
        if self.config.target_update == "soft":
            soft_update_(self.target, self.online, self.config.tau)
        elif self.updates % self.config.target_update_every == 0:
            hard_update_(self.target, self.online)

    def should_publish(self) -> bool:
        return self.updates % self.config.publish_every == 0

    def publish(self) -> tuple[int, dict[str, np.ndarray]]:
        """Advance the weight version and return (version, CPU numpy weights)."""
        self.version += 1
        return self.version, self.weights()

    def weights(self) -> dict[str, np.ndarray]:
        """What actors need of the online network: all but the frozen parameters, which
        theirs hold from its construction (see `state_to_numpy`)."""
        return state_to_numpy(self.online, frozen=False)

    def state_dict(self) -> dict:
        """Everything a checkpoint needs to resume this learner."""
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "version": self.version,
            "bad_updates": self.bad_updates,
            "rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.version = int(state["version"])
        self.bad_updates = int(state["bad_updates"])
        if "rng" in state:  # checkpoints written before the RNG was kept have none
            torch.set_rng_state(state["rng"])
