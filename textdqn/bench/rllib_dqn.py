"""RLlib's DQN on a textdqn config's env, timed to the config's target, for `textdqn bench train`.

The peer is RLlib's DQN (new API stack) with the strongest settings RLlib has published for
it: the revision of its tuned CartPole example that used a prioritized episode replay,
dueling and double Q, n-step returns drawn from 2 to 5, lr 5e-4, batch 32, ε from 1 to 0.02
over 25,000 env steps and 256-unit tanh layers (`STRONG_EXAMPLE`). The newest revision of
that file is plain DQN, which learned CartPole far more slowly here (42 env steps/s, not at
the target in 600 s). The settings are used for every env: RLlib publishes no DQN settings
for a dialogue task.

The env is the config's own (`env.id`, `env.kwargs`), registered with RLlib, so both sides
train on the same task. RLlib's DQN has no action masks: where the env reports them
(Dialogue-v0), RLlib's agent may choose acts the mask would rule out, and the env answers
them as it answers any act. Judging uses RLlib's built-in greedy evaluation (`explore=False`)
with the config's `eval.episodes`, `eval.env_kwargs` and `eval.every_env_steps` (rounded to
RLlib's 1000-step iterations), and the config's `stop` target; the episode-end numbers of the
env's info (success, any_wrong_inform, ...) are averaged over each evaluation's episodes by a
callback, under textdqn's names (success_rate, <key>_mean), and return_mean is RLlib's
episode_return_mean.

Call `run_rllib_dqn(config, ...)`: it builds the algorithm (timed as `setup_s`), then loops
`algo.train()` until an evaluation meets the target or `time_budget_s` has elapsed, and
returns a `PeerRunResult`. The budget is checked before each iteration, so a run can exceed
it by one iteration. A run that misses is reported as such, never extrapolated.

Observed in ray 2.60: two evaluation rounds of an unchanged policy return identical episodes
(the evaluation env restarts from the same seeded starting states), and the reported
`episode_return_mean` is the mean over that round's episodes only, not smoothed across rounds.

`ray` and `ray.rllib` are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable
from typing import Any

from textdqn.bench.train_bench import PeerRunResult, check_judgeable
from textdqn.config import Config
from textdqn.errors import ConfigError

PEER_NAME = "rllib-dqn"
STRONG_EXAMPLE = "ray-project/ray: rllib/tuned_examples/dqn/cartpole_dqn.py (its prioritized-replay revision)"
ENV_NAME = "textdqn-bench-env"
ITERATION_ENV_STEPS = 1000
"""An RLlib DQN iteration samples at least `min_sample_timesteps_per_iteration` = 1000 env
steps (the algorithm's default)."""


def strong_config(config: Config, seed: int = 0) -> Any:
    """RLlib's DQN with the settings of `STRONG_EXAMPLE` on the config's env.

    Returns a `ray.rllib.algorithms.dqn.DQNConfig` on the new API stack with `seed` added.
    Everything else (one local EnvRunner, one local learner, 1000 env steps per iteration,
    target net every 500 steps) is DQNConfig's default, as in the example.
    """
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    from textdqn.envs import make_env

    base = config.env
    register_env(ENV_NAME, lambda kw: make_env(dataclasses.replace(base, kwargs={**base.kwargs, **kw})))
    return (
        DQNConfig()
        .environment(env=ENV_NAME, env_config={})
        .training(
            lr=0.0005,  # the example's 0.0005 * sqrt(num_learners or 1), one learner here
            train_batch_size_per_learner=32,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 50_000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            dueling=True,
            epsilon=[(0, 1.0), (25_000, 0.02)],
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[256],
                head_fcnet_activation="tanh",
                head_fcnet_bias_initializer="zeros_",
            ),
        )
        .callbacks(on_episode_end=_log_episode_end)
        .debugging(seed=seed)
    )


def _log_episode_end(*, episode, metrics_logger=None, **kwargs) -> None:
    """Log the numbers of the episode's last info (success, turns, ...) for this round's means."""
    if metrics_logger is None:
        return
    for key, value in episode.get_infos(-1).items():
        if isinstance(value, (numbers.Real, bool)) and key != "action_mask" and not key.startswith("_"):
            metrics_logger.log_value(f"info_{key}", float(value), reduce="mean", clear_on_reduce=True)


def _add_greedy_evaluation(config: Any, textdqn_config: Config, eval_every_iters: int) -> Any:
    """RLlib's built-in evaluation: the config's greedy episodes every `eval_every_iters`.

    evaluation_num_env_runners=0 runs evaluation in a local EnvRunner of the driver process,
    between training iterations: no extra Ray actor competing for the two cores.
    """
    return config.evaluation(
        evaluation_interval=eval_every_iters,
        evaluation_duration=textdqn_config.eval.episodes,
        evaluation_duration_unit="episodes",
        evaluation_num_env_runners=0,
        evaluation_parallel_to_training=False,
        evaluation_config={"explore": False, "env_config": dict(textdqn_config.eval.env_kwargs)},
    )


