"""One cell of `textdqn bench scaling`: the real system, measured in its steady state.

`measure_cell(config, seconds, warmup_s)` starts a RayRunner from scratch (shards, parameter
store, learner unless `with_learner=False`, rollout actors), steps it until the steady state
begins (every actor past its warm start, the learner updating, and `warmup_s` passed), reads
every process's CPU clock and every shard's counters, steps it `seconds` more, reads them
again, and stops everything. Each rate is over that window. A process's CPU use is its own
CPU-time delta over its own wall-clock delta, so readings queued behind work stay exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import psutil
import ray

from textdqn.cluster.actors import process_clock
from textdqn.cluster.ray_runner import RayRunner
from textdqn.config import Config
from textdqn.errors import TextDQNError
from textdqn.learner.loop import LearnerStats

# How long the steady state may take to begin beyond warmup_s (replay filling, warm starts).
_START_GRACE_S = 180.0


class NoSteadyStateError(TextDQNError):
    """The run never reached its steady state (e.g. the learner never got a sample)."""


def _read_clocks(runner: RayRunner) -> dict[str, dict[str, dict]]:
    """Per component group, per actor id: the process_clock of its process. The runner keeps
    stepping (re-issuing work) until every answer is in."""
    learner = runner.crew.learner
    groups = {
        "shards": list(runner.shards),
        "store": [runner.store],
        "learner": [learner] if learner else [],
    }
    refs = {
        name: {h._actor_id.hex(): h.__ray_call__.remote(process_clock) for h in handles}
        for name, handles in groups.items()
    }
    refs["actors"] = {h._actor_id.hex(): h.status.remote() for h in runner.crew.actors.values()}
    pending = [ref for ids in refs.values() for ref in ids.values()]
    while len(ray.wait(pending, num_returns=len(pending), timeout=0)[0]) < len(pending):
        runner.step(0.25)
    clocks = {name: dict(zip(ids, ray.get(list(ids.values())), strict=True)) for name, ids in refs.items()}
    clocks["driver"] = {"driver": process_clock()}
    return clocks


def _cores(before: dict, after: dict) -> list[float]:
    """CPU cores each process of a group used between two readings (processes in both)."""
    used = []
    for key, b in before.items():
        a = after.get(key)
        if a and a["pid"] == b["pid"] and a["wall_s"] > b["wall_s"]:
            used.append((a["cpu_s"] - b["cpu_s"]) / (a["wall_s"] - b["wall_s"]))
    return used


def _ray_system_cpu_s(exclude: set[int]) -> dict[int, float]:
    """CPU seconds of Ray's own processes started by this driver (GCS, raylet, agents,
    idle workers): its descendant processes other than textdqn's components."""
    found = {}
    for child in psutil.Process().children(recursive=True):
        if child.pid in exclude:
            continue
        try:
            times = child.cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        found[child.pid] = times.user + times.system
    return found


def _warm_up(runner: RayRunner, config: Config, warmup_s: float, log: Callable[[str], None]) -> None:
    """Step until warmup_s passed, every actor is past its warm start and the learner updates."""
    start = time.monotonic()
    updating = runner.crew.learner is None
    while True:
        progress = runner.step(1.0)
        updating = updating or progress.learner.updates > 0
        elapsed = time.monotonic() - start
        warm = min(runner.crew.env_steps, default=0) >= config.actors.warm_start_steps
        if elapsed >= warmup_s and warm and updating:
            log(f"steady state after {elapsed:.0f}s")
            return
        if elapsed > warmup_s + _START_GRACE_S:
            raise NoSteadyStateError(
                f"no steady state after {elapsed:.0f}s (learner updating: {updating}, actors past their "
                f"warm start: {warm}); check replay.rate_limiter.min_size_to_sample against the actors' "
                "output, or run `textdqn train` with this config to see what is slow"
            )


def measure_cell(
    config: Config,
    seconds: float,
    warmup_s: float,
    address: str | None = None,
    with_learner: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure one (actors, shards) cell from a fresh start; returns its figures as a dict."""
    runner = RayRunner(config, address=address, with_learner=with_learner)
    try:
        _warm_up(runner, config, warmup_s, log)
        local = address is None  # Ray's own processes are this driver's children
        clocks0 = _read_clocks(runner)  # may step the runner: before the window starts
        infos0 = runner.replay_info()
        ours = {clock["pid"] for group in clocks0.values() for clock in group.values()}
        system0, t0 = (_ray_system_cpu_s(ours) if local else {}), time.monotonic()
        learner, rollouts, restarts = LearnerStats(), [], 0
        while (left := seconds - (time.monotonic() - t0)) > 0:
            progress = runner.step(min(1.0, left))
            learner.merge(progress.learner)
            rollouts += progress.rollouts
            restarts += progress.actor_restarts
        window = time.monotonic() - t0
        infos1, clocks1 = runner.replay_info(), _read_clocks(runner)
        system1 = _ray_system_cpu_s(ours) if local else {}
        weights = runner.latest_weights()[1]
        item_bytes = ray.get(runner.shards[0].bytes_per_item.remote())
        nodes = sum(1 for n in ray.nodes() if n["Alive"])
    finally:
        runner.close()
        if runner.started_ray:  # the next cell starts on a quiet machine
            psutil.wait_procs(psutil.Process().children(recursive=True), timeout=20)
    cores = {name: _cores(clocks0[name], clocks1[name]) for name in clocks0}
    system = sum(system1[p] - system0[p] for p in system0.keys() & system1.keys()) / window
    lag_count = sum(r.lag_count for r in rollouts)
    return {
        "window_s": window,
        "nodes": nodes,
        "env_steps_per_s": sum(r.env_steps for r in rollouts) / window,
        "inserts_per_s": (sum(i.inserts for i in infos1) - sum(i.inserts for i in infos0)) / window,
        "samples_per_s": (sum(i.samples for i in infos1) - sum(i.samples for i in infos0)) / window,
        "updates_per_s": learner.updates / window if with_learner else None,
        "learner_utilization": learner.compute_s / learner.wall_s if learner.wall_s else None,
        "policy_lag_mean": sum(r.lag_sum for r in rollouts) / lag_count if lag_count else None,
        "actor_calls_per_s": len(rollouts) / window,
        "actor_restarts": restarts,
        "cpu_actors": float(np.sum(cores["actors"])),
        "cpu_per_actor_max": float(np.max(cores["actors"], initial=0.0)),
        "cpu_shards": float(np.sum(cores["shards"])),
        "cpu_per_shard_max": float(np.max(cores["shards"], initial=0.0)),
        "cpu_learner": float(np.sum(cores["learner"])) if with_learner else None,
        "cpu_store": float(np.sum(cores["store"])),
        "cpu_driver": float(np.sum(cores["driver"])),
        "cpu_ray_system": system if local else None,
        "weight_bytes": int(sum(a.nbytes for a in weights.values())),
        "item_bytes": int(item_bytes),
    }
