"""DQN losses and target updates against numbers computed by hand (in the comments)."""

import pytest
import torch
from torch import nn

from textdqn.learner.losses import (
    double_dqn_targets,
    hard_update_,
    masked_argmax,
    soft_update_,
    td_loss,
)


def _t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def test_masked_argmax_skips_invalid_actions_and_falls_back_on_all_masked_rows():
    q = _t([[1.0, 5.0, 3.0], [2.0, 0.0, 4.0], [7.0, 1.0, 2.0]])
    mask = _t([[True, False, True], [True, True, False], [False, False, False]], torch.bool)
    # row 0: valid {0: 1, 2: 3} -> 2; row 1: valid {0: 2, 1: 0} -> 0; row 2: none valid -> argmax 0
    out = masked_argmax(q, mask)
    assert out.tolist() == [2, 0, 0]
    assert out.dtype == torch.int64
    assert masked_argmax(q, None).tolist() == [1, 2, 0]


def test_double_dqn_targets_by_hand():
    reward = _t([1.0, 2.0])
    discount = _t([0.9, 0.0])  # row 1 terminated
    q_next_online = _t([[1.0, 3.0, 2.0], [5.0, 0.0, 1.0]], torch.float32).requires_grad_()
    q_next_target = _t([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]).requires_grad_()
    mask = _t([[True, False, True], [True, True, True]], torch.bool)
    # masked: row 0 online argmax over {0, 2} is 2 -> Q_target 30 -> 1 + 0.9 * 30 = 28
    #         row 1 discount 0 -> 2 + 0 * 40 = 2
    y = double_dqn_targets(reward, discount, q_next_online, q_next_target, mask)
    assert y.tolist() == pytest.approx([28.0, 2.0])
    assert not y.requires_grad
    # unmasked: row 0 online argmax is 1 -> Q_target 20 (not max Q_target = 30) -> 1 + 0.9 * 20 = 19
    y = double_dqn_targets(reward, discount, q_next_online, q_next_target, None)
    assert y.tolist() == pytest.approx([19.0, 2.0])


# q_sa = [2, 0, 3]; δ = target − q_sa = [0.5, 3.0, −2.0]
Q = [[1.0, 2.0], [0.0, 4.0], [3.0, 3.0]]
ACTION = [1, 0, 1]
TARGET = [2.5, 3.0, 1.0]
WEIGHTS = [1.0, 0.5, 0.25]


@pytest.mark.parametrize(
    ("kind", "huber_delta", "weights", "expected"),
    [
        # huber δ=1: [0.5·0.25, 1·(3 − 0.5), 1·(2 − 0.5)] = [0.125, 2.5, 1.5]; mean 4.125 / 3
        ("huber", 1.0, None, 4.125 / 3),
        # weighted: 0.125·1 + 2.5·0.5 + 1.5·0.25 = 1.75; / 3
        ("huber", 1.0, WEIGHTS, 1.75 / 3),
        # huber δ=2: [0.125, 2·(3 − 1), 0.5·4] = [0.125, 4, 2]; mean 6.125 / 3
        ("huber", 2.0, None, 6.125 / 3),
        # mse: 0.5·δ² = [0.125, 4.5, 2]; mean 6.625 / 3
        ("mse", 1.0, None, 6.625 / 3),
        # weighted: 0.125 + 2.25 + 0.5 = 2.875; / 3
        ("mse", 1.0, WEIGHTS, 2.875 / 3),
    ],
)
def test_td_loss_values_by_hand(kind, huber_delta, weights, expected):
    q = _t(Q).requires_grad_()
    w = None if weights is None else _t(weights)
    loss, td = td_loss(q, _t(ACTION, torch.int64), _t(TARGET), w, kind=kind, huber_delta=huber_delta)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(expected)
    assert td.tolist() == pytest.approx([0.5, 3.0, -2.0])  # target − q_sa, not the reverse
    assert not td.requires_grad


def test_td_loss_does_not_backpropagate_into_the_target():
    q = _t(Q).requires_grad_()
    target = _t(TARGET).requires_grad_()
    loss, _ = td_loss(q, _t(ACTION, torch.int64), target, None, kind="mse")
    loss.backward()
    assert target.grad is None
    # dL/dq_sa = −δ / B, only at the chosen actions
    torch.testing.assert_close(q.grad, _t([[0.0, -0.5 / 3], [-3.0 / 3, 0.0], [0.0, 2.0 / 3]]))


def test_td_loss_rejects_unknown_kind():
    with pytest.raises(ValueError, match="huber") as info:
        td_loss(_t(Q), _t(ACTION, torch.int64), _t(TARGET), kind="l1")
    assert "mse" in str(info.value) and "'l1'" in str(info.value)


