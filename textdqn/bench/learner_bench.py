"""`textdqn bench learner`: learner throughput fed in process vs fed through Ray, in one run.

Both sides run the same Learner and LearnerLoop on the same network over replays filled with
the same random transitions. The network is an MLP over float observations (batch 512 by
default), or with `network="transformer"` the token Q-network of configs/dialogue-text.yaml
(its network, learner batch and observation length; observations padded after a random
real length):
  in-process: in-process shards sampled synchronously in the learner's thread;
  through Ray: a LearnerActor fed by the Ray-sharded replay (prefetch thread, K requests
  in flight), i.e. the production data path.
The ratio ray/in-process is the cost of our data path (1.0 = free).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from textdqn.actors.actor import LatestWeights
from textdqn.bench.encoder_bench import token_network
from textdqn.config import Config, LearnerConfig, NetworkConfig, RateLimiterConfig, ReplayConfig
from textdqn.errors import ConfigError
from textdqn.learner.learner import Learner
from textdqn.learner.loop import LearnerLoop
from textdqn.replay_server.client import ShardedWriter, make_local_shards, make_sampler
from textdqn.types import TransitionBatch


@dataclasses.dataclass(frozen=True)
class LearnerBenchSettings:
    batch: int = 512
    """transitions per update"""
    obs_dim: int = 8
    """float observation size"""
    num_actions: int = 4
    """discrete actions"""
    hidden: tuple[int, ...] = (256, 256)
    """MLP widths of the Q-network"""
    fill: int = 50_000
    """transitions in the replay before measuring"""
    seconds: float = 10.0
    """measuring time of each side"""
    warmup_s: float = 2.0
    """untimed updates first (allocator, caches)"""
    num_shards: int = 2
    """shards of the Ray-sharded replay"""
    network: str = "mlp"
    """mlp (float observations) or transformer (token ids, TransformerQNetwork)"""
    tokens: int = 96
    """transformer: observation length (dialogue-text's max_tokens)"""
    vocab: int = 400
    """transformer: token ids lie in [0, vocab); 0 pads"""
    encoder: NetworkConfig | None = None
    """transformer: the token Q-network (learner_settings reads configs/dialogue-text.yaml's)"""

    def __post_init__(self) -> None:
        if self.network not in ("mlp", "transformer"):
            raise ConfigError(f"bench learner --network takes mlp or transformer, got {self.network!r}")
        if self.network == "transformer" and self.encoder is None:
            raise ConfigError(
                "bench learner --network transformer needs the token Q-network: use learner_settings"
            )


def _config(s: LearnerBenchSettings, device: str) -> Config:
    network = s.encoder if s.network == "transformer" else NetworkConfig(hidden=s.hidden)
    return Config(
        network=network,
        learner=LearnerConfig(batch_size=s.batch, device=device, torch_threads=1),
        replay=ReplayConfig(
            capacity=max(s.fill * 2, 1000),
            num_shards=s.num_shards,
            rate_limiter=RateLimiterConfig(min_size_to_sample=1, samples_per_insert=0),
        ),
    )


def _spaces(s: LearnerBenchSettings) -> tuple[gym.Space, gym.Space]:
    if s.network == "transformer":
        return gym.spaces.Box(0, s.vocab - 1, (s.tokens,), np.int32), gym.spaces.Discrete(s.num_actions)
    return gym.spaces.Box(-1, 1, (s.obs_dim,), np.float32), gym.spaces.Discrete(s.num_actions)


def _observations(s: LearnerBenchSettings, rng: np.random.Generator, size: int) -> np.ndarray:
    if s.network == "mlp":
        return rng.standard_normal((size, s.obs_dim), dtype=np.float32)
    ids = rng.integers(1, s.vocab, (size, s.tokens), dtype=np.int32)
    lengths = rng.integers(s.tokens // 4, s.tokens + 1, size)  # dialogues of every length so far
    ids[np.arange(s.tokens) >= lengths[:, None]] = 0
    return ids


def _batches(s: LearnerBenchSettings, size: int = 1000) -> list[TransitionBatch]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(max(1, s.fill // size)):
        out.append(
            TransitionBatch(
                obs=_observations(s, rng, size),
                action=rng.integers(0, s.num_actions, size),
                reward=rng.standard_normal(size, dtype=np.float32),
                discount=np.full(size, 0.97, np.float32),
                next_obs=_observations(s, rng, size),
                priority=rng.random(size, dtype=np.float32) + 0.1,
                policy_version=np.zeros(size, np.int32),
            )
        )
    return out


def measure_in_process(s: LearnerBenchSettings, device: str) -> dict[str, float]:
    config = _config(s, device)
    shards = make_local_shards(config.replay)
    writer = ShardedWriter(shards)
    for batch in _batches(s):
        writer.insert(batch)
    writer.flush()
    learner = Learner(config, *_spaces(s))
    loop = LearnerLoop(learner, config.replay, make_sampler(config.replay, shards, s.batch), LatestWeights())
    loop.run(seconds=s.warmup_s)
    stats = loop.run(seconds=s.seconds)
    return {"updates_per_s": stats.updates / stats.wall_s, "utilization": stats.compute_s / stats.wall_s}


def measure_through_ray(s: LearnerBenchSettings, device: str) -> dict[str, float]:
    import ray

    from textdqn.cluster.actors import LearnerActor, ParameterStore
    from textdqn.cluster.replay_service import RayShards, make_shards, wait_ready
    from textdqn.cluster.runtime import kill_actors

    config = _config(s, device)
    shards = make_shards(config.replay)
    wait_ready(shards)
    writer = ShardedWriter(RayShards(shards))
    for batch in _batches(s):
        writer.insert(batch)
    writer.flush()
    store = ray.remote(ParameterStore).options(num_cpus=0).remote()
    gpus = 1 if device == "cuda" else 0
    learner = ray.remote(LearnerActor).options(num_cpus=1, num_gpus=gpus, max_concurrency=2)
    learner = learner.remote(config, _spaces(s), shards, store, None)
    ray.get(learner.train.remote(s.warmup_s))
    stats = ray.get(learner.train.remote(s.seconds))
    kill_actors([learner, store, *shards])
    return {"updates_per_s": stats.updates / stats.wall_s, "utilization": stats.compute_s / stats.wall_s}


def run_learner_bench(
    settings: LearnerBenchSettings, device: str = "cpu", log: Callable[[str], None] = print
) -> dict:
    """Both measurements and their ratio, as a JSON-ready dict."""
    from textdqn.cluster.runtime import init_ray, shutdown_ray

    log("  in-process replay ...")
    local = measure_in_process(settings, device)
    started = init_ray(num_cpus=8)
    try:
        time.sleep(0.5)
        log("  Ray-sharded replay ...")
        remote = measure_through_ray(settings, device)
    finally:
        if started:
            shutdown_ray()
    rows = []
    for feed, m in (("in-process", local), ("ray-sharded", remote)):
        rows.append(
            {
                "feed": feed,
                "network": settings.network,
                "device": device,
                "updates_per_s": m["updates_per_s"],
                "transitions_per_s": m["updates_per_s"] * settings.batch,
                "utilization": m["utilization"],
            }
        )
    return {
        "rows": rows,
        "ratio_ray_vs_in_process": remote["updates_per_s"] / local["updates_per_s"],
        "settings": dataclasses.asdict(settings),
    }


def learner_settings(network: str = "mlp", seconds: float = 10.0) -> LearnerBenchSettings:
    """The settings `bench learner --network` measures: the MLP's, or the transformer's (the
    token Q-network, learner batch and observation length of configs/dialogue-text.yaml)."""
    if network != "transformer":
        return LearnerBenchSettings(network=network, seconds=seconds)
    encoder, batch, tokens = token_network()
    return LearnerBenchSettings(network=network, seconds=seconds, batch=batch, tokens=tokens, encoder=encoder)
