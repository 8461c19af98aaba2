"""The supervisor: runs a training job in any mode and keeps its books.

`train(config, mode, ...)` makes the run directory, starts the runner (serial, local Ray or
a Ray cluster), and loops: take a slice of progress, aggregate it into one metrics row
(console, metrics.csv, TensorBoard), evaluate greedily when due, checkpoint when due, and
stop on the first criterion met. It ends with a final checkpoint, evaluation, learning
curve and summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textdqn.actors.evaluator import Evaluator, baseline_policy
from textdqn.cluster.books import Aggregator, Counters
from textdqn.cluster.preflight import check_before_start
from textdqn.cluster.replay_storage import ReplayStorage, check_storage, run_id_of
from textdqn.config import Config, to_dict, without_secrets
from textdqn.envs import save_run_files
from textdqn.errors import TextDQNError
from textdqn.learner.checkpoint import (
    load_checkpoint,
    replay_snapshot_dir,
    save_checkpoint,
    save_policy,
)
from textdqn.metrics import (
    METRIC_COLUMNS,
    ConsoleView,
    MetricsLogger,
    RunDirectory,
    plot_learning_curve,
    write_summary,
)
from textdqn.stopping import budget_spent, target_reached, target_report, target_summary

log = logging.getLogger(__name__)


def make_runner(
    config: Config,
    mode: str,
    address: str | None,
    learner_state: dict | None,
    replay_dir: Path | None = None,
    storage_options: dict | None = None,
    checkpoints: Path | None = None,
    actor_env_steps: list[int] | None = None,
):
    """The runner for `mode`: "serial" (one process) or "ray" (local, or the cluster at `address`).

    `replay_dir`: a memory replay snapshot to restore the shards from (on resume);
    `storage_options`: where durable shards keep their items (ReplayStorage.shard_options);
    `checkpoints`: where a dead learner's replacement finds its state;
    `actor_env_steps`: each actor's env steps so far (resume), so ε and warm start continue."""
    replay = str(replay_dir) if replay_dir else None
    if mode == "serial":
        from textdqn.cluster.serial import SerialRunner

        return SerialRunner(config, learner_state, replay, storage_options, actor_env_steps)
    from textdqn.cluster.ray_runner import RayRunner

    def restore_learner() -> dict | None:
        if checkpoints is not None and (checkpoints / "latest.json").exists():
            return load_checkpoint(checkpoints)[0]
        return learner_state

    return RayRunner(
        config,
        address=address,
        learner_state=learner_state,
        replay_dir=replay,
        storage_options=storage_options,
        restore_learner=restore_learner,
        actor_env_steps=actor_env_steps,
    )


def train(
    config: Config,
    mode: str = "ray",
    address: str | None = None,
    run_dir: str = "",
    resume: str = "",
    live: bool = True,
    overrides: Sequence[str] = (),
) -> dict:
    """Run a training job to its stop criterion; returns the summary (also in summary.json).

    Bad input fails before the run directory or Ray exist (preflight.py); a start that still
    fails removes the new run directory, so the same command can run again. A fault that
    ends the run early (e.g. Redis gone) still writes a final checkpoint and summary.json
    (with "error"), then raises. SIGTERM ends the run as Ctrl-C does. On resume, the
    `overrides` applied are written to config.yaml and listed in resumes.log."""
    learner_state, counters, replay_dir = None, Counters(), None
    if resume:
        run = RunDirectory.open(resume)
        learner_state, saved = load_checkpoint(run.checkpoints_dir)
        check_before_start(config, mode, address, learner_state)
        check_storage(config, run_id_of(run.path), resume=True)
        counters = Counters(**{k: saved[k] for k in dataclasses.asdict(counters) if k in saved})
        # The learner's file can be newer than the driver's counters written beside it.
        counters.updates = max(counters.updates, int(learner_state["updates"]))
        n = config.actors.num_actors  # --set actors.num_actors may have changed it
        counters.actor_env_steps = ([*counters.actor_env_steps] + [0] * n)[:n]
        snapshot = replay_snapshot_dir(run.checkpoints_dir, learner_state)
        if config.replay.storage == "memory" and snapshot.is_dir():
            replay_dir = snapshot
        run.record_resume(config, overrides)
    else:
        check_before_start(config, mode, address, None)
        path = run_dir or config.run.run_dir or RunDirectory.default_path(config)
        check_storage(config, run_id_of(path), resume=False)
        run = RunDirectory.create(config, run_dir=str(path))
        config = run.with_own_files(config)
    started = False
    try:
        with ReplayStorage(config, run.path, run_id_of(run.path)) as storage:
            with _deferred_interrupts() as signals:  # Ray's start-up must not be cut half-way
                runner = make_runner(
                    config,
                    mode,
                    address,
                    learner_state,
                    replay_dir,
                    storage.shard_options,
                    run.checkpoints_dir,
                    counters.actor_env_steps or None,
                )
            if signals:
                runner.close()
                raise KeyboardInterrupt(f"signal {signals[0]} during start-up")
            started = True
            try:
                with _sigterm_as_interrupt():  # after ray.init, which installs a handler of its own
                    return _supervise(config, run, runner, counters, live)
            finally:
                runner.close()
    except BaseException:
        if not started and not resume:  # nothing trained: leave no directory that blocks a rerun
            shutil.rmtree(run.path, ignore_errors=True)
        raise


