"""`bench scaling --project N`: where throughput would saturate on N nodes, from measured costs.

The model, stated (pure functions, no measuring here):

- Layout: a head node runs the driver and the parameter store; a learner node runs the
  learner; N CPU nodes of C cores each run S shards (one core each) and N·C − S rollout
  actors (one core each). Every bound is in env steps/s; the projection is the smallest.
- actors: (N·C − S) · (env steps an actor makes per CPU-second, measured).
- shards: S / (shard CPU-seconds per inserted transition, sampling at the config's
  samples-per-insert included, · inserts per env step).
- learner: with samples_per_insert r > 0 the shards' rate limiter ties inserts to
  samples, so env steps/s ≤ U · batch / (r · inserts per env step), U the learner's
  compute-bound updates/s (measured updates/s ÷ utilization, or given, e.g. a GPU's rate
  from `bench learner --device cuda`). With r = 0 the learner does not bound the actors.
- driver: one actor call per actors.steps_per_call env steps; bound = steps_per_call ÷ the
  driver's CPU-seconds per call. parameter store: weight checks are long polls answered
  once per published version, so it answers every actor once per version: bound =
  1 ÷ (actors · versions per env step · its CPU-seconds per answer), where versions per env
  step = inserts per env step · r ÷ (batch · publish_every) (no bound without a learner).
- network: the learner node's link carries every sample (r · item bytes per inserted
  transition) and each node's copy of each published weight version (Ray keeps one copy
  per node); a node's link carries its shards' inserts and samples. Bound: link bytes/s ÷
  bytes per env step.
CPU costs per unit are slopes fitted over the measured cells (fixed costs drop out), or
the median ratio where the cells do not spread enough to fit one.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np

from textdqn.errors import TextDQNError

BOUNDS = ("actors", "shards", "learner", "driver", "parameter store", "network")


@dataclasses.dataclass(frozen=True)
class NodeShape:
    cores: int = 16
    gbps: float = 10.0
    """each node's network link, Gbit/s"""


@dataclasses.dataclass(frozen=True)
class UnitCosts:
    """What one unit of work costs, from bench scaling's rows."""

    actor_steps_per_cpu_s: float
    inserts_per_env_step: float
    shard_cpu_s_per_insert: float
    learner_updates_per_s: float | None
    """compute-bound learner updates/s; None when no cell ran a learner"""
    driver_cpu_s_per_call: float
    store_cpu_s_per_answer: float
    batch_size: int
    samples_per_insert: float
    steps_per_call: int
    publish_every: int
    weight_bytes: int
    item_bytes: int


def per_unit(units, cpu) -> float:
    """CPU-seconds per unit of work: the slope of cpu against units/s over the cells when
    it is positive and the cells spread, else the median ratio."""
    pairs = [(u, c) for u, c in zip(units, cpu, strict=True) if u > 0 and c is not None and c == c]
    if not pairs:
        return math.nan
    xs, ys = np.array(pairs).T
    if len(pairs) >= 3 and xs.max() > 1.5 * xs.min():
        slope = float(np.polyfit(xs, ys, 1)[0])
        if slope > 0:
            return slope
    return float(statistics.median(ys / xs))


