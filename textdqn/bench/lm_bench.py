"""`textdqn bench lm-learner`: learner updates of the LM Q-network (TextGen-v0's), fp32 against
bf16 autocast in one run (on CPU only with --cpu-bf16; else the fp32 row stands alone).

The learner runs full double-DQN updates (online s with gradients, online and target s'
without) on random length-prefixed token batches shaped like TextGen-v0's observations,
with masks packed as replay holds them. Figures: updates/s and tokens/s, where tokens are
the real (unpadded) tokens of s and s' an update reads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from textdqn.config import Config, LearnerConfig, NetworkConfig
from textdqn.learner.learner import Learner
from textdqn.lm import causal_lm, max_positions
from textdqn.types import TransitionBatch, WeightedSample, pack_masks

SHIPPED_LM = "textdqn:envs/textgen/data/concepts-lm"


@dataclasses.dataclass(frozen=True)
class LMBenchSettings:
    lm: str = SHIPPED_LM
    """local causal LM checkpoint (e.g. models/gpt2); default: the shipped small LM"""
    batch: int = 256
    """transitions per update"""
    max_tokens: int = 48
    """observation length T (prompt + generated tokens; at most the LM's positions); rows
    hold T/2..T real tokens"""
    seconds: float = 20.0
    """measuring time of each row"""
    warmup_updates: int = 3
    """untimed updates first (allocator, kernels)"""
    cpu_bf16: bool = False
    """on CPU too, a bf16 autocast row (learner.cpu_bf16)"""
    train_layers: tuple[int, ...] = (0,)
    """network.lm_train_layers of each row (0: the whole LM trains)"""


def _sample(s: LMBenchSettings, vocab: int, rng: np.random.Generator) -> tuple[WeightedSample, int]:
    def rows() -> tuple[np.ndarray, np.ndarray]:
        lengths = rng.integers(s.max_tokens // 2, s.max_tokens + 1, s.batch)
        obs = np.zeros((s.batch, 1 + s.max_tokens), dtype=np.int32 if vocab > 65535 else np.uint16)
        obs[:, 0] = lengths
        for i, n in enumerate(lengths):
            obs[i, 1 : 1 + n] = rng.integers(1, vocab, n)
        return obs, lengths

    (obs, n_obs), (next_obs, n_next) = rows(), rows()
    mask = rng.random((s.batch, vocab)) < 24 / vocab  # ~ top-k + EOS + concepts
    mask[:, 0] = True
    batch = TransitionBatch(
        obs=obs,
        action=rng.integers(0, vocab, s.batch),
        reward=rng.random(s.batch, dtype=np.float32),
        discount=np.full(s.batch, 0.97, np.float32),
        next_obs=next_obs,
        next_action_mask=pack_masks(mask),
        policy_version=np.zeros(s.batch, np.int32),
    )
    weights = np.ones(s.batch, np.float32)
    sample = WeightedSample(batch=batch, weights=weights, keys=np.arange(s.batch), shard=0)
    return sample, int(n_obs.sum() + n_next.sum())


def _measure(
    s: LMBenchSettings, device: str, bf16: bool, train_layers: int, log: Callable[[str], None]
) -> dict:
    lm = causal_lm(s.lm)
    vocab = lm.get_output_embeddings().weight.shape[0]
    s = dataclasses.replace(s, max_tokens=min(s.max_tokens, max_positions(lm) or s.max_tokens))
    del lm
    spaces = (
        gym.spaces.Box(0, vocab - 1, (1 + s.max_tokens,), np.int32 if vocab > 65535 else np.uint16),
        gym.spaces.Discrete(vocab),
    )
    config = Config(
        network=NetworkConfig(kind="lm", lm={"path": s.lm}, q_scale=0.1, lm_train_layers=train_layers),
        learner=LearnerConfig(batch_size=s.batch, device=device, bf16=bf16, cpu_bf16=bf16, torch_threads=2),
    )
    learner = Learner(config, *spaces)
    rng = np.random.default_rng(0)
    samples = [_sample(s, vocab, rng) for _ in range(4)]
    for i in range(s.warmup_updates):
        learner.update(samples[i % len(samples)][0])
    _sync(device)
    updates, tokens, start = 0, 0, time.perf_counter()
    while updates < 3 or time.perf_counter() - start < s.seconds:
        sample, n = samples[updates % len(samples)]
        learner.update(sample)
        updates, tokens = updates + 1, tokens + n
    _sync(device)
    elapsed = time.perf_counter() - start
    precision = "bf16 autocast" if bf16 else "fp32"
    log(f"  {precision}, train_layers {train_layers}: {updates} updates in {elapsed:.1f}s")
    params = sum(p.numel() for p in learner.online.parameters())
    published = sum(a.nbytes for a in learner.weights().values())  # what each publish sends actors
    return {
        "device": str(learner.device),
        "precision": precision,
        "train_layers": train_layers,
        "parameters": params,
        "trained": sum(p.numel() for p in learner.online.parameters() if p.requires_grad),
        "vocab": vocab,
        "published_bytes": published,
        "updates_per_s": updates / elapsed,
        "tokens_per_s": tokens / elapsed,
        "transitions_per_s": updates * s.batch / elapsed,
    }


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def run_lm_bench(s: LMBenchSettings, device: str, log: Callable[[str], None] = print) -> dict:
    """fp32 (and, on CUDA or with cpu_bf16, bf16 autocast) rows of LM Q-network learner throughput, for each
    number of trained top layers."""
    rows = []
    for layers in s.train_layers:
        rows.append(_measure(s, device, bf16=False, train_layers=layers, log=log))
        if rows[-1]["device"].startswith("cuda") or s.cpu_bf16:
            rows.append(_measure(s, device, bf16=True, train_layers=layers, log=log))
    return {"rows": rows, "settings": dataclasses.asdict(s)}
