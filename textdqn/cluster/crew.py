"""The learner and rollout actors of a Ray run, started, watched and replaced.

The runner re-creates what dies instead of relying on Ray's in-place restarts, so it knows
what state to start from: a learner comes back from the run's last checkpoint (networks,
optimizer, counters, RNG) with a weight version past every one already published; a
rollout actor comes back at the env step count where its predecessor stopped, so its ε
schedule and warm start continue. Each may be replaced `max_restarts` times
(learner.max_restarts, actors.max_restarts); a rollout actor past that is dropped, and the
run ends only when none is left, or when the learner is past its own budget.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import ray
from ray.exceptions import ActorDiedError, RayTaskError

from textdqn.cluster.actors import LearnerActor, RolloutActor
from textdqn.cluster.placement import Placement
from textdqn.config import Config
from textdqn.errors import TextDQNError
from textdqn.networks import make_q_network, state_to_numpy

log = logging.getLogger(__name__)


class ActorLostError(TextDQNError):
    """A learner or the last rollout actor died for good, or could not start."""


def get_or_raise_cause(refs):
    """ray.get(refs); an error that textdqn raised inside an actor surfaces as itself, with
    its own message first, instead of behind Ray's traceback."""
    try:
        return ray.get(refs)
    except RayTaskError as e:
        if isinstance(e.cause, TextDQNError):
            raise e.cause from None
        raise


def start_failure(what: str, error: ActorDiedError) -> ActorLostError:
    """The error of an actor whose constructor raised: its own last line first."""
    lines = re.findall(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", str(error), re.MULTILINE)
    cause = f"{lines[-1][0]}: {lines[-1][1]}" if lines else str(error).splitlines()[0]
    return ActorLostError(f"the {what} could not start: {cause}")


class Crew:
    """The learner actor and the rollout actors of one run (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        spaces: tuple,
        shards: list,
        store,
        learner_state: dict | None,
        restore_learner: Callable[[], dict | None],
        actor_env_steps: list[int] | None,
        learner_gpus: float,
        placement: Placement,
        with_learner: bool = True,
    ) -> None:
        """`with_learner=False` (bench scaling --no-learner): no learner; the initial weights
        of a fresh network are published instead, so the actors act as they would."""
        self.config = config
        self._spaces, self._shards, self._store = spaces, shards, store
        self._restore_learner = restore_learner
        self.placement = placement
        self._learner_cls = ray.remote(LearnerActor).options(
            num_cpus=config.learner.num_cpus, num_gpus=learner_gpus, max_concurrency=2, **placement.learner()
        )
        self._actor_cls = ray.remote(concurrency_groups={"inspect": 1})(RolloutActor)
        self.learner_restarts = 0
        if with_learner:
            self.learner = self._start_learner(learner_state, min_version=-1)
        else:
            self.learner = None
            initial = state_to_numpy(make_q_network(*spaces, config.network))
            ray.get(store.publish.remote(0, [ray.put(initial)]))
        n = config.actors.num_actors
        self.env_steps = list(actor_env_steps or [0] * n)
        self.restarts = [0] * n
        self.actors: dict[int, object] = {i: self._start_actor(i) for i in range(n)}

    def _start_learner(self, state: dict | None, min_version: int):
        learner = self._learner_cls.remote(
            self.config, self._spaces, self._shards, self._store, state, min_version
        )
        try:
            ray.get(learner.counters.remote())  # wait until it runs: start errors surface here
        except ActorDiedError as e:
            raise start_failure("learner", e) from None
        return learner

    def restart_learner(self, error: Exception) -> None:
        """Replace a dead learner with one restored from the last checkpoint."""
        self.learner_restarts += 1
        limit = self.config.learner.max_restarts
        if self.learner_restarts > limit:
            raise ActorLostError(
                f"the learner died {self.learner_restarts} times (learner.max_restarts = {limit}); "
                f"last: {type(error).__name__}. Check the learner's memory and device, then --resume"
            ) from error
        ray.kill(self.learner, no_restart=True)
        state = self._restore_learner()
        published = ray.get(self._store.latest.remote(1 << 62))[0]
        log.warning(
            "the learner died (%s); restarting it from %s (restart %d of %d)",
            type(error).__name__,
            f"the checkpoint at {state['updates']:,} updates" if state else "its initial state",
            self.learner_restarts,
            limit,
        )
        self.learner = self._start_learner(state, min_version=published)

    def _start_actor(self, i: int):
        seed = self.config.run.seed * 7919 + i + 100_003 * self.restarts[i]
        actor_cls = self._actor_cls.options(num_cpus=self.config.actors.num_cpus, **self.placement.actor(i))
        return actor_cls.remote(self.config, i, self._shards, self._store, seed, self.env_steps[i])

    def replace_actor(self, i: int, error: Exception) -> bool:
        """Replace dead rollout actor i (False: it is past its budget and dropped)."""
        ray.kill(self.actors.pop(i), no_restart=True)
        self.restarts[i] += 1
        reason = _first_line(error)
        if getattr(error, "actor_init_failed", False):
            reason = str(start_failure(f"rollout actor {i}", error))
        limit = self.config.actors.max_restarts
        if limit >= 0 and self.restarts[i] > limit:
            log.error(
                "rollout actor %d died %d times (actors.max_restarts = %d): dropped",
                i,
                self.restarts[i],
                limit,
            )
            if not self.actors:
                raise ActorLostError(
                    f"every rollout actor is gone (the last, {i}, died {self.restarts[i]} times; last error: "
                    f"{reason}); check the env and the actors' memory, then --resume"
                ) from error
            return False
        log.warning(
            "rollout actor %d died (%s); starting a new one (%d of %d)", i, reason, self.restarts[i], limit
        )
        self.actors[i] = self._start_actor(i)
        return True

    def handles(self) -> list:
        return [*self.actors.values(), *([self.learner] if self.learner else [])]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
