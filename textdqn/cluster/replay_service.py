"""The sharded replay service on Ray: ReplayShard actors behind the ShardSet interface.

The client code (ShardedWriter, ShardedSampler in textdqn/replay_server/client.py) is the
same as in serial mode; only the shard set differs:

  handles = make_shards(config.replay, seed)          # S restartable ReplayShard actors
  shards = RayShards(handles)                         # ShardSet: calls return ObjectRefs
  writer = ShardedWriter(shards, writer_index=i)      # in each rollout actor
  sampler = ShardedSampler(shards, batch_size, ...)   # in the learner actor
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import RayActorError

from textdqn.config import ReplayConfig
from textdqn.errors import ShardUnavailable
from textdqn.replay_server.client import shard_arguments
from textdqn.replay_server.shard import ReplayShard
from textdqn.types import ShardInfo

# Threads per shard actor: requests blocked by the rate limiter (samples waiting for
# inserts, or the reverse) must never take every thread, or the other side could not run.
_SHARD_CONCURRENCY = 32


def make_shards(
    config: ReplayConfig,
    seed: int = 0,
    name_prefix: str | None = None,
    max_restarts: int = 0,
    placement: dict | None = None,
    **extra,
) -> list:
    """Start `config.num_shards` ReplayShard actors with fractional CPUs; returns their handles.

    `max_restarts`: times Ray restarts a shard whose process died (it reruns the
    constructor, which reloads a durable shard's items). `placement`: Ray options from
    Placement.shard() (SPREAD when not given). `extra` reaches shard_arguments.
    """
    shard_actor = ray.remote(ReplayShard)
    shards = []
    for i in range(config.num_shards):
        options = {
            "num_cpus": config.shard_num_cpus,
            "max_concurrency": _SHARD_CONCURRENCY,
            "scheduling_strategy": "SPREAD",
            "max_restarts": max_restarts,
            **(placement or {}),
        }
        if name_prefix:
            options["name"] = f"{name_prefix}-shard-{i}"
        shards.append(shard_actor.options(**options).remote(**shard_arguments(config, i, seed, **extra)))
    return shards


def wait_ready(shards: list) -> list[ShardInfo]:
    """Block until every shard actor has started; returns their infos (a shard whose
    constructor failed, e.g. on an unreachable Redis, raises its error here)."""
    return ray.get([s.info.remote() for s in shards])


class RayShards:
    """ShardSet over ReplayShard actor handles: futures are ObjectRefs.

    A call to a shard whose process died, or is being restarted, raises ShardUnavailable;
    errors the shard itself raised (RateLimitTimeout, SchemaError, ...) reach the caller
    as their own types (Ray's RayTaskError derives from the cause's class).
    """

    def __init__(self, handles: list) -> None:
        self.handles = list(handles)

    def __len__(self) -> int:
        return len(self.handles)

    def call(self, index: int, method: str, *args: Any) -> ray.ObjectRef:
        return getattr(self.handles[index], method).remote(*args)

    def wait(self, futures: Sequence[ray.ObjectRef], timeout: float | None = None) -> list:
        ready, _ = ray.wait(list(futures), num_returns=1, timeout=timeout)
        return ready

    def result(self, future: ray.ObjectRef) -> Any:
        try:
            return ray.get(future)
        except RayActorError as e:  # died or restarting: ActorDiedError, ActorUnavailableError
            raise ShardUnavailable(f"replay shard unavailable ({type(e).__name__})") from e