@contextlib.contextmanager
def _deferred_interrupts():
    """While the runner starts, Ctrl-C and SIGTERM are only noted (the list yielded); the
    caller stops once the start is complete. Interrupting Ray's own start-up half-way left
    its processes running, and the KeyboardInterrupt was lost in Ray's threads."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in watched}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (schedulers, `timeout`) ends the run like Ctrl-C: final checkpoint and summary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _supervise(config: Config, run: RunDirectory, runner, counters: Counters, live: bool) -> dict:
    stop, every = config.stop, config.eval.every_env_steps
    evaluator = Evaluator(config)
    save_run_files(evaluator.envs, run.path)
    baselines = _baselines(evaluator, config)
    agg = Aggregator(counters)
    logger = MetricsLogger(run, METRIC_COLUMNS)
    start = time.perf_counter()
    next_eval = counters.env_steps + every if every else None
    next_ckpt = counters.updates + config.run.checkpoint_every_updates
    reached, final_eval, last, interrupted = False, {}, start, False
    policy: dict[str, np.ndarray] = {}
    failure: TextDQNError | None = None
    restarts_before = counters.learner_restarts
    replay_at_start = list(runner.replay_at_start)
    with ConsoleView(f"textdqn {config.run.name} -> {run.path}", enabled=live) as view:
        while True:
            try:
                to_eval = None if next_eval is None else max(1, next_eval - counters.env_steps)
                progress = runner.step(config.run.log_every_s, env_steps=to_eval)
            except KeyboardInterrupt:  # Ctrl-C: finish the run properly, as at a stop criterion
                log.warning("interrupted: final checkpoint, evaluation and summary (Ctrl-C again aborts)")
                interrupted = True
                break
            except TextDQNError as e:  # a fault that ends the run: keep what the learner has
                log.error("the run stops: %s", e)
                failure = e
                break
            now = time.perf_counter()
            wall = counters.wall_s + now - start
            row = agg.row(progress, wall, now - last)
            last = now
            if next_eval is not None and counters.env_steps >= next_eval:
                next_eval += every * ((counters.env_steps - next_eval) // every + 1)  # the next grid point
                final_eval, policy = _evaluate(evaluator, runner, config, row)
                logger.log_evaluation(final_eval, counters.env_steps, wall)
                reached = target_reached(stop, final_eval)
                if stop.target_metric:  # every figure the target needs, on the console
                    view.note(
                        f"[{wall:,.1f}s] evaluation at {counters.env_steps:,} env steps: "
                        + target_report(stop, final_eval, reached)
                    )
            if counters.updates >= next_ckpt:
                next_ckpt = counters.updates + config.run.checkpoint_every_updates
                _checkpoint(run, runner, counters, wall, config)
            logger.log(row)
            view.update(row)
            if (reached and stop.at_target) or budget_spent(stop, counters.env_steps, counters.updates, wall):
                break
    wall = counters.wall_s + time.perf_counter() - start
    _checkpoint(run, runner, counters, wall, config, replay=failure is None)
    # Restarts the last slice (or the final checkpoint) saw are not in any metrics row.
    counters.learner_restarts = restarts_before + runner.learner_restarts
    # (after a fault the env may be what failed; with stop.at_target off the final one judges)
    if (not reached or not stop.at_target) and failure is None:
        final_eval, policy = _evaluate(evaluator, runner, config, {})
        logger.log_evaluation(final_eval, counters.env_steps, wall)
        reached = target_reached(stop, final_eval)
    logger.close()
    evaluator.close()
    if policy:  # the network summary.json's final_eval measured: `textdqn eval RUN_DIR` reads it
        save_policy(run.policy_path, policy, {"evaluation": final_eval})
    metric = "eval_target" if stop.target_metric else "eval_return_mean"
    target = stop.target_value if stop.target_metric else None
    plot_learning_curve(logger.csv_path, run.plot_path, target=target, metric=metric)
    summary = {
        "reached_target": bool(reached),
        "interrupted": interrupted,
        "target": target_summary(stop),
        "env_steps": counters.env_steps,
        "updates": counters.updates,
        "wall_s": round(wall, 2),
        "final_eval": final_eval,
        # "baseline": the first (or only) one, as runs have always reported it
        **({"baseline": next(iter(baselines.values())), "baselines": baselines} if baselines else {}),
        "env_errors": counters.env_errors,
        "actor_restarts": counters.actor_restarts,
        "learner_restarts": counters.learner_restarts,
        **agg.totals(),
        "replay_at_start": replay_at_start,
        "placement": runner.placement,
        **({"error": str(failure)} if failure else {}),
        "config": to_dict(without_secrets(config)),
    }
    write_summary(run.summary_path, summary)
    if failure is not None:
        log.error(
            "final checkpoint and summary are in %s; once the cause is fixed, continue the run "
            "with: textdqn train CONFIG --resume %s",
            run.path,
            run.path,
        )
        raise failure
    return summary


def _evaluate(evaluator: Evaluator, runner, config: Config, row: dict) -> tuple[dict, dict]:
    """The greedy evaluation of the newest published weights (its metrics, also added to
    `row`) and those weights."""
    version, weights = runner.latest_weights()
    result = evaluator.evaluate(weights, config.eval.episodes)
    result["weight_version"] = version
    row["eval_return_mean"] = result["return_mean"]
    row["eval_return_std"] = result["return_std"]
    row["eval_success_rate"] = result.get("success_rate")
    if config.stop.target_metric:
        row["eval_target"] = result.get(config.stop.target_metric)
    return result, weights


def _baselines(evaluator: Evaluator, config: Config) -> dict[str, dict]:
    """Each eval.baseline agent's metrics on the evaluation episodes, by agent ({} for none)."""
    results = {}
    for agent in config.eval.baselines:
        policy = baseline_policy(agent, evaluator.envs, config.run.seed)
        results[agent] = {"agent": agent, **evaluator.run(policy, config.eval.episodes)}
        log.info("baseline %s", results[agent])
    return results


def _checkpoint(
    run: RunDirectory, runner, c: Counters, wall: float, config: Config, replay: bool = True
) -> Path:
    """The learner's state and counters, and with memory storage a snapshot of every shard
    (a durable replay needs none: it lives in Redis). `replay=False` skips the snapshot
    (after a replay fault the shards may not answer)."""
    c.actor_env_steps = runner.actor_env_steps
    counters = {**dataclasses.asdict(c), "wall_s": wall}
    state = runner.learner_state()
    snapshot = None
    if replay and config.replay.storage == "memory":
        snapshot = replay_snapshot_dir(run.checkpoints_dir, state)
        runner.checkpoint_replay(str(snapshot))
    return save_checkpoint(run.checkpoints_dir, state, counters, replay=snapshot)
