"""The replay section of the configuration (see textdqn/config.py, which re-exports it): the
sharded prioritized replay service, its rate limiter and its storage."""

import dataclasses
from typing import ClassVar, Literal

from textdqn.typed_config import Rule, above, at_least, in_range, join


@dataclasses.dataclass(frozen=True)
class RateLimiterConfig:
    """Samples-per-insert rate limiter of each replay shard (Reverb's vocabulary)."""

    min_size_to_sample: int = 1000
    """items a shard must hold before it serves samples"""
    samples_per_insert: float = 0.0
    """target sampled transitions per inserted transition; 0 turns the limiter's ratio off"""
    error_buffer: float = 100_000.0
    """how far, in sampled transitions, the ratio may drift before one side blocks"""
    timeout_s: float = 60.0
    """how long a blocked insert or sample waits before it fails, in seconds"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "min_size_to_sample": at_least(1),
        "samples_per_insert": at_least(0, "a float"),
        "error_buffer": at_least(0, "a float"),
        "timeout_s": above(0, "a float (seconds)"),
    }


StorageKind = Literal["memory", "redis"]


def _is_redis_url(url: str) -> bool:
    return url == "local" or url.startswith(("redis://", "rediss://", "unix://"))


def redacted(url: str) -> str:
    """`url` with its password as ***."""
    from textdqn.replay_server.redis_connection import redact_url

    return redact_url(url)


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Sharded prioritized replay service."""

    capacity: int = 1_000_000
    """total items across all shards"""
    num_shards: int = 2
    """number of ReplayShard actors"""
    alpha: float = 0.6
    """priority exponent: items are sampled in proportion to p^alpha"""
    beta: float = 0.4
    """importance-weight exponent at the start of training"""
    beta_final: float = 1.0
    """importance-weight exponent reached after beta_anneal_updates"""
    beta_anneal_updates: int = 100_000
    """learner updates over which beta moves linearly to beta_final"""
    priority_eps: float = 1e-6
    """added to |delta| so that no item has priority 0"""
    storage: StorageKind = "memory"
    """where shards keep their items: "memory" (lost with the shard) or "redis" (a durable tier
    the shard reloads from after a restart)"""
    redis_url: str = ""
    """with storage redis: redis://host:port/db, rediss:// (TLS), unix:///path.sock, or "local"
    (a private redis-server for the run, its data in the run directory)"""
    redis_password_env: str = ""
    """name of the environment variable holding the Redis password (empty: none, or the
    password is in redis_url); the password itself is never written to the run directory"""
    redis_flush_s: float = 1.0
    """priority updates reach Redis at most this many seconds late (written behind)"""
    insert_in_flight: int = 4
    """max unacknowledged insert requests per writer"""
    sample_in_flight: int = 4
    """sample requests the learner keeps in flight"""
    sample_batches_per_request: int = 2
    """learner batches fetched by one sample request (fewer, larger messages)"""
    priority_update_coalesce: int = 4
    """sampled batches whose priority updates go to a shard in one message"""
    shard_num_cpus: float = 0.25
    """logical Ray CPUs reserved per shard actor"""
    shard_max_restarts: int = 3
    """times Ray restarts a shard whose process died (a redis shard reloads its items; a
    memory shard comes back empty); -1: without limit"""
    rate_limiter: RateLimiterConfig = dataclasses.field(default_factory=RateLimiterConfig)
    """samples-per-insert rate limiter of each shard"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "capacity": at_least(1),
        "num_shards": at_least(1),
        "alpha": in_range(0, 1),
        "beta": in_range(0, 1),
        "beta_final": in_range(0, 1),
        "beta_anneal_updates": at_least(0),
        "priority_eps": above(0),
        "insert_in_flight": at_least(1),
        "sample_in_flight": at_least(1),
        "priority_update_coalesce": at_least(1),
        "sample_batches_per_request": at_least(1),
        "shard_num_cpus": above(0),
        "shard_max_restarts": at_least(-1),
        "redis_flush_s": above(0, "a float (seconds)"),
    }

    def _check(self, path: str) -> list[str]:
        found = []
        url = join(path, "redis_url")
        if self.storage == "redis" and not self.redis_url.strip():
            found.append(
                f"{join(path, 'storage')} = 'redis' needs {url}: give the server "
                f"(--set {url}=redis://host:6379/0, rediss:// for TLS, unix:///path.sock) or "
                f"--set {url}=local for a private redis-server"
            )
        elif self.storage == "redis" and not _is_redis_url(self.redis_url):
            found.append(
                f"{url} = {redacted(self.redis_url)!r} is not a Redis URL: expected redis://, "
                "rediss://, unix:// or the word local"
            )
        capacity, shards = join(path, "capacity"), join(path, "num_shards")
        per_shard = -(-self.capacity // max(1, self.num_shards))
        min_size = self.rate_limiter.min_size_to_sample
        if self.capacity >= self.num_shards >= 1 and min_size > per_shard:
            found.append(
                f"{join(path, 'rate_limiter.min_size_to_sample')} = {min_size} is more than a shard can "
                f"hold ({capacity} / {shards} = {per_shard}), so the learner would never sample: lower it "
                f"or raise {capacity}"
            )
        if 1 <= self.capacity < self.num_shards:
            found.append(
                f"{capacity} = {self.capacity} is smaller than {shards} = "
                f"{self.num_shards}: every shard needs at least one slot; "
                f"raise {capacity} or lower {shards}"
            )
        return found