# A 2-state deterministic chain, γ = 0.9, actions 0 = stay, 1 = move:
#   s0 --stay--> s0, r = 0        s0 --move--> s1, r = 1        s1 --any--> terminal, r = 2
# Tabular Q (rows: states, cols: actions), online = target at the start:
#   Q = [[0.0, 0.5],
#        [1.0, 0.0]]
# One transition of each kind:
#   (s0, move, r=1, s1, discount 0.9): argmax Q(s1) = 0 -> y = 1 + 0.9·1.0 = 1.9;  Q(s0, move) = 0.5, δ = 1.4
#   (s0, stay, r=0, s0, discount 0.9): argmax Q(s0) = 1 -> y = 0 + 0.9·0.5 = 0.45; Q(s0, stay) = 0.0, δ = 0.45
#   (s1, 0,    r=2, s1, discount 0.0): y = 2;                                     Q(s1, 0) = 1.0,   δ = 1.0
STATE, ACT, NEXT = [0, 0, 1], [1, 0, 0], [1, 0, 1]
REWARD, DISCOUNT = [1.0, 0.0, 2.0], [0.9, 0.9, 0.0]


def _chain_step(kind, weights):
    q_table = _t([[0.0, 0.5], [1.0, 0.0]]).requires_grad_()
    target_table = q_table.detach().clone()
    state, next_state = _t(STATE, torch.int64), _t(NEXT, torch.int64)
    y = double_dqn_targets(
        _t(REWARD), _t(DISCOUNT), q_table[next_state], target_table[next_state], next_mask=None
    )
    assert y.tolist() == pytest.approx([1.9, 0.45, 2.0])
    w = None if weights is None else _t(weights)
    loss, td = td_loss(q_table[state], _t(ACT, torch.int64), y, w, kind=kind)
    assert td.tolist() == pytest.approx([1.4, 0.45, 1.0])
    opt = torch.optim.SGD([q_table], lr=0.5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item(), q_table.detach()


def test_one_sgd_step_on_two_state_chain_mse():
    loss, q = _chain_step("mse", None)
    # L = (1/3)·Σ 0.5·δ² = 0.5·(1.96 + 0.2025 + 1.0) / 3 = 0.5270833
    assert loss == pytest.approx(0.5 * 3.1625 / 3)
    # dL/dQ(s, a) = −δ / 3, so Q(s, a) += 0.5·δ / 3 = δ / 6:
    #   Q(s0, move) = 0.5 + 1.4 / 6 = 0.733333;  Q(s0, stay) = 0 + 0.45 / 6 = 0.075
    #   Q(s1, 0) = 1 + 1 / 6 = 1.166667;          Q(s1, 1) untouched
    assert q.tolist() == [pytest.approx([0.075, 0.7333333]), pytest.approx([1.1666667, 0.0])]


def test_one_sgd_step_on_two_state_chain_weighted_huber():
    loss, q = _chain_step("huber", [1.0, 0.5, 1.0])
    # huber δ=1: [1·(1.4 − 0.5), 0.5·0.45², 0.5·1²] = [0.9, 0.10125, 0.5]; weighted [0.9, 0.050625, 0.5]
    assert loss == pytest.approx((0.9 + 0.050625 + 0.5) / 3)
    # the gradient clips δ to [−1, 1] and scales by the weight: Q(s, a) += 0.5·w·clip(δ) / 3
    #   Q(s0, move) = 0.5 + 0.5·1·1 / 3 = 0.666667;  Q(s0, stay) = 0 + 0.5·0.5·0.45 / 3 = 0.0375
    #   Q(s1, 0) = 1 + 0.5·1·1 / 3 = 1.166667
    assert q.tolist() == [pytest.approx([0.0375, 0.6666667]), pytest.approx([1.1666667, 0.0])]


class _Tiny(nn.Module):
    def __init__(self, weight, bias, count):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        with torch.no_grad():
            self.linear.weight.copy_(_t([weight]))
            self.linear.bias.copy_(_t([bias]))
        self.register_buffer("count", torch.tensor(count))


def test_soft_update_blends_parameters_and_copies_buffers():
    online, target = _Tiny([1.0, 2.0], 3.0, 7), _Tiny([11.0, -8.0], 0.0, 1)
    soft_update_(target, online, tau=0.1)
    # θ' = 0.1·θ + 0.9·θ': w = [0.1 + 9.9, 0.2 − 7.2] = [10, −7]; b = 0.3 + 0 = 0.3
    assert target.linear.weight.tolist() == [pytest.approx([10.0, -7.0])]
    assert target.linear.bias.tolist() == pytest.approx([0.3])
    assert target.count.item() == 7
    assert online.linear.weight.tolist() == [[1.0, 2.0]] and online.linear.bias.tolist() == [3.0]
    assert target.linear.weight.grad is None


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5])
def test_soft_update_rejects_tau_outside_unit_interval(tau):
    with pytest.raises(ValueError, match="tau"):
        soft_update_(_Tiny([0.0, 0.0], 0.0, 0), _Tiny([1.0, 1.0], 1.0, 0), tau)


def test_hard_update_copies_and_stays_independent():
    online, target = _Tiny([1.0, 2.0], 3.0, 7), _Tiny([11.0, -8.0], 0.0, 1)
    hard_update_(target, online)
    assert target.linear.weight.tolist() == [[1.0, 2.0]]
    assert target.linear.bias.tolist() == [3.0] and target.count.item() == 7
    with torch.no_grad():
        online.linear.weight.add_(1.0)
    assert target.linear.weight.tolist() == [[1.0, 2.0]]
