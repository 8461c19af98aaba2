"""`textdqn bench actor CONFIG`: one rollout actor's env steps/s under two settings, in one run:

- `--compare priorities`: initial priorities taken from acting's Q-values against a forward
  pass over every sent batch;
- `--compare kv-cache` (TextGen-v0 with network kind lm): acting and the envs' reference LM
  reading only each env's new token from KV caches, batched across envs (network.kv_cache),
  against forward passes over every whole text;
- `--compare bf16` (network kind lm): the acting Q-network and the reference LM in bfloat16
  (network.act_dtype, env.kwargs.lm_dtype) against float32.

The actor is the config's RolloutWorker (its envs, network and n-step adder) past its warm
start, in this process with one thread, as in local mode; no replay, no learner, so the
figure is the actor's own cost per env step. The two settings alternate, `rounds` times
each, so drift in the machine's speed falls on both.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch

from textdqn.actors.worker import RolloutWorker
from textdqn.config import Config
from textdqn.errors import ConfigError

COMPARISONS = {
    "priorities": ("acted", "forward pass"),
    "kv-cache": ("kv cache", "whole texts"),
    "bf16": ("bfloat16", "float32"),
}
"""each comparison's two settings: the new way first"""
LM_ONLY = ("kv-cache", "bf16")


def _worker(config: Config, compare: str, setting: str) -> RolloutWorker:
    actors = dataclasses.replace(config.actors, warm_start_steps=0)
    if compare in LM_ONLY and config.network.kind != "lm":
        raise ConfigError(
            f"bench actor --compare {compare} needs network.kind lm (a TextGen-v0 config), not "
            f"{config.network.kind!r}"
        )
    network, env = config.network, config.env
    if compare == "kv-cache":
        network = dataclasses.replace(network, kv_cache=setting == "kv cache")
    if compare == "bf16":  # the acting Q-network and the envs' reference LM
        network = dataclasses.replace(network, act_dtype=setting)
        env = dataclasses.replace(env, kwargs={**env.kwargs, "lm_dtype": setting})
    config = dataclasses.replace(config, actors=actors, network=network, env=env)
    worker = RolloutWorker(config, 0, seed=config.run.seed)
    worker.acted_priorities = setting != "forward pass"
    if compare == "kv-cache":  # the envs share one reference LM
        worker.envs.envs[0].unwrapped.reference.batch_with_cache = setting == "kv cache"
    return worker


def run_actor_bench(
    config: Config,
    seconds: float = 10.0,
    rounds: int = 3,
    compare: str = "priorities",
    log: Callable[[str], None] = print,
) -> dict:
    """env steps/s of each setting of `compare` (medians over rounds) and their ratio."""
    if compare not in COMPARISONS:
        raise ConfigError(f"bench actor --compare {compare!r}: expected one of {', '.join(COMPARISONS)}")
    before = torch.get_num_threads()
    workers = {}
    for name in COMPARISONS[compare]:
        workers[name] = _worker(config, compare, name)
        workers[name].rollout(config.actors.sync_every)  # warm-up: allocator, first batches
    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {name: [] for name in workers}
    try:
        for r in range(rounds):
            for name, worker in workers.items():
                log(f"  round {r + 1}/{rounds}: {name} ...")
                start, steps = time.perf_counter(), 0
                while time.perf_counter() - start < seconds / rounds:
                    steps += worker.rollout(config.actors.sync_every)[1].env_steps
                rates[name].append(steps / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(before)
        for worker in workers.values():
            worker.close()
    rows = [{"setting": name, "env_steps_per_s": sorted(r)[len(r) // 2]} for name, r in rates.items()]
    return {
        "config": config.env.id,
        "compare": compare,
        "rows": rows,
        "ratio": rows[0]["env_steps_per_s"] / rows[1]["env_steps_per_s"],
        "settings": {"seconds": seconds, "rounds": rounds, "num_envs": config.env.num_envs},
    }
