"""`textdqn bench train`: wall-clock and env steps to the CartPole target, textdqn vs RLlib.

Both runs target the same thing on the same machine, one after the other: greedy
evaluation mean return >= 475 over 20 episodes. textdqn runs configs/cartpole.yaml in
local mode; RLlib runs its tuned DQN example (textdqn/bench/rllib_dqn.py) under a time
budget, and a miss is reported as "not reached in T s". Times include set-up (starting
Ray and the actors, or building the RLlib algorithm); set-up is also shown on its own.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textdqn.config import load_config


@dataclasses.dataclass(frozen=True)
class TrainBenchRow:
    impl: str
    reached_target: bool
    total_s: float
    setup_s: float
    env_steps: int
    final_eval_return: float | None
    budget_s: float
    learner_utilization: float | None = None
    policy_lag_mean: float | None = None


def run_textdqn(
    config_path: str, overrides: tuple[str, ...] = (), log: Callable[[str], None] = print
) -> TrainBenchRow:
    """Train the config in local mode; setup = total − the supervisor's training wall time."""
    from textdqn.cluster.supervisor import train

    config = load_config(config_path, overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="textdqn-bench-") as tmp:
        summary = train(config, mode="ray", run_dir=str(Path(tmp) / "run"), live=False)
    total = time.perf_counter() - start
    log(f"[textdqn] reached={summary['reached_target']} in {total:.1f}s, {summary['env_steps']:,} env steps")
    return TrainBenchRow(
        impl="textdqn (local mode)",
        reached_target=summary["reached_target"],
        total_s=total,
        setup_s=total - summary["wall_s"],
        env_steps=summary["env_steps"],
        final_eval_return=summary["final_eval"].get("return_mean"),
        budget_s=config.stop.time_s,
        learner_utilization=summary["learner_utilization"],
        policy_lag_mean=summary["policy_lag_mean"],
    )


def run_rllib(budget_s: float, log: Callable[[str], None] = print) -> TrainBenchRow:
    from textdqn.bench.rllib_dqn import run_rllib_dqn

    result = run_rllib_dqn(target=475.0, eval_episodes=20, time_budget_s=budget_s, log=log)
    return TrainBenchRow(
        impl="RLlib DQN (tuned example)",
        reached_target=result.reached_target,
        total_s=result.setup_s + result.wall_s,
        setup_s=result.setup_s,
        env_steps=result.env_steps,
        final_eval_return=result.final_eval_return,
        budget_s=budget_s,
    )


def speedup(ours: TrainBenchRow, peer: TrainBenchRow) -> tuple[float | None, str]:
    """(ratio, text): peer time / our time; a lower bound when the peer missed its budget."""
    if not ours.reached_target:
        return None, "textdqn did not reach the target: no speed-up to report"
    if peer.reached_target:
        ratio = peer.total_s / ours.total_s
        return ratio, f"textdqn reached the target {ratio:.1f}x sooner"
    ratio = peer.total_s / ours.total_s
    return ratio, (
        f"RLlib did not reach the target in {peer.budget_s:.0f}s of training; "
        f"textdqn was at least {ratio:.1f}x sooner"
    )


def run_train_bench(
    config_path: str = "configs/cartpole.yaml",
    rllib_budget_s: float = 600.0,
    log: Callable[[str], None] = print,
) -> dict:
    ours = run_textdqn(config_path, log=log)
    peer = run_rllib(rllib_budget_s, log=log)
    ratio, verdict = speedup(ours, peer)
    return {
        "rows": [dataclasses.asdict(ours), dataclasses.asdict(peer)],
        "speedup": ratio,
        "verdict": verdict,
        "target": {"metric": "greedy eval return_mean over 20 episodes", "value": 475.0},
    }
