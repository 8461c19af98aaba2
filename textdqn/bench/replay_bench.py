"""`textdqn bench replay`: replay throughput, ours against RLlib and cpprb, in one run.

Every implementation gets identical pre-generated batches (batch 512 by default) and is
measured the same way: the time to insert a prefill, then as many `sample` calls, and as
many `sample` + `update` pairs, as fit in a fixed time. Figures are transitions per second.

When redis-server is on PATH, the same shard with its durable Redis tier (a private server the
bench starts in a temporary directory) is measured too, against the memory shard, along with
the time a new shard takes to reload a full shard of 8-float transitions from Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from textdqn.bench.peers import available_peers, make_peer
from textdqn.replay_server import ReplayShard
from textdqn.replay_server.importance import importance_weights
from textdqn.types import TransitionBatch

OBS_KINDS = {"8-float": ("<f4", (8,)), "128-token": ("<u2", (128,))}
ALPHA, BETA = 0.6, 0.4


@dataclasses.dataclass(frozen=True)
class ReplayBenchSettings:
    capacity: int = 1_000_000
    """total capacity of every implementation (split across shards for the Ray service)"""
    batch: int = 512
    """transitions per insert and per sample"""
    prefill: int = 200_000
    """transitions inserted (and timed) before sampling is measured"""
    seconds: float = 2.0
    """time spent measuring each of sample and sample+update"""
    ray_shards: tuple[int, ...] = (1, 2, 4)
    """shard counts of the Ray-sharded service"""


QUICK = ReplayBenchSettings(capacity=100_000, prefill=50_000, seconds=0.5, ray_shards=(1, 2))


def make_batches(obs_kind: str, batch: int, count: int = 16, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`count` distinct batches of random transitions, reused round-robin by every implementation."""
    dtype, shape = OBS_KINDS[obs_kind]
    rng = np.random.default_rng(seed)

    def obs() -> np.ndarray:
        if np.dtype(dtype).kind == "f":
            return rng.random((batch, *shape), dtype=np.float32)
        return rng.integers(0, 32000, (batch, *shape)).astype(dtype)

    return [
        {
            "obs": obs(),
            "action": rng.integers(0, 16, batch).astype(np.int64),
            "reward": rng.random(batch, dtype=np.float32),
            "discount": np.full(batch, 0.99**3, dtype=np.float32),
            "next_obs": obs(),
        }
        for _ in range(count)
    ]


CONCEPT_TOKENS = 12
"""The most tokens one shipped prompt's concepts take in a BPE vocabulary (SmolLM2's 49,152
tokens: each concept spelt alone and after a space): the concepts' share of a TextGen mask
(GPT-2's row takes the same, its BPE being alike)."""
TEXT_TRANSITIONS = {  # name -> (observation length, vocabulary = actions, most actions one mask allows)
    "dialogue tokens (128, 25 acts)": (128, 25, 25),
    "textgen small LM (1+40, 500 tokens)": (41, 500, 8 + 4 + 1),  # top-8, 4 one-token concepts, EOS
    "textgen GPT-2 (1+48, 50,257 tokens)": (49, 50_257, 20 + CONCEPT_TOKENS + 1),  # top-20 (configs)
    "textgen SmolLM2 (1+96, 49,152 tokens, top-64)": (97, 49_152, 64 + CONCEPT_TOKENS + 1),
}
MEMORY_TARGET = 1024
"""Bytes a transition may take in replay with a top-k mask, k <= 64 (issue 15)."""


def transition_memory(batch: int = 64) -> list[dict]:
    """Bytes a replay shard holds per transition of the text envs' shapes (uint16 token
    observations and next observations, a next-action mask allowing at most the row's bound
    of actions), measured on a real shard with the mask in each form: packed 8 actions a byte,
    as bool, and as the allowed ids (textdqn/masks.py). `stored_as` is the form actors send."""
    from textdqn.masks import MaskFormat, choose_mask_format, pack_masks

    rng = np.random.default_rng(0)
    rows = []
    for name, (length, actions, allowed) in TEXT_TRANSITIONS.items():
        fields = {
            "obs": rng.integers(0, actions, (batch, length)).astype(np.uint16),
            "action": rng.integers(0, actions, batch).astype(np.int64),
            "reward": rng.random(batch, dtype=np.float32),
            "discount": np.full(batch, 0.99**3, dtype=np.float32),
            "next_obs": rng.integers(0, actions, (batch, length)).astype(np.uint16),
            "policy_version": np.zeros(batch, np.int32),
        }
        mask = np.zeros((batch, actions), dtype=bool)
        mask[np.arange(batch)[:, None], rng.integers(0, actions, (batch, allowed))] = True  # <= allowed a row
        ids = MaskFormat("ids", actions, allowed).encode(mask)
        forms = {"packed": pack_masks(mask), "bool": mask, "ids": ids}
        sizes = {}
        for form, stored in forms.items():
            shard = ReplayShard(batch, alpha=ALPHA)
            shard.insert(TransitionBatch(**fields, next_action_mask=stored))
            sizes[form] = shard.bytes_per_item()
        rows.append(
            {
                "transition": name,
                "bytes_observations": fields["obs"][0].nbytes + fields["next_obs"][0].nbytes,
                "bytes_packed_mask": sizes["packed"],
                "bytes_bool_mask": sizes["bool"],
                "bytes_id_mask": sizes["ids"],
                "mask_ids": allowed,
                "stored_as": choose_mask_format(actions, allowed).kind,
            }
        )
    return rows


