"""`textdqn bench encoder`: the token Q-network's learner update under several settings, in one run.

What configs/dialogue-text.yaml's learner costs, and what each speed-up the issue lists buys:
the feed-forward width (network.encoder_ff), torch threads (learner.torch_threads; serial
mode used to leave the learner one thread), the observation length, bf16 autocast on the CPU
and torch.compile. Every row runs the real `Learner.update` (double DQN, target network,
fused Adam) on batches of dialogue-like token rows (a random real length, then padding), in
this process, one row after another; updates/s is measured after an untimed warm-up, whose
length is reported too (torch.compile's is the compile time a run would pay).
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

from textdqn.config import Config, LearnerConfig, NetworkConfig
from textdqn.errors import ConfigError
from textdqn.learner.learner import Learner
from textdqn.types import TransitionBatch, WeightedSample

EXTRAS = ("bf16", "compile")


@dataclasses.dataclass(frozen=True)
class EncoderBenchSettings:
    ff: tuple[int, ...] = (256, 128)
    """feed-forward widths to compare (dialogue-text's encoder: width 64, 2 layers, 4 heads)"""
    threads: tuple[int, ...] = (1, 2)
    """torch threads to compare"""
    tokens: tuple[int, ...] = (96,)
    """observation lengths to compare (dialogue-text's max_tokens)"""
    extras: tuple[str, ...] = ()
    """extra rows at the last ff, threads and length: bf16 (CPU autocast), compile"""
    batch: int = 64
    """transitions per update (dialogue-text's learner batch)"""
    seconds: float = 8.0
    """measuring time of each row"""
    warmup_updates: int = 5
    """untimed updates first (allocator, caches; torch.compile compiles here)"""
    vocab: int = 215
    """token ids lie in [0, vocab) (the movies domain's word-level vocabulary)"""
    num_actions: int = 30

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


def _batches(s: EncoderBenchSettings, tokens: int, count: int = 8) -> list[WeightedSample]:
    rng = np.random.default_rng(0)

    def rows() -> np.ndarray:
        ids = rng.integers(1, s.vocab, (s.batch, tokens), dtype=np.int64).astype(np.uint16)
        lengths = rng.integers(tokens // 4, tokens + 1, s.batch)  # dialogues of every length so far
        ids[np.arange(tokens) >= lengths[:, None]] = 0
        return ids

    out = []
    for _ in range(count):
        batch = TransitionBatch(
            obs=rows(),
            action=rng.integers(0, s.num_actions, s.batch),
            reward=rng.standard_normal(s.batch, dtype=np.float32),
            discount=np.full(s.batch, 0.97, np.float32),
            next_obs=rows(),
            policy_version=np.zeros(s.batch, np.int32),
        )
        out.append(WeightedSample(batch, np.ones(s.batch, np.float32), np.arange(s.batch), 0))
    return out


def _learner(s: EncoderBenchSettings, v: dict) -> Learner:
    network = NetworkConfig(
        kind="encoder", encoder_layers=2, encoder_width=64, encoder_heads=4, encoder_ff=v["ff"], q_scale=40.0
    )
    config = Config(
        network=network, learner=LearnerConfig(batch_size=s.batch, torch_threads=v["threads"], device="cpu")
    )
    torch.manual_seed(0)
    space = gym.spaces.Box(0, s.vocab - 1, (v["tokens"],), np.uint16)
    learner = Learner(config, space, gym.spaces.Discrete(s.num_actions))
    if v["extra"] == "compile":  # what a run would get from compiling both networks
        learner.online, learner.target = torch.compile(learner.online), torch.compile(learner.target)
    return learner


def measure(s: EncoderBenchSettings, v: dict) -> dict:
    """One row: updates/s of `Learner.update` under variant v, and its warm-up seconds."""
    before = torch.get_num_threads()
    learner = _learner(s, v)
    samples = itertools.cycle(_batches(s, v["tokens"]))
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
