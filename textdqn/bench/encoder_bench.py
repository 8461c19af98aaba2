"""`textdqn bench encoder`: the token Q-network's learner update under several settings, in one run.

What configs/dialogue-text.yaml's learner costs, and what each speed-up the issue lists buys:
the feed-forward width (network.encoder_ff), torch threads (learner.torch_threads; serial
mode used to leave the learner one thread), the observation length, bf16 autocast on the CPU,
torch.compile, one pass per batch instead of two passes split by length, and plain instead of
double DQN targets. Every row runs the real `Learner.update` (double DQN, target network,
fused Adam) on batches of real dialogue observations (movie-booking dialogues played by the
rule agent, every turn of each: every length a dialogue goes through), in this process, one
row after another. updates/s is measured after an untimed warm-up, whose length is reported
too (torch.compile's is the compile time a run would pay).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from textdqn.config import Config, LearnerConfig, NetworkConfig, load_config
from textdqn.errors import ConfigError
from textdqn.learner.learner import Learner
from textdqn.types import TransitionBatch, WeightedSample

EXTRAS = ("bf16", "compile", "one-pass", "single-q")
TOKEN_CONFIG = "configs/dialogue-text.yaml"
"""the config whose token Q-network bench encoder and bench learner --network transformer measure"""


def token_network(path: str = TOKEN_CONFIG) -> tuple[NetworkConfig, int, int]:
    """(network, learner batch, observation length) of a config with token observations (the
    transformer encoder its Q-network is): what the token-network benches measure."""
    cfg = load_config(path)
    if cfg.network.kind not in ("auto", "encoder") or cfg.env.kwargs.get("observation") != "tokens":
        raise ConfigError(
            f"{path}: the token-network benches need a config with env.kwargs.observation = tokens and "
            f"network.kind auto or encoder (got {cfg.network.kind!r}), e.g. {TOKEN_CONFIG}"
        )
    network = dataclasses.replace(cfg.network, kind="encoder")
    return network, cfg.learner.batch_size, int(cfg.env.kwargs.get("max_tokens", 256))


@dataclasses.dataclass(frozen=True)
class EncoderBenchSettings:
    ff: tuple[int, ...] = (256, 128)
    """feed-forward widths to compare (the rest of the network is `config`'s)"""
    threads: tuple[int, ...] = (1, 2)
    """torch threads to compare"""
    tokens: tuple[int, ...] = (96,)
    """observation lengths to compare (dialogue-text's max_tokens)"""
    extras: tuple[str, ...] = ()
    """extra rows at the last ff, threads and length: bf16 (CPU autocast), compile, one-pass
    (every batch in one pass at its longest row's length, as before the two-pass split),
    single-q (learner.double_q off: the target network alone picks and values a', one forward
    pass fewer an update)"""
    batch: int = 64
    """transitions per update (dialogue-text's learner batch)"""
    config: str = TOKEN_CONFIG
    """the config whose token Q-network is measured"""
    seconds: float = 8.0
    """measuring time of each row"""
    warmup_updates: int = 5
    """untimed updates first (allocator, caches; torch.compile compiles here)"""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.extras) - set(EXTRAS))
        if unknown:
            raise ConfigError(f"bench encoder --extras takes {', '.join(EXTRAS)}; got {', '.join(unknown)}")


def _variants(s: EncoderBenchSettings) -> list[dict]:
    rows = [
        {"ff": ff, "threads": t, "tokens": n, "extra": "-"}
        for n, ff, t in itertools.product(s.tokens, s.ff, s.threads)
    ]
    last = {"ff": s.ff[-1], "threads": s.threads[-1], "tokens": s.tokens[-1]}
    return rows + [{**last, "extra": e} for e in s.extras]


def _dialogue_rows(tokens: int, count: int, seed: int = 0) -> tuple[np.ndarray, gym.Space, gym.Space]:
    """`count` token observations of movie-booking dialogues played by the rule agent (every
    turn of each, so every length a dialogue goes through), and the env's spaces."""
    from textdqn.envs.dialogue.env import DialogueEnv

    env = DialogueEnv(domain="movies", observation="tokens", max_tokens=tokens)
    rows: list[np.ndarray] = []
    episode = seed
    while len(rows) < count:
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            rows.append(obs)
            obs, _, terminated, truncated, _ = env.step(env.rule_action())
            done = terminated or truncated
        episode += 1
    order = np.random.default_rng(seed).permutation(len(rows))[:count]
    return np.stack(rows)[order], env.observation_space, env.action_space


def _batches(s: EncoderBenchSettings, tokens: int, count: int = 8) -> tuple[list[WeightedSample], tuple]:
    rng = np.random.default_rng(0)
    rows, obs_space, act_space = _dialogue_rows(tokens, 2 * count * s.batch)
    out = []
    for i in range(count):
        obs, next_obs = rows[2 * i * s.batch :][: s.batch], rows[(2 * i + 1) * s.batch :][: s.batch]
        batch = TransitionBatch(
            obs=obs,
            action=rng.integers(0, act_space.n, s.batch),
            reward=rng.standard_normal(s.batch, dtype=np.float32),
            discount=np.full(s.batch, 0.97, np.float32),
            next_obs=next_obs,
            policy_version=np.zeros(s.batch, np.int32),
        )
        out.append(WeightedSample(batch, np.ones(s.batch, np.float32), np.arange(s.batch), 0))
    return out, (obs_space, act_space)


def _learner(s: EncoderBenchSettings, v: dict, spaces: tuple) -> Learner:
    network = dataclasses.replace(token_network(s.config)[0], encoder_ff=v["ff"])
    settings = LearnerConfig(
        batch_size=s.batch, torch_threads=v["threads"], device="cpu", double_q=v["extra"] != "single-q"
    )
    config = Config(network=network, learner=settings)
    torch.manual_seed(0)
    learner = Learner(config, *spaces)
    if v["extra"] == "one-pass":
        learner.online.split_by_length = learner.target.split_by_length = False
    if v["extra"] == "compile":  # what a run would get from compiling both networks
        learner.online, learner.target = torch.compile(learner.online), torch.compile(learner.target)
    return learner


def measure(s: EncoderBenchSettings, v: dict) -> dict:
    """One row: updates/s of `Learner.update` under variant v, and its warm-up seconds."""
    before = torch.get_num_threads()
    batches, spaces = _batches(s, v["tokens"])
    learner = _learner(s, v, spaces)
    samples = itertools.cycle(batches)
    precision = (
        torch.autocast("cpu", dtype=torch.bfloat16) if v["extra"] == "bf16" else contextlib.nullcontext()
    )
    try:
        with precision:
            start = time.perf_counter()
            for _ in range(s.warmup_updates):
                learner.update(next(samples))
            warmup = time.perf_counter() - start
            start, updates = time.perf_counter(), 0
            while time.perf_counter() - start < s.seconds:
                learner.update(next(samples))
                updates += 1
            wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    rate = updates / wall
    return {**v, "updates_per_s": rate, "transitions_per_s": rate * s.batch, "warmup_s": warmup}


def run_encoder_bench(settings: EncoderBenchSettings, log: Callable[[str], None] = print) -> dict:
    """Every variant's row and its speed against the first row, as a JSON-ready dict."""
    rows = []
    for v in _variants(settings):
        log(f"  ff {v['ff']}, {v['threads']} thread(s), {v['tokens']} tokens, {v['extra']} ...")
        rows.append(measure(settings, v))
    first = rows[0]["updates_per_s"]
    for r in rows:
        r["vs_first"] = r["updates_per_s"] / first
    return {"rows": rows, "settings": dataclasses.asdict(settings)}
