"""n-step transitions from a vector of N environments, built with array operations.

Per env e and start step t, the transition covers k = min(n, steps until the episode ends):
    reward   = Σ_{j<k} γ^j r_{t+j}
    discount = 0 if the episode terminated within the window, else γ^k (truncation bootstraps)
    next_obs = the observation after step t+k−1 (the final one if the episode ended there)
With `cut_at_exploration`, k also stops before the first exploratory action after step t
(Watkins's Q(λ)): the return then follows the greedy policy only, and next_obs is the
observation that action was taken in (discount γ^k).
See DESIGN.md, "Contracts", and `textdqn.types.TransitionBatch`.
"""

from __future__ import annotations

import numpy as np

from textdqn.types import TransitionBatch


class NStepAdder:
    """Turns vector-env steps into n-step transitions, N envs at a time.

    Call `add` once per vector-env step. It keeps the last n steps of every env in ring arrays of
    shape [n, N, ...] (allocated on the first call) and returns the transitions that step
    completed: for an ongoing env, the one starting n steps back once its window is full; for an
    env whose episode ended (terminated or truncated), all of its pending ones. Windows still
    pending are never emitted by themselves: `clear()` drops them (e.g. after an env crash).

    After a call that returned transitions, `emitted_env` holds each one's env (int [B]),
    `emitted_q` the `q_taken` given with its first step (float32 [B], NaN where none was) and
    `emitted_cut` whether it was cut short by an exploratory action (bool [B]: its next_obs
    is then the observation the call was given, not the next one).

    cut_at_exploration: end every window of an env before an action `add` is told was
    exploratory (`explored`), so that no transition's return sums rewards of exploratory
    actions after its first: n-step returns under ε-greedy otherwise estimate the exploring
    policy's value, which in envs where a random action is costly (a token that breaks a
    sentence) pulls the greedy actions' values down.

    label_demos: give every transition a `demo` flag, whether its first action was a
    demonstrator's (`add`'s `demo`), for the learner's large-margin loss.
    """

    def __init__(
        self, num_envs: int, n: int, gamma: float, cut_at_exploration: bool = False, label_demos: bool = False
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if n < 1:
            raise ValueError(f"n (steps per transition) must be >= 1, got {n}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        self.num_envs = num_envs
        self.n = n
        self.gamma = float(gamma)
        self.cut_at_exploration = bool(cut_at_exploration)
        self.label_demos = bool(label_demos)
        self._last_mask: np.ndarray | None = None  # [N, A] the mask of the obs the next call brings
        # gamma_powers[k - 1] = γ^k, the discount of a k-step transition that bootstraps.
        self._gamma_powers = self.gamma ** np.arange(1, n + 1, dtype=np.float64)
        self._obs: np.ndarray | None = None  # [n, N, ...] obs dtype
        self._action = np.zeros((n, num_envs), dtype=np.int64)
        self._reward = np.zeros((n, num_envs), dtype=np.float64)
        self._version = np.zeros((n, num_envs), dtype=np.int32)
        self._q_taken = np.full((n, num_envs), np.nan, dtype=np.float32)
        self._demo = np.zeros((n, num_envs), dtype=bool)
        self._pending = np.zeros(num_envs, dtype=np.int64)  # steps stored per env, 0..n-1 between calls
        self._step = 0  # vector steps seen; step s lives in ring slot s % n
        self._with_masks: bool | None = None
        self.emitted = 0  # transitions returned so far
        self.emitted_env = np.zeros(0, dtype=np.int64)
        self.emitted_q = np.zeros(0, dtype=np.float32)
        self.emitted_cut = np.zeros(0, dtype=bool)

    @property
    def pending(self) -> np.ndarray:
        """int64 [N]: steps each env holds that have not started an emitted transition yet."""
        return self._pending.copy()

    def clear(self) -> None:
        """Drop every pending step of every env (their transitions are never emitted)."""
        self._pending[:] = 0
        self._last_mask = None

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        policy_version: int | np.ndarray,
        next_action_mask: np.ndarray | None = None,
        q_taken: np.ndarray | None = None,
        explored: np.ndarray | None = None,
        demo: np.ndarray | None = None,
    ) -> TransitionBatch | None:
        """Record one vector-env step; return the transitions it completed, or None.

        obs: [N, ...] the observations the actions were chosen in. action: int [N].
        reward: float [N]. next_obs: [N, ...] the true next observations (the final observation
        for envs whose episode ended this step, not the reset one). terminated, truncated: bool [N].
        policy_version: int or int [N], the weight version that chose `action`.
        next_action_mask: bool [N, A] or None, the actions valid in next_obs; give it on every call
        or on none (the batch schema must not change).
        q_taken: float [N] or None, Q(obs, action) where the policy computed it (the actor's
        initial priorities need it; see `emitted_q`).
        explored: bool [N] or None, which actions were exploratory (not the greedy policy's);
        with cut_at_exploration, the windows pending before them are emitted first.
        demo: bool [N] or None (none), which actions were a demonstrator's (see label_demos).
        """
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        self._check_step(obs, next_obs, next_action_mask)
        parts = []
        if self.cut_at_exploration and explored is not None:
            cut = np.flatnonzero(np.asarray(explored, dtype=bool) & (self._pending > 0))
            if cut.size:
                parts.append(self._cut(cut, obs))
        if next_action_mask is not None:
            self._last_mask = np.array(next_action_mask, dtype=bool)
        self._demo[self._step % self.n] = False if demo is None else np.asarray(demo, dtype=bool)
        completed = self._record(
            obs, action, reward, next_obs, terminated, truncated, policy_version, next_action_mask, q_taken
        )
        if completed is not None:
            parts.append(completed)
        if not parts:
            return None
        batches, envs, q_taken_first, cut_flags = zip(*parts, strict=True)
        self.emitted_env, self.emitted_q, self.emitted_cut = (
            np.concatenate(x) for x in (envs, q_taken_first, cut_flags)
        )
        self.emitted += len(self.emitted_env)
        return batches[0] if len(batches) == 1 else TransitionBatch.concat(list(batches))

    def _cut(self, env: np.ndarray, obs: np.ndarray):
        """The part (see `_part`) of every window pending for the envs `env`, ending at the last
        step recorded and bootstrapping from `obs`; those envs then hold no pending step."""
        last = (self._step - 1) % self.n
        returns = self._window_returns(last)
        # an env with p pending steps has windows of length k = 1..p ending at `last`
        k_index, column = np.nonzero(np.arange(self.n)[:, None] < self._pending[None, env])
        env = env[column]
        self._pending[env] = 0
        mask = None if self._last_mask is None else self._last_mask[env]
        start = (last - k_index) % self.n
        discount = self._gamma_powers[k_index]
        return self._part(start, env, returns[k_index, env], discount, obs[env], mask, cut=True)

    def _record(
        self, obs, action, reward, next_obs, terminated, truncated, version, next_action_mask, q_taken
    ):
        """Store one step; the part (see `_part`) of the transitions it completed, or None."""
        slot = self._step % self.n
        self._obs[slot] = obs
        self._action[slot] = np.asarray(action)
        self._reward[slot] = np.asarray(reward)
        self._version[slot] = np.broadcast_to(np.asarray(version), (self.num_envs,))
        self._q_taken[slot] = np.nan if q_taken is None else np.asarray(q_taken, dtype=np.float32)
        self._step += 1
        self._pending += 1

        done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        # emit[k-1, e]: emit env e's window of length k ending at this step. A finished episode
        # emits all its windows; an ongoing one only the full window of length n.
        lengths = np.arange(1, self.n + 1)[:, None]
        emit = (self._pending[None, :] >= lengths) & (done[None, :] | (lengths == self.n))
        self._pending = np.where(done, 0, np.minimum(self._pending, self.n - 1))
        k_index, env = np.nonzero(emit)
        if env.size == 0:
            return None

        returns = self._window_returns(slot)
        discount = np.where(np.asarray(terminated, dtype=bool)[env], 0.0, self._gamma_powers[k_index])
        mask = None if next_action_mask is None else np.asarray(next_action_mask, dtype=bool)[env]
        start = (slot - k_index) % self.n
        return self._part(start, env, returns[k_index, env], discount, next_obs[env], mask, cut=False)

    def _part(self, start, env, reward, discount, next_obs, mask, cut: bool):
        """(transitions, their envs, the q_taken of their first steps, whether each was cut):
        the windows starting at ring slots `start` of envs `env`."""
        batch = TransitionBatch(
            obs=self._obs[start, env],
            action=self._action[start, env],
            reward=reward.astype(np.float32),
            discount=np.asarray(discount).astype(np.float32),
            next_obs=next_obs,
            next_action_mask=mask,
            policy_version=self._version[start, env],
            demo=self._demo[start, env] if self.label_demos else None,
        )
        return batch, env, self._q_taken[start, env], np.full(env.size, cut)

    def _window_returns(self, slot: int) -> np.ndarray:
        """float64 [n, N]: row k−1 holds Σ_{j<k} γ^j r over the k steps ending at ring `slot`.

        Uses R_k = r_{slot−k+1} + γ·R_{k−1}; rows beyond an env's pending steps hold junk that
        `emit` never selects.
        """
        returns = np.empty((self.n, self.num_envs), dtype=np.float64)
        acc = np.zeros(self.num_envs, dtype=np.float64)
        for k in range(self.n):
            acc = self._reward[(slot - k) % self.n] + self.gamma * acc
            returns[k] = acc
        return returns

    def _check_step(self, obs: np.ndarray, next_obs: np.ndarray, mask: np.ndarray | None) -> None:
        if obs.ndim == 0 or len(obs) != self.num_envs:
            raise ValueError(f"obs must have leading dim num_envs={self.num_envs}, got shape {obs.shape}")
        if next_obs.shape != obs.shape:
            raise ValueError(f"next_obs has shape {next_obs.shape}, expected {obs.shape} like obs")
        if self._obs is None:
            self._obs = np.zeros((self.n, *obs.shape), dtype=obs.dtype)
            self._with_masks = mask is not None
        elif obs.shape != self._obs.shape[1:] or obs.dtype != self._obs.dtype:
            raise ValueError(
                f"obs changed from {self._obs.dtype}{list(self._obs.shape[1:])} to "
                f"{obs.dtype}{list(obs.shape)}; one adder serves one observation shape and dtype"
            )
        if (mask is not None) != self._with_masks:
            raise ValueError(
                "next_action_mask must be given on every call or on none "
                f"(first call {'had' if self._with_masks else 'had no'} mask)"
            )
        if mask is not None and np.shape(mask)[0] != self.num_envs:
            raise ValueError(f"next_action_mask must have shape [N={self.num_envs}, A], got {np.shape(mask)}")