def unit_costs(rows: list[dict], learner_updates_per_s: float | None = None) -> UnitCosts:
    """Unit costs from the rows of one config (with or without a learner); cells that made
    no progress (a stall) say nothing about unit costs and are left out."""
    rows = [r for r in rows if r["env_steps_per_s"] > 0 and r["inserts_per_s"] > 0]
    if not rows:
        raise TextDQNError("no measured cell made progress, so there is nothing to project from")
    first = rows[0]
    with_learner = [r for r in rows if r.get("updates_per_s") and r.get("learner_utilization")]
    if learner_updates_per_s is not None and not any(r["learner"] for r in rows):
        raise TextDQNError(
            "--learner-updates-per-s needs cells measured with the learner (these ran --no-learner, "
            "so they hold no sampling cost): measure without --no-learner"
        )
    if learner_updates_per_s is None and with_learner:
        learner_updates_per_s = max(
            r["updates_per_s"] / max(r["learner_utilization"], 1e-9) for r in with_learner
        )
    column = lambda name: np.array([r[name] for r in rows], dtype=float)  # noqa: E731
    steps = column("env_steps_per_s")
    updates = np.nan_to_num(column("updates_per_s"))  # None (no learner) -> 0
    answers = list(column("actors") * updates / column("publish_every"))  # the store's answers/s
    return UnitCosts(
        actor_steps_per_cpu_s=float(np.median(steps / column("cpu_actors"))),
        inserts_per_env_step=float(np.median(column("inserts_per_s") / steps)),
        shard_cpu_s_per_insert=per_unit(column("inserts_per_s"), column("cpu_shards")),
        learner_updates_per_s=learner_updates_per_s,
        driver_cpu_s_per_call=per_unit(column("actor_calls_per_s"), column("cpu_driver")),
        store_cpu_s_per_answer=per_unit(answers, column("cpu_store")),
        batch_size=int(first["batch_size"]),
        samples_per_insert=float(first["samples_per_insert"]),
        steps_per_call=int(first["steps_per_call"]),
        publish_every=int(first["publish_every"]),
        weight_bytes=int(first["weight_bytes"]),
        item_bytes=int(first["item_bytes"]),
    )  # fmt: skip


def bounds(c: UnitCosts, shape: NodeShape, nodes: int, shards: int) -> dict[str, float]:
    """Env steps/s each component allows on `nodes` CPU nodes with `shards` shards."""
    ins, r = c.inserts_per_env_step, c.samples_per_insert
    link = shape.gbps * 1e9 / 8
    versions_per_step = ins * r / (c.batch_size * c.publish_every)  # published versions per env step
    learner_link = ins * r * c.item_bytes + nodes * c.weight_bytes * versions_per_step
    shard_link = math.ceil(shards / nodes) * ins * (1 + r) * c.item_bytes / shards
    learner = store = math.inf
    if r > 0 and c.learner_updates_per_s:
        learner = c.learner_updates_per_s * c.batch_size / (r * ins)
    actors = max(0, nodes * shape.cores - shards)
    if r > 0 and actors and c.store_cpu_s_per_answer > 0:  # nan (no learner measured): no bound
        store = 1 / (actors * versions_per_step * c.store_cpu_s_per_answer)
    return {
        "actors": actors * c.actor_steps_per_cpu_s,
        "shards": shards / (c.shard_cpu_s_per_insert * ins),
        "learner": learner,
        "driver": c.steps_per_call / c.driver_cpu_s_per_call,
        "parameter store": store,
        "network": link / max(learner_link, shard_link, 1e-12),
    }


def best_shards(c: UnitCosts, shape: NodeShape, nodes: int) -> int:
    """The fewest shards that are not what binds (at most half the CPU cores)."""
    most = max(1, nodes * shape.cores // 2)
    for shards in range(1, most + 1):
        b = bounds(c, shape, nodes, shards)
        if b["shards"] >= min(v for k, v in b.items() if k != "shards"):
            return shards
    return most


def project(c: UnitCosts, shape: NodeShape, max_nodes: int) -> list[dict]:
    """One row per node count (1, 2, 4, ..., max_nodes): the bounds, the projected
    env steps/s (the smallest bound) and what binds."""
    counts = sorted({2**i for i in range(max(0, int(math.log2(max_nodes))) + 1)} | {max_nodes})
    rows = []
    for n in counts:
        shards = best_shards(c, shape, n)
        b = bounds(c, shape, n, shards)
        binds = min(b, key=lambda k: (b[k], k == "shards"))  # on a tie, not the shards (sized to fit)
        rows.append(
            {"nodes": n, "num_actors": n * shape.cores - shards, "num_shards": shards, **b,
             "projected": b[binds], "binds": binds}
        )  # fmt: skip
    return rows


def saturation(rows: list[dict]) -> str:
    """One sentence: where the projected throughput stops growing with nodes, and why."""
    last = rows[-1]
    if last["binds"] == "actors":
        return (
            f"still actor-bound at {last['nodes']} nodes: {last['projected']:,.0f} env steps/s, "
            "growing with every node added"
        )
    first = next(r for r in rows if r["binds"] != "actors")
    return (
        f"saturates at about {last['projected']:,.0f} env steps/s from {first['nodes']} node(s) on: "
        f"the {last['binds']} binds first"
    )
