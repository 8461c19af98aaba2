"""RolloutWorker: steps a vector env with an ε-greedy local copy of the Q-network.

Plain Python: serial mode calls it directly; textdqn/cluster wraps it in a Ray actor that
pulls weights and sends the batches to the replay shards.

Call order: `set_weights(version, state)` whenever newer weights exist, then
`rollout(num_env_steps) -> (batches, stats)`; each batch is a TransitionBatch of
`send_batch_size` n-step transitions with initial priorities |δ| from the local network.

Initial priorities come from the Q-values acting computes anyway, as in Ape-X: Q(s, a) when
the action is chosen, max Q(s') when the next action is (s' is the env's next observation).
Only transitions without them (the rule agent's warm start; an episode cut by the time limit,
whose s' is never acted in) take a forward pass of their own.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from textdqn.actors.exploration import ape_x_epsilons, epsilon_at, epsilon_greedy, masked_argmax
from textdqn.actors.nstep import NStepAdder
from textdqn.config import Config
from textdqn.envs import (
    action_masks,
    check_warm_start,
    envs_have,
    episode_infos,
    make_vector_env,
    true_next_masks,
    true_next_obs,
)
from textdqn.errors import EnvError
from textdqn.learner.losses import double_dqn_targets
from textdqn.lm_cache import acting_q
from textdqn.masks import MaskFormat, choose_mask_format, unpack_masks
from textdqn.networks import load_numpy_state_, make_acting_network
from textdqn.types import RolloutStats, TransitionBatch

log = logging.getLogger(__name__)


class RolloutWorker:
    """One rollout actor's envs, network copy, exploration and n-step adder.

    Exploration: env slot j of this worker is global slot i = worker_index·num_envs + j of
    N = num_actors·num_envs, and explores with Ape-X's ε_i = ε^(1 + α·i/(N−1)); with a
    decaying schedule the base ε decays with this worker's env steps.
    """

    acted_priorities = True
    """initial priorities from acting's Q-values; False: a forward pass over every sent batch
    (what actors did before; `textdqn bench actor` compares the two)"""

    def __init__(self, config: Config, worker_index: int, seed: int = 0, start_env_steps: int = 0) -> None:
        self.config = config
        self.index = worker_index
        num_envs = config.env.num_envs
        self.envs = make_vector_env(config.env, num_envs)
        self.net = make_acting_network(self.envs, config.network)
        self._q = acting_q(self.net, config.network.kv_cache)
        self.version = -1
        self.env_steps = int(start_env_steps)  # a replacement continues its predecessor's ε and warm start
        self.num_envs = num_envs
        self._slots = slice(worker_index * num_envs, (worker_index + 1) * num_envs)
        self._rng = np.random.default_rng(seed)
        self._adder = NStepAdder(
            num_envs,
            config.actors.n_step,
            config.actors.gamma,
            cut_at_exploration=config.actors.n_step_cut,
            label_demos=config.learner.uses_demos,
        )
        # the first actors.demo_envs slots, the most exploring (Ape-X's ε falls with the slot),
        # act with the warm-start agent all along: demonstrators
        self._demonstrators = np.arange(num_envs) < config.actors.demo_envs
        self.mask_format = replay_mask_format(self.envs)
        self._pending: list[TransitionBatch] = []  # with initial priorities
        self._unscored: list[TransitionBatch] = []  # scored by one forward pass when sent
        self._awaiting: list[_Awaiting] = []  # scored by the next acting pass
        self._failures_in_a_row = 0
        self._failures = 0  # in this worker's life (for logging a few, not every one)
        check_warm_start(config, lambda name: envs_have(self.envs, name))
        self._reset_envs()

    def _reset_envs(self) -> None:
        self._unscored += [a.batch for a in self._awaiting]  # their s' is gone with the reset
        self._awaiting = []
        self._obs, info = self.envs.reset(seed=int(self._rng.integers(2**31)))
        self._mask = action_masks(info, self.num_envs)
        self._adder.clear()
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def set_weights(self, version: int, state: dict[str, np.ndarray]) -> None:
        load_numpy_state_(self.net, state)
        self._q.clear()
        self.version = version

    def epsilons(self) -> np.ndarray:
        """ε of each of this worker's env slots at its current env step."""
        a = self.config.actors
        base = epsilon_at(
            a.epsilon_schedule, a.epsilon, a.epsilon_final, a.epsilon_decay_steps, self.env_steps
        )
        total = a.num_actors * self.num_envs
        return ape_x_epsilons(total, base, a.epsilon_alpha)[self._slots]

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        return self._q(torch.as_tensor(obs)).numpy()

    def rollout(self, num_env_steps: int) -> tuple[list[TransitionBatch], RolloutStats]:
        """Step until `num_env_steps` env steps are done; return full batches and stats."""
        stats = RolloutStats(worker=self.index, weight_version=self.version)
        eps = self.epsilons()
        stats.epsilon_mean = float(eps.mean())
        while stats.env_steps < num_env_steps:
            q = None
            if self.env_steps + stats.env_steps < self.config.actors.warm_start_steps:
                actions = self._warm_start_actions()
                explored = demo = np.ones(self.num_envs, dtype=bool)  # not the greedy policy's actions
            else:
                q = self.q_values(self._obs)
                self._score_awaiting(q)
                actions = epsilon_greedy(
                    q, eps, self._rng, self._mask, self.config.actors.explore_temperature
                )
                demo = self._demonstrators
                if demo.any():
                    actions[demo] = self._demonstrator_actions()
                explored = None  # only a cut at exploration reads it
                if self._adder.cut_at_exploration:
                    explored = (actions != masked_argmax(q, self._mask)) | demo
            try:
                next_obs, reward, terminated, truncated, info = self.envs.step(actions)
            except Exception as e:  # a crashed env: reset it, count it, carry on (up to a bound)
                stats.env_errors += 1
                self._env_failed(e)
                continue
            self._failures_in_a_row = 0
            next_mask = action_masks(info, self.num_envs)
            batch = self._adder.add(
                self._obs,
                actions,
                reward,
                true_next_obs(next_obs, info),
                terminated,
                truncated,
                self.version,
                true_next_masks(next_mask, info),
                q_taken=None if q is None else q[np.arange(self.num_envs), actions],
                explored=explored,
                demo=demo,
            )
            ended = terminated | truncated
            if batch is not None:
                self._hold(batch, ended)
            self._track_episodes(reward, ended, info, stats)
            self._obs, self._mask = next_obs, next_mask
            stats.env_steps += self.num_envs
        self.env_steps += stats.env_steps
        batches = self._take_full_batches()
        stats.transitions = sum(len(b) for b in batches)
        return batches, stats

    def _env_failed(self, error: Exception) -> None:
        """Log and reset after a failed step; EnvError once actors.max_env_errors fail in a row
        (an env that always fails would otherwise stall the run without a word)."""
        self._failures_in_a_row += 1
        self._failures += 1
        limit = self.config.actors.max_env_errors
        if (self._failures_in_a_row == 1 and self._failures in (1, 10, 100)) or self._failures % 1000 == 0:
            log.warning(
                "worker %d: env step failed (%s: %s); resetting its envs",
                self.index,
                type(error).__name__,
                error,
            )
            log.debug("the failed step", exc_info=error)
        if self._failures_in_a_row > limit:
            raise EnvError(
                f"env {self.config.env.id!r} failed {self._failures_in_a_row} steps in a row "
                f"(actors.max_env_errors = {limit}); the last error: {type(error).__name__}: {error}. "
                "Fix the env or its env.kwargs (a domain or prompts file, a model directory)"
            ) from error
        try:
            self._reset_envs()
        except Exception as e:  # the reset fails too: counted like a failed step
            self._env_failed(e)

    def _warm_start_actions(self) -> np.ndarray:
        """Each env's act by its warm-start agent (actors.warm_start_agent)."""
        return np.asarray(self.envs.call(self.config.actors.warm_start_method), dtype=np.int64)

    def _demonstrator_actions(self) -> np.ndarray:
        """The warm-start agent's acts in the demonstrator slots (actors.demo_envs) only."""
        method = self.config.actors.warm_start_method
        slots = np.flatnonzero(self._demonstrators)
        return np.array([self.envs.envs[j].get_wrapper_attr(method)() for j in slots], dtype=np.int64)

    def _track_episodes(self, reward, done, info, stats: RolloutStats) -> None:
        self._ep_return += reward
        self._ep_length += 1
        if done.any():
            stats.episode_returns += self._ep_return[done].tolist()
            stats.episode_lengths += self._ep_length[done].tolist()
            self._ep_return[done] = 0
            self._ep_length[done] = 0
            for final in episode_infos(info):
                for key in ("success", "turns"):
                    if key in final:
                        stats.episode_metrics.setdefault(key, []).append(float(final[key]))

    def _hold(self, batch: TransitionBatch, ended: np.ndarray) -> None:
        """Keep the transitions `add` just returned until their initial priorities are known."""
        q_sa, env = self._adder.emitted_q, self._adder.emitted_env
        # no Q-values from acting (a rule's action), or an s' that is not the envs' next obs
        # (a window cut before an exploratory action: s' is the obs it was taken in)
        unscored = np.isnan(q_sa) | self._adder.emitted_cut | (not self.acted_priorities)
        if unscored.any():  # a forward pass when sent
            self._unscored.append(batch.take(np.flatnonzero(unscored)))
            if unscored.all():
                return
            acted = np.flatnonzero(~unscored)
            batch, q_sa, env = batch.take(acted), q_sa[acted], env[acted]
        q_next = np.zeros((len(batch), self.envs.single_action_space.n), np.float32)
        cut = ended[env] & (batch.discount > 0)  # cut by the time limit: s' is a final observation
        if cut.any():  # final observations, not the envs' next ones: past any KV caches
            with torch.no_grad():
                q_next[cut] = self.net(torch.as_tensor(batch.next_obs[cut])).numpy()
        self._awaiting.append(_Awaiting(batch, q_sa, env, q_next, ~ended[env] & (batch.discount > 0)))

    def _score_awaiting(self, q: np.ndarray) -> None:
        """Priorities of the transitions held since the last step, from this step's Q(s')."""
        for a in self._awaiting:
            a.q_next[a.waiting] = q[a.env[a.waiting]]
            self._pending.append(
                dataclasses.replace(a.batch, priority=self._priorities(a.batch, a.q_sa, a.q_next))
            )
        self._awaiting = []

    def _take_full_batches(self) -> list[TransitionBatch]:
        """Cut the scored transitions into send-size batches (scoring the unscored first)."""
        if self._unscored:
            merged = TransitionBatch.concat(self._unscored)
            self._unscored = []
            self._pending.append(dataclasses.replace(merged, priority=self.initial_priorities(merged)))
        size = self.config.actors.send_batch_size
        total = sum(len(b) for b in self._pending)
        if total < size:
            return []
        merged = TransitionBatch.concat(self._pending)
        full = (total // size) * size
        self._pending = [merged.take(slice(full, total))] if full < total else []
        ready = merged.take(slice(0, full))
        if ready.next_action_mask is not None:  # packed or ids in replay (see textdqn/masks.py)
            ready = dataclasses.replace(
                ready, next_action_mask=self.mask_format.encode(ready.next_action_mask)
            )
        return [ready.take(slice(i, i + size)) for i in range(0, full, size)]

    @torch.no_grad()
    def initial_priorities(self, batch: TransitionBatch) -> np.ndarray:
        """|δ| of each transition under the local network (Ape-X: actors prioritise)."""
        q = self.net(torch.as_tensor(np.concatenate([batch.obs, batch.next_obs])))
        q_obs, q_next = q[: len(batch)].numpy(), q[len(batch) :].numpy()
        return self._priorities(batch, q_obs[np.arange(len(batch)), batch.action], q_next)

    def _priorities(self, batch: TransitionBatch, q_sa: np.ndarray, q_next: np.ndarray) -> np.ndarray:
        """|δ|, plus learner.demo_priority_bonus for demonstrations (as the learner sets them)."""
        priority = _td_errors(batch, q_sa, q_next)
        if batch.demo is not None:
            priority += np.float32(self.config.learner.demo_priority_bonus) * batch.demo
        return priority

    def close(self) -> None:
        self.envs.close()


@dataclasses.dataclass
class _Awaiting:
    """Transitions whose initial priorities wait for the next acting pass's Q(s')."""

    batch: TransitionBatch
    q_sa: np.ndarray  # float32 [B], Q(s, a) when a was chosen
    env: np.ndarray  # int [B], the env each came from
    q_next: np.ndarray  # float32 [B, A], Q(s') where known (zeros where not needed)
    waiting: np.ndarray  # bool [B], the rows whose s' is their env's next observation


def _td_errors(batch: TransitionBatch, q_sa: np.ndarray, q_next: np.ndarray) -> np.ndarray:
    """|r + discount · max over the actions valid in s' of Q(s') − Q(s, a)|, float32 [B]."""
    mask = unpack_masks(batch.next_action_mask, q_next.shape[1])
    q_next = torch.as_tensor(q_next)
    target = double_dqn_targets(
        torch.as_tensor(batch.reward),
        torch.as_tensor(batch.discount),
        q_next,
        q_next,
        None if mask is None else torch.as_tensor(mask),
    )
    return np.abs(target.numpy() - q_sa).astype(np.float32)


def replay_mask_format(envs) -> MaskFormat:
    """How `envs`' action masks are stored in replay: as ids when the env declares a bound
    small enough (`max_allowed_actions()`, e.g. TextGen-v0's top-k + concepts + EOS), else
    packed 8 actions a byte. Every worker of a run builds the same envs, so the same format."""
    declared = max(envs.call("max_allowed_actions")) if envs_have(envs, "max_allowed_actions") else None
    return choose_mask_format(int(envs.single_action_space.n), declared)
