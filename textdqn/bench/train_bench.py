"""`textdqn bench train`: wall-clock time to a config's target, textdqn vs its peers.

Every run is a command of its own, timed from its start to its exit (interpreter start-up,
imports, Ray, evaluation and the final checkpoint all count), one after another on the same
machine, once per seed:

- textdqn: `textdqn train CONFIG --set run.seed=S`, in each asked mode (serial: one
  process; local: Ray with actors, shards and a learner);
- dqn: `textdqn bench dqn-baseline CONFIG --seed S`, a single-process DQN to CleanRL's
  published recipe (textdqn/bench/dqn_baseline.py), judged by the same greedy evaluation;
- rllib: `textdqn bench rllib-dqn CONFIG --seed S`, RLlib's DQN with its strongest
  published settings (textdqn/bench/rllib_dqn.py), judged by the same target.

A run reaches the target when the config's greedy evaluation meets `stop`'s target. The
implementations are compared on the median total time over the seeds; a run that missed
counts with the time it ran (so a median over misses is a lower bound, marked "≥").
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from textdqn.config import Config, load_config
from textdqn.errors import ConfigError, TextDQNError

IMPLS = ("serial", "local", "dqn", "rllib")
LABELS = {
    "serial": "textdqn (serial)",
    "local": "textdqn (local mode)",
    "dqn": "single-process DQN (CleanRL recipe)",
    "rllib": "RLlib DQN (PER, dueling, double, n-step)",
}


def check_judgeable(config: Config, who: str) -> None:
    """ConfigError unless the config has what judging a run to its target takes: a target and
    periodic greedy evaluation (`who` names the runner in the message)."""
    if not config.stop.target_metric:
        raise ConfigError(f"{who} needs stop.target_metric and stop.target_value to know when to stop")
    if config.eval.every_env_steps < 1:
        raise ConfigError(f"{who} is judged by periodic evaluation: set eval.every_env_steps > 0")


@dataclasses.dataclass(frozen=True)
class PeerRunResult:
    """What a peer's run to a greedy-evaluation target returns, and its command writes as
    JSON for `bench train` (`bench dqn-baseline`, `bench rllib-dqn`).

    wall_s counts from the start of training (set-up excluded, in setup_s) to the end of the
    evaluation that met the target, or to the end of the budget; it includes evaluations.
    """

    name: str
    """the peer: "dqn-baseline" or "rllib-dqn" """
    reached_target: bool
    """whether a greedy evaluation met the config's target within the budget"""
    wall_s: float
    """seconds from the start of training to the target (or to the end of the budget)"""
    setup_s: float
    """seconds spent before training: building the envs and networks (RLlib: Ray and the algorithm)"""
    env_steps: int
    """env steps sampled for training when the target was reached (or the budget ran out)"""
    final_eval: dict[str, float]
    """the metrics of the last greedy evaluation (textdqn's names); empty if none ran"""
    evals: list[tuple[float, int, float]]
    """(wall_s, env_steps, the target metric) for each evaluation, in order"""
    updates: int | None = None
    """gradient updates made, where the peer counts them"""


@dataclasses.dataclass(frozen=True)
class TrainBenchRow:
    """One timed run of one implementation with one seed."""

    impl: str
    seed: int
    reached_target: bool
    total_s: float
    """wall-clock seconds of the whole command, start-up included"""
    train_s: float
    """seconds of training (from the first env step), as the run measured them"""
    env_steps: int
    final_eval: dict[str, float]
    """the metrics of the last greedy evaluation (textdqn's names)"""
    budget_s: float


def _command(
    impl: str, config: str, seed: int, out: Path, overrides: Sequence[str], rllib_budget: float
) -> list[str]:
    """The command line of one run; it writes its results under `out`."""
    base = [sys.executable, "-m", "textdqn.cli"]
    sets = [a for o in overrides for a in ("--set", o)]
    if impl in ("serial", "local"):
        mode = ["--serial"] if impl == "serial" else []
        run = ["--run-dir", str(out / "run"), "--set", f"run.seed={seed}"]
        return [*base, "train", config, *run, *sets, *mode]
    peer = ["dqn-baseline"] if impl == "dqn" else ["rllib-dqn", "--budget", str(rllib_budget)]
    return [*base, "bench", *peer, config, "--seed", str(seed), "--json", str(out / "result.json"), *sets]


def _read_result(impl: str, out: Path) -> tuple[bool, float, int, dict[str, float]]:
    """(reached, train_s, env_steps, final eval) from what the run wrote."""
    if impl in ("serial", "local"):
        s = json.loads((out / "run" / "summary.json").read_text())
        return s["reached_target"], s["wall_s"], s["env_steps"], s["final_eval"]
    r = json.loads((out / "result.json").read_text())
    return r["reached_target"], r["wall_s"], r["env_steps"], r["final_eval"]