def _check_args(config: Config, time_budget_s: float, eval_every_iters: int) -> None:
    check_judgeable(config, "the RLlib peer")
    if time_budget_s <= 0:
        raise ConfigError(f"time_budget_s={time_budget_s}: the time budget must be > 0 seconds")
    if eval_every_iters < 1:
        raise ConfigError(f"eval_every_iters={eval_every_iters}: evaluate at least every 1 iteration")


def eval_metrics(result: dict) -> dict[str, float] | None:
    """The greedy evaluation's metrics in an RLlib result dict under textdqn's names
    (return_mean, success_rate, <info key>_mean), None if no evaluation episode finished."""
    runners = result.get("evaluation", {}).get("env_runners", {})
    value = runners.get("episode_return_mean")
    if value is None or value != value:  # absent, or NaN when no episode finished
        return None
    out = {"return_mean": float(value)}
    for key, v in runners.items():
        if key.startswith("info_") and v == v:
            name = key[len("info_") :]
            out["success_rate" if name == "success" else f"{name}_mean"] = float(v)
    return out


def _train_until(
    algo: Any, config: Config, time_budget_s: float, eval_every_iters: int, log: Callable[[str], None]
) -> tuple[bool, float, int, dict[str, float], list[tuple[float, int, float]]]:
    """Call `algo.train()` until an evaluation meets the config's target or the budget is spent."""
    from textdqn.stopping import target_reached

    metric = config.stop.target_metric
    evals: list[tuple[float, int, float]] = []
    final: dict[str, float] = {}
    reached, env_steps, wall = False, 0, 0.0
    start = time.perf_counter()
    while not reached and time.perf_counter() - start < time_budget_s:
        result = algo.train()
        wall = time.perf_counter() - start
        env_steps = int(result["num_env_steps_sampled_lifetime"])
        iteration = result["training_iteration"]
        line = f"[{PEER_NAME}] iter {iteration:4d}  {wall:7.1f} s  {env_steps:8d} env steps"
        train_return = result.get("env_runners", {}).get("episode_return_mean")
        if train_return is not None:
            line += f"  train return {float(train_return):6.1f}"
        # A result carries the last evaluation forward on iterations that did not evaluate.
        metrics = eval_metrics(result) if iteration % eval_every_iters == 0 else None
        if metrics is not None:
            final = metrics
            reached = target_reached(config.stop, metrics)
            evals.append((wall, env_steps, metrics[metric]))
            line += f"  greedy eval {metric} {metrics[metric]:.3f}" + (
                "  (target reached)" if reached else ""
            )
        log(line)
    return reached, wall, env_steps, final, evals


def run_rllib_dqn(
    config: Config,
    seed: int = 0,
    time_budget_s: float = 600.0,
    eval_every_iters: int | None = None,
    num_cpus: int = 2,
    log: Callable[[str], None] = print,
) -> PeerRunResult:
    """Train RLlib's DQN (`strong_config`) on the config's env until its greedy evaluation
    meets the config's target.

    time_budget_s: no training iteration starts after this many seconds of training.
    eval_every_iters: evaluate every this many RLlib iterations (1000 env steps each);
        default: config.eval.every_env_steps in iterations.
    num_cpus: CPUs given to Ray if this function starts it; a running Ray is left running.
    log: receives one progress line per iteration.
    """
    if eval_every_iters is None:
        eval_every_iters = max(1, round(config.eval.every_env_steps / ITERATION_ENV_STEPS))
    _check_args(config, time_budget_s, eval_every_iters)
    import ray

    t0 = time.perf_counter()
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    algo = None
    try:
        rllib_config = _add_greedy_evaluation(strong_config(config, seed), config, eval_every_iters)
        algo = rllib_config.build_algo()
        setup_s = time.perf_counter() - t0
        target = f"{config.stop.target_metric} >= {config.stop.target_value}"
        log(f"[{PEER_NAME}] built in {setup_s:.1f} s ({STRONG_EXAMPLE}); target {target} greedy")
        reached, wall, env_steps, final, evals = _train_until(
            algo, config, time_budget_s, eval_every_iters, log
        )
    finally:
        if algo is not None:
            algo.stop()
        if started_ray:
            ray.shutdown()
    verdict = "reached the target" if reached else f"did not reach the target in {time_budget_s:.0f} s"
    rate = env_steps / max(wall, 1e-9)
    log(f"[{PEER_NAME}] {verdict} in {wall:.1f} s, {env_steps} env steps ({rate:.0f} env steps/s)")
    return PeerRunResult(
        name=PEER_NAME,
        reached_target=reached,
        wall_s=wall,
        setup_s=setup_s,
        env_steps=env_steps,
        final_eval=final,
        evals=evals,
    )
