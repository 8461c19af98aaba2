"""DQN losses and target-network updates as pure functions of tensors.

Shapes: B = batch, A = actions. Nothing here keeps state; the Learner orchestrates:

  target = double_dqn_targets(reward, discount, q_online(s'), q_target(s'), next_mask)
  loss, td = td_loss(q_online(s), action, target, weights)     # backprop loss; |td| -> priorities
  loss += λ · large_margin_loss(q_online(s), action, demo, margin).mean()   # DQfD, demonstrations
  loss += c · demo_cross_entropy(q_online(s), action, demo, temperature).mean()   # and cloning them
  soft_update_(target_net, online_net, tau)  or, every T updates, hard_update_(target_net, online_net)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOSSES = ("huber", "mse")


def masked_argmax(q: Tensor, mask: Tensor | None) -> Tensor:
    """Greedy action of each row over its valid actions.

    q: float [B, A]. mask: bool [B, A] (True = valid) or None (all valid).
    Returns int64 [B].

    A row with no valid action falls back to the unmasked argmax of that row. Such next
    states are normally terminal (discount 0), so the choice does not change the target.
    """
    if mask is None:
        return q.argmax(dim=1)
    mask = mask.to(torch.bool)
    masked = q.masked_fill(~mask, float("-inf"))
    return torch.where(mask.any(dim=1), masked.argmax(dim=1), q.argmax(dim=1))


def demo_cross_entropy(q: Tensor, action: Tensor, demo: Tensor, temperature: float) -> Tensor:
    """Behaviour cloning on demonstrations, per item, float [B]: −log softmax(q / temperature) at
    the demonstrator's `action` for a demonstrated row, 0 for the others.
    q: float [B, A] (with gradient). action: int64 [B]. demo: bool [B].
    """
    return F.cross_entropy(q / temperature, action.long(), reduction="none") * demo.to(q.dtype)


@torch.no_grad()
def double_dqn_targets(
    reward: Tensor,
    discount: Tensor,
    q_next_online: Tensor,
    q_next_target: Tensor,
    next_mask: Tensor | None,
) -> Tensor:
    """Double-DQN bootstrap targets, [B], without gradient.

    y = r + discount · Q_target(s', argmax_a Q_online(s', a)), the argmax over the actions
    valid in s' (see `masked_argmax`).

    reward: float [B], the n-step discounted reward sum. discount: float [B], γ^k, or 0 when
    the episode terminated. q_next_online, q_next_target: float [B, A], the online and target
    networks' values of s'. next_mask: bool [B, A] or None.
    Passing the same tensor twice gives the plain DQN target r + discount · max_a Q(s', a).
    """
    best = masked_argmax(q_next_online, next_mask)
    value = q_next_target.gather(1, best[:, None]).squeeze(1)
    return (reward + discount * value).detach()


def td_loss(
    q: Tensor,
    action: Tensor,
    target: Tensor,
    weights: Tensor | None = None,
    kind: str = "huber",
    huber_delta: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Importance-weighted TD loss and the TD errors.

    q: float [B, A], the online network's values of s (with gradient). action: int64 [B].
    target: float [B], treated as a constant (detached: a semi-gradient, as in DQN).
    weights: float [B] importance weights, or None for all ones.
    kind: "huber" — 0.5·δ² for |δ| ≤ huber_delta, huber_delta·(|δ| − 0.5·huber_delta) beyond;
        "mse" — 0.5·δ² everywhere (the same quadratic as Huber's inner part, so the two
        agree on small errors).

    Returns (loss, td_errors): loss is the scalar mean over B of weights · per-item loss;
    td_errors [B] is δ = target − Q(s, a), detached (its magnitude is the new priority).
    Raises ValueError for an unknown kind.
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown TD loss kind {kind!r}; accepted: {', '.join(LOSSES)}")
    q_sa = q.gather(1, action.long()[:, None]).squeeze(1)
    target = target.detach()
    delta = target - q_sa
    if kind == "huber":
        per_item = F.huber_loss(q_sa, target, reduction="none", delta=huber_delta)
    else:
        per_item = 0.5 * delta.square()
    if weights is not None:
        per_item = per_item * weights
    return per_item.mean(), delta.detach()


def large_margin_loss(q: Tensor, action: Tensor, demo: Tensor, margin: float) -> Tensor:
    """DQfD's supervised loss on demonstrations (Hester et al. 2018), per item, float [B].

    For a demonstrated row: max_a [Q(s, a) + margin·(a ≠ a_E)] − Q(s, a_E) >= 0, where a_E is
    the demonstrator's `action`; it is 0 once a_E leads every other action by `margin`, so the
    greedy action of that state is the demonstrator's. Rows that are not demonstrations give 0.
    q: float [B, A] (with gradient). action: int64 [B]. demo: bool [B].
    """
    action = action.long()[:, None]
    q_sa = q.gather(1, action).squeeze(1)
    others = torch.full_like(q, margin).scatter_(1, action, 0.0)
    return ((q + others).max(dim=1).values - q_sa) * demo.to(q.dtype)


@torch.no_grad()
def soft_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak averaging in place: θ' ← τ·θ + (1 − τ)·θ' for every parameter.

    target, online: modules of the same architecture. tau in (0, 1]; 1 is a hard copy.
    Buffers (e.g. normalisation statistics, integer counters) are copied, not averaged.
    """
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"soft update needs 0 < tau <= 1, got {tau}")
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError(
            f"target has {len(t_params)} parameter tensors, online has {len(o_params)}; "
            "soft_update_ needs two networks of the same architecture"
        )
    if t_params:
        # lerp(θ', θ, τ) = θ' + τ·(θ − θ') = τ·θ + (1 − τ)·θ'
        torch._foreach_lerp_(t_params, o_params, tau)
    for t_buf, o_buf in zip(target.buffers(), online.buffers(), strict=True):
        t_buf.copy_(o_buf)


@torch.no_grad()
def hard_update_(target: nn.Module, online: nn.Module) -> None:
    """Copy the online network's parameters and buffers into the target network, in place."""
    target.load_state_dict(online.state_dict())