def run_one(
    impl: str,
    config: str,
    seed: int,
    overrides: Sequence[str],
    rllib_budget: float,
    log: Callable[[str], None],
) -> TrainBenchRow:
    """Run one implementation once as a command of its own and time it end to end."""
    cfg = load_config(config, tuple(overrides))
    with tempfile.TemporaryDirectory(prefix=f"textdqn-bench-{impl}-") as tmp:
        out = Path(tmp)
        command = _command(impl, config, seed, out, overrides, rllib_budget)
        start = time.perf_counter()
        with open(out / "output.log", "w") as output:
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
        total = time.perf_counter() - start
        if done.returncode != 0:
            tail = "\n".join((out / "output.log").read_text().splitlines()[-15:])
            raise TextDQNError(
                f"{LABELS[impl]} (seed {seed}) failed with exit status {done.returncode}: "
                f"{' '.join(command)}\n{tail}"
            )
        reached, train_s, env_steps, final = _read_result(impl, out)
    budget = rllib_budget if impl == "rllib" else cfg.stop.time_s
    row = TrainBenchRow(LABELS[impl], seed, reached, total, train_s, env_steps, final, budget)
    log(
        f"{LABELS[impl]}, seed {seed}: reached={reached} in {total:.1f} s total ({train_s:.1f} s training), "
        f"{env_steps:,} env steps, final {cfg.stop.target_metric} {final.get(cfg.stop.target_metric)}"
    )
    return row


def summarize(rows: Sequence[TrainBenchRow]) -> list[dict]:
    """Per implementation: runs, runs that reached the target, the median total time (a lower
    bound when a missed run is at or below the median) and median env steps."""
    out = []
    for impl in dict.fromkeys(r.impl for r in rows):
        mine = [r for r in rows if r.impl == impl]
        median = statistics.median(r.total_s for r in mine)
        out.append({
            "impl": impl,
            "runs": len(mine),
            "reached": sum(r.reached_target for r in mine),
            "median_total_s": median,
            "lower_bound": any(not r.reached_target and r.total_s <= median for r in mine),
            "median_env_steps": statistics.median(r.env_steps for r in mine),
        })  # fmt: skip
    return out


def verdicts(summary: Sequence[dict]) -> list[str]:
    """Each textdqn mode against each peer: peer median / our median."""
    ours = [s for s in summary if s["impl"].startswith("textdqn")]
    peers = [s for s in summary if not s["impl"].startswith("textdqn")]
    lines = []
    for o in ours:
        if o["reached"] * 2 <= o["runs"]:
            lines.append(f"{o['impl']} reached the target in {o['reached']} of {o['runs']} runs: no ratio")
            continue
        for p in peers:
            ratio = p["median_total_s"] / o["median_total_s"]
            bound = "at least " if p["lower_bound"] else ""
            lines.append(
                f"{o['impl']} median {o['median_total_s']:.1f} s vs {p['impl']} "
                f"{'≥ ' if p['lower_bound'] else ''}{p['median_total_s']:.1f} s: {bound}{ratio:.2f}x"
            )
    return lines


def run_train_bench(
    config: str,
    impls: Sequence[str] = ("serial", "local", "dqn", "rllib"),
    seeds: Sequence[int] = (0, 1, 2),
    overrides: Sequence[str] = (),
    rllib_budget_s: float = 600.0,
    rllib_seeds: Sequence[int] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Every implementation with every seed (RLlib with `rllib_seeds`, default `seeds`)."""
    unknown = sorted(set(impls) - set(IMPLS))
    if unknown or not impls:
        raise ConfigError(f"--impls takes some of {', '.join(IMPLS)} (comma-separated), got {list(impls)}")
    cfg = load_config(config, tuple(overrides))  # a bad config fails before any run
    check_judgeable(cfg, f"bench train of {config}")
    rows = []
    for impl in impls:
        for seed in rllib_seeds if impl == "rllib" and rllib_seeds is not None else seeds:
            rows.append(run_one(impl, config, seed, overrides, rllib_budget_s, log))
    summary = summarize(rows)
    stop = cfg.stop
    target = {"metric": stop.target_metric, "value": stop.target_value, "max": dict(stop.target_max),
              "min": dict(stop.target_min), "env": cfg.env.id}  # fmt: skip
    return {
        "config": config,
        "target": target,
        "rows": [dataclasses.asdict(r) for r in rows],
        "summary": summary,
        "verdicts": verdicts(summary),
    }