def _rate(fn: Callable[[int], None], seconds: float, per_call: int) -> float:
    """Call fn(i) for i = 0, 1, ... until `seconds` pass (at least 3 calls); items per second."""
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        fn(calls)
        calls += 1
    return calls * per_call / (time.perf_counter() - start)


class _OursInProcess:
    """Our ReplayShard in this process, computing IS weights as the peers do."""

    name = "textdqn shard"

    def __init__(self, capacity: int) -> None:
        self.shard = ReplayShard(capacity, alpha=ALPHA)

    def insert(self, fields: dict[str, np.ndarray]) -> None:
        self.shard.insert(TransitionBatch(**fields))

    def sample(self, n: int) -> Any:
        result = self.shard.sample(n)
        importance_weights(result.probabilities, result.shard_size, BETA)
        return result

    def update(self, handle: Any, priorities: np.ndarray) -> None:
        self.shard.update_priorities(handle.keys, priorities)

    def bytes_per_item(self) -> int:
        return self.shard.bytes_per_item()


class _OursOnRedis(_OursInProcess):
    """Our ReplayShard with its durable tier in Redis (inserts written through, priorities behind)."""

    name = "textdqn shard+redis"

    def __init__(self, capacity: int, url: str, run_id: str) -> None:
        from textdqn.replay_server.redis_tier import RedisSpec

        self.shard = ReplayShard(capacity, alpha=ALPHA, durable=RedisSpec(url, run_id, 0))

    def close(self) -> None:
        self.shard.close()


class _OursOnRay:
    """Our sharded service: S shard actors, one writer and one sampler in this process."""

    def __init__(self, capacity: int, num_shards: int) -> None:
        from textdqn.cluster.replay_service import RayShards, make_shards, wait_ready
        from textdqn.config import RateLimiterConfig, ReplayConfig
        from textdqn.replay_server.client import ShardedSampler, ShardedWriter

        config = ReplayConfig(
            capacity=capacity,
            num_shards=num_shards,
            alpha=ALPHA,
            rate_limiter=RateLimiterConfig(min_size_to_sample=1),
        )
        self.shards = make_shards(config)
        wait_ready(self.shards)  # actor start-up is not replay throughput
        self.writer = ShardedWriter(RayShards(self.shards), max_in_flight=config.insert_in_flight)
        self._sampler = lambda: ShardedSampler(RayShards(self.shards), 0, config.sample_in_flight)
        self.sampler = None

    def insert(self, fields: dict[str, np.ndarray]) -> None:
        self.writer.insert(TransitionBatch(**fields))

    def flush(self) -> None:
        self.writer.flush()
        if self.sampler is not None:
            self.sampler.flush()

    def sample(self, n: int) -> Any:
        if self.sampler is None:
            self.sampler = self._sampler()
            self.sampler.batch_size = n
        return self.sampler.sample(BETA)

    def update(self, handle: Any, priorities: np.ndarray) -> None:
        self.sampler.update_priorities(handle, priorities)

    def close(self) -> None:
        from textdqn.cluster.runtime import kill_actors

        if self.sampler is not None:
            self.sampler.close()
        kill_actors(self.shards)


