"""ε-greedy exploration for Ape-X actors: per-actor ε, ε schedules, vectorized action choice.

All functions are pure (arrays and floats in, arrays and floats out). Steps are counted in
env steps of the actor that asks; ε values are probabilities in [0, 1].
"""

from __future__ import annotations

import numpy as np

SCHEDULES = ("constant", "linear", "exponential")


def ape_x_epsilons(num_actors: int, epsilon: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """Ape-X per-actor exploration rates: ε_i = ε^(1 + α·i/(N−1)) for i in 0..N−1.

    Actor 0 explores most (ε_0 = ε), actor N−1 least (ε^(1+α)). With a single actor the
    formula is undefined (N−1 = 0); we return [ε], i.e. that actor behaves like actor 0.

    Returns float64 [num_actors], probabilities in [0, 1].
    """
    if num_actors < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be a probability in [0, 1], got {epsilon}")
    if num_actors == 1:
        return np.array([epsilon], dtype=np.float64)
    i = np.arange(num_actors, dtype=np.float64)
    return np.power(float(epsilon), 1.0 + alpha * i / (num_actors - 1))


def linear_decay(start: float, end: float, decay_steps: int, step: int) -> float:
    """Linear interpolation from `start` (step 0) to `end` (step `decay_steps`), then `end`.

    `decay_steps <= 0` means no decay period: `end` from step 0 on. Negative steps count as 0.
    """
    if decay_steps <= 0 or step >= decay_steps:
        return float(end)
    fraction = max(step, 0) / decay_steps
    return float(start + (end - start) * fraction)


def exponential_decay(start: float, end: float, half_life_steps: float, step: int) -> float:
    """`end + (start − end) · 0.5^(step / half_life_steps)`: the gap to `end` halves every half-life.

    `half_life_steps <= 0` means no decay period: `end` from step 0 on. Negative steps count as 0.
    """
    if half_life_steps <= 0:
        return float(end)
    return float(end + (start - end) * 0.5 ** (max(step, 0) / half_life_steps))


def epsilon_at(schedule: str, base: float, final: float, decay_steps: int, step: int) -> float:
    """ε at env step `step` under a named schedule.

    "constant": `base` always. "linear": `base` → `final` over `decay_steps` steps.
    "exponential": `final + (base − final)·0.5^(step/decay_steps)` (`decay_steps` is the half-life).
    """
    if schedule == "constant":
        return float(base)
    if schedule == "linear":
        return linear_decay(base, final, decay_steps, step)
    if schedule == "exponential":
        return exponential_decay(base, final, decay_steps, step)
    raise ValueError(f"unknown epsilon schedule {schedule!r}; accepted: {', '.join(SCHEDULES)}")


def masked_argmax(q_values: np.ndarray, action_mask: np.ndarray | None = None) -> np.ndarray:
    """Greedy actions: argmax over valid actions of each row.

    q_values: float [N, A]. action_mask: bool [N, A] (True = valid) or None (all valid).
    Returns int64 [N]. Raises ValueError if some row has no valid action.
    """
    q_values = np.asarray(q_values)
    if action_mask is None:
        return np.argmax(q_values, axis=1).astype(np.int64)
    action_mask = _check_mask(action_mask, q_values.shape)
    masked = np.where(action_mask, q_values, -np.inf)
    return np.argmax(masked, axis=1).astype(np.int64)


def epsilon_greedy(
    q_values: np.ndarray,
    epsilons: np.ndarray | float,
    rng: np.random.Generator,
    action_mask: np.ndarray | None = None,
    temperature: float = 0.0,
) -> np.ndarray:
    """ε-greedy actions for N rows at once.

    q_values: float [N, A]. epsilons: float [N] or a scalar, the probability that row i takes an
    exploratory action instead of the greedy one. action_mask: bool [N, A] or None.
    temperature: 0 = an exploratory action is uniformly random over the valid ones; τ > 0 = it
    is drawn from softmax(Q / τ) over the valid ones (Boltzmann exploration: alternatives the
    network already rates well are tried more often than hopeless ones).
    Returns int64 [N]. Raises ValueError if some row has no valid action.
    """
    q_values = np.asarray(q_values)
    if q_values.ndim != 2:
        raise ValueError(f"q_values must have shape [N, A], got {q_values.shape}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    num_rows, num_actions = q_values.shape
    if action_mask is not None:
        action_mask = _check_mask(action_mask, q_values.shape)
    actions = masked_argmax(q_values, action_mask)
    eps = np.broadcast_to(np.asarray(epsilons, dtype=np.float64), (num_rows,))
    explore = np.flatnonzero(rng.random(num_rows) < eps)
    if explore.size == 0:
        return actions
    if temperature > 0:
        # Gumbel-max: argmax of Q / τ plus iid Gumbel noise is a draw from softmax(Q / τ).
        scores = q_values[explore] / temperature + rng.gumbel(size=(explore.size, num_actions))
    else:
        scores = rng.random((explore.size, num_actions))  # iid uniform: a uniform draw
    if action_mask is not None:
        scores = np.where(action_mask[explore], scores, -np.inf)  # invalid ones below every valid one
    actions[explore] = np.argmax(scores, axis=1)
    return actions


def _check_mask(action_mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    action_mask = np.asarray(action_mask, dtype=bool)
    if action_mask.shape != shape:
        raise ValueError(f"action_mask has shape {action_mask.shape}, expected {shape} like q_values")
    empty = np.flatnonzero(~action_mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"action_mask rows {empty.tolist()} allow no action; every state needs at least one valid action"
        )
    return action_mask
