"""The prioritized replay: sum-tree, shard, storage backends and rate limiter (no Ray here)."""

from textdqn.replay_server.rate_limiter import RateLimiter
from textdqn.replay_server.shard import ReplayShard
from textdqn.replay_server.storage import MemoryStorage, Storage
from textdqn.replay_server.sum_tree import SumTree

__all__ = ["MemoryStorage", "RateLimiter", "ReplayShard", "Storage", "SumTree"]
