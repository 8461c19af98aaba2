"""`textdqn bench actor CONFIG`: one rollout actor's env steps/s, with initial priorities taken
from acting's Q-values against a forward pass over every sent batch, in one run.

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

SETTINGS = {"acted": True, "forward pass": False}


def _worker(config: Config) -> RolloutWorker:
    actors = dataclasses.replace(config.actors, warm_start_steps=0)
    return RolloutWorker(dataclasses.replace(config, actors=actors), 0, seed=config.run.seed)


def run_actor_bench(
    config: Config, seconds: float = 10.0, rounds: int = 3, log: Callable[[str], None] = print
) -> dict:
    """env steps/s of each priority setting (medians over rounds) and their ratio."""
    before = torch.get_num_threads()
    workers = {}
    for name, acted in SETTINGS.items():
        workers[name] = _worker(config)
        workers[name].acted_priorities = acted
        workers[name].rollout(config.actors.sync_every)  # warm-up: allocator, first batches
    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
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
    rows = [{"priorities": name, "env_steps_per_s": sorted(r)[len(r) // 2]} for name, r in rates.items()]
    return {
        "config": config.env.id,
        "rows": rows,
        "ratio_acted_vs_forward": rows[0]["env_steps_per_s"] / rows[1]["env_steps_per_s"],
        "settings": {"seconds": seconds, "rounds": rounds, "num_envs": config.env.num_envs},
    }
