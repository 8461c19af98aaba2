"""DQN losses and target-network updates as pure functions of tensors.

Shapes: B = batch, A = actions. Nothing here keeps state; Learner orchestrates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOSSES = ("huber", "mse")


def masked_argmax(q: Tensor, mask: Tensor | None) -> Tensor:
    """int64 [B]: argmax over valid actions of q [B, A]; mask bool [B, A] or None.

    A row with no valid action falls back to the unmasked argmax (such next states are
    normally terminal, so their discount is 0 and the choice does not matter).
    """
    if mask is None:
        return q.argmax(dim=1)
    masked = q.masked_fill(~mask, float("-inf"))
    return torch.where(mask.any(dim=1), masked.argmax(dim=1), q.argmax(dim=1))


@torch.no_grad()
def double_dqn_targets(
    reward: Tensor, discount: Tensor, q_next_online: Tensor, q_next_target: Tensor, next_mask: Tensor | None
) -> Tensor:
    """[B]: r + discount · Q_target(s', argmax_a Q_online(s', a)), argmax over valid actions.

    reward, discount: [B] (discount is γ^k, or 0 when the episode terminated);
    q_next_online, q_next_target: [B, A]; next_mask: bool [B, A] or None.
    Pass the same tensor twice for the plain (non-double) max target.
    """
    best = masked_argmax(q_next_online, next_mask)
    value = q_next_target.gather(1, best[:, None]).squeeze(1)
    return reward + discount * value


def td_loss(
    q: Tensor,
    action: Tensor,
    target: Tensor,
    weights: Tensor | None = None,
    kind: str = "huber",
    huber_delta: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """(scalar loss, td_errors [B]) for q [B, A], action int64 [B], target [B].

    δ = target − Q(s, a). Per item: huber(δ) (quadratic 0.5·δ² inside ±delta) or 0.5·δ²
    ("mse", the same quadratic everywhere). The loss is the mean of the per-item losses
    times the importance weights [B] (all 1 when None). td_errors are δ, detached.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown TD loss {kind!r}; accepted: {', '.join(LOSSES)}")
    q_sa = q.gather(1, action[:, None]).squeeze(1)
    delta = target - q_sa
    if kind == "huber":
        per_item = F.huber_loss(q_sa, target, reduction="none", delta=huber_delta)
    else:
        per_item = 0.5 * delta.pow(2)
    if weights is not None:
        per_item = per_item * weights
    return per_item.mean(), delta.detach()


@torch.no_grad()
def soft_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak averaging in place: θ' ← τ·θ + (1 − τ)·θ'."""
    t_params, o_params = list(target.parameters()), list(online.parameters())
    torch._foreach_lerp_(t_params, o_params, tau)
    for t_buf, o_buf in zip(target.buffers(), online.buffers(), strict=True):
        t_buf.copy_(o_buf)


@torch.no_grad()
def hard_update_(target: nn.Module, online: nn.Module) -> None:
    """Copy the online network's parameters and buffers into the target network."""
    target.load_state_dict(online.state_dict())