def _measure(impl: Any, batches: list, settings: ReplayBenchSettings, rng: np.random.Generator) -> dict:
    """insert / sample / sample+update rates of one implementation."""
    n_batches = max(3, settings.prefill // settings.batch)
    prios = [rng.random(settings.batch) + 0.01 for _ in range(8)]
    flush = getattr(impl, "flush", lambda: None)
    start = time.perf_counter()
    for i in range(n_batches):
        impl.insert(batches[i % len(batches)])
    flush()
    rates = {"insert": n_batches * settings.batch / (time.perf_counter() - start)}
    rates["sample"] = _rate(lambda i: impl.sample(settings.batch), settings.seconds, settings.batch)

    def sample_update(i: int) -> None:
        impl.update(impl.sample(settings.batch), prios[i % len(prios)])

    rates["sample+update"] = _rate(sample_update, settings.seconds, settings.batch)
    flush()
    return rates


def run_replay_bench(
    settings: ReplayBenchSettings, with_ray: bool = True, log: Callable[[str], None] = print
) -> dict:
    """Measure every implementation; returns {"rows": [...], "ratios": {...}, "bytes_per_item": {...}}."""
    rows, bytes_per_item = [], {}
    rng = np.random.default_rng(0)
    recovery = None
    if with_ray:
        from textdqn.cluster.runtime import init_ray, shutdown_ray

        started = init_ray(num_cpus=8)
    try:
        with _redis_server(log) as redis_url:
            for obs_kind in OBS_KINDS:
                _measure_obs_kind(obs_kind, settings, with_ray, redis_url, rows, bytes_per_item, rng, log)
            if redis_url:
                recovery = redis_recovery(settings.capacity, settings.batch, redis_url, log)
    finally:
        if with_ray and started:
            shutdown_ray()
    return {
        "rows": rows,
        "ratios": _ratios(rows),
        "bytes_per_item": bytes_per_item,
        "redis_recovery": recovery,
        "text_transitions": transition_memory(),
        "settings": dataclasses.asdict(settings),
    }


@contextlib.contextmanager
def _redis_server(log: Callable[[str], None]) -> Iterator[str | None]:
    """The URL of a private redis-server in a temporary directory, or None (and a log line)
    when redis-server is not on PATH."""
    if shutil.which("redis-server") is None:
        log("  redis-server is not on PATH: skipping the Redis rows (apt-get install redis-server)")
        yield None
        return
    from textdqn.replay_server.redis_server import LocalRedisServer

    with tempfile.TemporaryDirectory(prefix="textdqn-bench-redis-") as data, LocalRedisServer(data) as server:
        yield server.url


def redis_recovery(capacity: int, batch: int, url: str, log: Callable[[str], None]) -> dict:
    """Fill a Redis-backed shard of `capacity` 8-float transitions, then time a new shard
    reloading it (connect, read every block, rebuild rows, keys and sum-tree)."""
    log(f"  textdqn shard+redis recovery of {capacity:,} 8-float items ...")
    batches = [TransitionBatch(**b) for b in make_batches("8-float", batch)]
    filler = _OursOnRedis(capacity, url, "bench-recovery")
    for i in range(-(-capacity // batch)):
        filler.shard.insert(batches[i % len(batches)])
    filler.close()
    start = time.perf_counter()
    reloaded = _OursOnRedis(capacity, url, "bench-recovery")
    seconds = time.perf_counter() - start
    items = reloaded.shard.info().restored_items
    reloaded.close()
    _drop_keys(url)
    return {"items": items, "seconds": seconds, "obs": "8-float"}


def _drop_keys(url: str) -> None:
    """Empty the bench's private Redis (its rows would otherwise pile up across measurements)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _implementations(
    obs_kind: str, batches: list, settings: ReplayBenchSettings, with_ray: bool, redis_url: str | None
) -> list:
    """(name, factory) of every implementation to measure, ours first."""
    schema = {k: (v.dtype, v.shape[1:]) for k, v in batches[0].items()}
    impls: list[tuple[str, Callable[[], Any]]] = [
        ("textdqn shard", lambda: _OursInProcess(settings.capacity))
    ]
    if redis_url:
        impls.append(
            (_OursOnRedis.name, lambda: _OursOnRedis(settings.capacity, redis_url, f"bench-{obs_kind}"))
        )
    for peer in available_peers():
        impls.append((peer, lambda peer=peer: make_peer(peer, settings.capacity, ALPHA, BETA, schema)))
    if with_ray:
        for s in settings.ray_shards:
            impls.append((f"textdqn ray x{s}", lambda s=s: _OursOnRay(settings.capacity, s)))
    return impls


def _measure_obs_kind(
    obs_kind: str,
    settings: ReplayBenchSettings,
    with_ray: bool,
    redis_url: str | None,
    rows: list[dict],
    bytes_per_item: dict[str, int],
    rng: np.random.Generator,
    log: Callable[[str], None],
) -> None:
    batches = make_batches(obs_kind, settings.batch)
    for name, factory in _implementations(obs_kind, batches, settings, with_ray, redis_url):
        log(f"  {name:<16} {obs_kind:<10} ...")
        impl = factory()
        for op, per_s in _measure(impl, batches, settings, rng).items():
            rows.append({"impl": name, "obs": obs_kind, "op": op, "per_s": per_s})
        if type(impl) is _OursInProcess:
            bytes_per_item[obs_kind] = impl.bytes_per_item()
        getattr(impl, "close", lambda: None)()
        if isinstance(impl, _OursOnRedis):
            _drop_keys(redis_url)
        del impl
        gc.collect()


def _lookup(rows: list[dict], impl: str, obs: str, op: str) -> float | None:
    for r in rows:
        if (r["impl"], r["obs"], r["op"]) == (impl, obs, op):
            return r["per_s"]
    return None


def _ratios(rows: list[dict]) -> dict[str, float | None]:
    ours = _lookup(rows, "textdqn shard", "8-float", "sample+update")
    out: dict[str, float | None] = {}
    for peer in ("rllib", "cpprb"):
        theirs = _lookup(rows, peer, "8-float", "sample+update")
        out[f"ours_vs_{peer}_sample_update"] = ours / theirs if ours and theirs else None
    for obs in OBS_KINDS:
        for op in ("insert", "sample+update"):
            durable = _lookup(rows, _OursOnRedis.name, obs, op)
            memory = _lookup(rows, "textdqn shard", obs, op)
            if durable and memory:
                out[f"redis_vs_memory_{op.replace('+', '_')}_{obs}"] = durable / memory
    return out


def write_json(result: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=1))
