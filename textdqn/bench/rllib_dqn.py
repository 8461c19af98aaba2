"""RLlib's DQN on CartPole-v1, timed to a greedy-evaluation target, for `textdqn bench train`.

The peer is RLlib's own tuned CartPole example on the new API stack, settings unchanged;
we only add RLlib's built-in evaluation (greedy, `explore=False`) so that both sides are
judged by the same rule: the mean return of `eval_episodes` greedy episodes >= `target`.

Call `run_rllib_dqn(...)`: it builds the algorithm (timed as `setup_s`), then loops
`algo.train()` until an evaluation reaches the target or `time_budget_s` has elapsed, and
returns a `PeerRunResult`. The budget is checked before each iteration, so a run can exceed
it by at most one iteration (1000 env steps, one gradient update per env step: 20-35 s on an
idle 2-core machine, far more when it is shared). A run that misses is reported as such,
never extrapolated.

Observed in ray 2.60: two evaluation rounds of an unchanged policy return identical episodes
(the evaluation env restarts from the same seeded starting states), and the reported
`episode_return_mean` is the mean over that round's episodes only, not smoothed across rounds.

`ray` and `ray.rllib` are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textdqn.errors import ConfigError

PEER_NAME = "rllib-dqn"
TUNED_EXAMPLE = "ray-project/ray: rllib/examples/algorithms/dqn/cartpole_dqn.py"
"""Where the DQN settings come from. The file is not shipped in the `ray` wheel (its
rllib/examples/algorithms/ holds no dqn/ folder), so the values were read from the repository.
Earlier revisions of the same file used PrioritizedEpisodeReplayBuffer (alpha 0.6, beta 0.4),
n_step=(2, 5), double_q and dueling, and epsilon reaching 0.02 at 10_000 (then 25_000) steps;
the newest revision, reproduced here, is plain DQN."""

DEFAULT_EVAL_EVERY_ITERS = 2
"""An RLlib DQN iteration samples at least `min_sample_timesteps_per_iteration` = 1000 env steps
(the algorithm's default, left as the example leaves it). Evaluating every 2 iterations places
the moment the target is reached within 2000 env steps, a few percent of what DQN needs on
CartPole, while a greedy evaluation of a good policy (20 episodes x ~500 steps, one forward
pass per step, no updates) costs a fraction of the two iterations between evaluations."""


@dataclass(frozen=True)
class PeerRunResult:
    """One timed training run of a peer to a greedy-evaluation target.

    wall_s counts from the first `train()` call (algorithm construction excluded, in
    setup_s) to the end of the iteration whose evaluation reached the target, or of the
    last iteration when the budget ran out. It includes the evaluation rounds.
    """

    name: str
    """the peer, "rllib-dqn" """
    reached_target: bool
    """whether a greedy evaluation's mean return reached the target within the budget"""
    wall_s: float
    """seconds from the start of training to the target (or to the end of the budget)"""
    setup_s: float
    """seconds spent starting Ray (if it was not running) and building the algorithm"""
    env_steps: int
    """env steps sampled for training when the target was reached (or the budget ran out)"""
    final_eval_return: float | None
    """the mean return of the last greedy evaluation; None if none ran"""
    evals: list[tuple[float, int, float]]
    """(wall_s, env_steps, eval_return_mean) for each evaluation, in order"""


def tuned_cartpole_config(seed: int = 0) -> Any:
    """RLlib's tuned CartPole DQN config (see `TUNED_EXAMPLE`), values as in the example.

    Returns a `ray.rllib.algorithms.dqn.DQNConfig` on the new API stack (RLlib's default
    for DQN), with `seed` added. Everything else (one local EnvRunner, one local learner,
    1000 env steps per iteration, target net every 500 steps) is DQNConfig's default, as in
    the example run with its default arguments.
    """
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        DQNConfig()
        .environment(env="CartPole-v1")
        .training(
            lr=0.0005,  # the example's 0.0005 * sqrt(num_learners or 1), one learner here
            train_batch_size_per_learner=32,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 50_000},
            n_step=1,
            double_q=False,
            dueling=False,
            epsilon=[(0, 1.0), (25_000, 0.02)],
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[256],
                head_fcnet_bias_initializer="zeros_",
            ),
        )
        .debugging(seed=seed)
    )


def _add_greedy_evaluation(config: Any, eval_episodes: int, eval_every_iters: int) -> Any:
    """RLlib's built-in evaluation: `eval_episodes` greedy episodes every `eval_every_iters`.

    evaluation_num_env_runners=0 runs evaluation in a local EnvRunner of the driver process,
    between training iterations: no extra Ray actor competing for the two cores.
    """
    return config.evaluation(
        evaluation_interval=eval_every_iters,
        evaluation_duration=eval_episodes,
        evaluation_duration_unit="episodes",
        evaluation_num_env_runners=0,
        evaluation_parallel_to_training=False,
        evaluation_config={"explore": False},
    )


def _check_args(target: float, eval_episodes: int, time_budget_s: float, eval_every_iters: int) -> None:
    if eval_episodes < 1:
        raise ConfigError(f"eval_episodes={eval_episodes}: need at least 1 greedy episode per evaluation")
    if time_budget_s <= 0:
        raise ConfigError(f"time_budget_s={time_budget_s}: the time budget must be > 0 seconds")
    if eval_every_iters < 1:
        raise ConfigError(f"eval_every_iters={eval_every_iters}: evaluate at least every 1 iteration")
    if target != target:  # NaN
        raise ConfigError("target=nan: give a finite episode-return target, e.g. 475.0")


def _eval_return(result: dict) -> float | None:
    """The greedy evaluation's mean return in an RLlib result dict, None if none ran."""
    value = result.get("evaluation", {}).get("env_runners", {}).get("episode_return_mean")
    if value is None or value != value:  # absent, or NaN when no episode finished
        return None
    return float(value)


def _train_until(
    algo: Any, target: float, time_budget_s: float, eval_every_iters: int, log: Callable[[str], None]
) -> tuple[bool, float, int, list[tuple[float, int, float]]]:
    """Call `algo.train()` until an evaluation reaches `target` or the budget is spent."""
    evals: list[tuple[float, int, float]] = []
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
        evaluated = iteration % eval_every_iters == 0
        eval_return = _eval_return(result) if evaluated else None
        if eval_return is not None:
            evals.append((wall, env_steps, eval_return))
            reached = eval_return >= target
            line += f"  greedy eval {eval_return:6.1f}" + ("  (target reached)" if reached else "")
        log(line)
    return reached, wall, env_steps, evals


def run_rllib_dqn(
    target: float = 475.0,
    eval_episodes: int = 20,
    time_budget_s: float = 600.0,
    eval_every_iters: int = DEFAULT_EVAL_EVERY_ITERS,
    seed: int = 0,
    num_cpus: int = 2,
    log: Callable[[str], None] = print,
) -> PeerRunResult:
    """Train RLlib's tuned CartPole DQN until greedy evaluation reaches `target`.

    target: mean episode return of a greedy evaluation that counts as solved.
    eval_episodes: greedy episodes per evaluation round.
    time_budget_s: no training iteration starts after this many seconds of training.
    eval_every_iters: evaluate every this many RLlib iterations (1000 env steps each).
    num_cpus: CPUs given to Ray if this function starts it; a running Ray is left running.
    log: receives one progress line per iteration.
    """
    _check_args(target, eval_episodes, time_budget_s, eval_every_iters)
    import ray

    t0 = time.perf_counter()
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    algo = None
    try:
        config = _add_greedy_evaluation(tuned_cartpole_config(seed), eval_episodes, eval_every_iters)
        algo = config.build_algo()
        setup_s = time.perf_counter() - t0
        log(f"[{PEER_NAME}] built in {setup_s:.1f} s ({TUNED_EXAMPLE}); target {target} greedy")
        reached, wall, env_steps, evals = _train_until(algo, target, time_budget_s, eval_every_iters, log)
    finally:
        if algo is not None:
            algo.stop()
        if started_ray:
            ray.shutdown()
    verdict = f"reached {target} in {wall:.1f} s" if reached else f"not reached in {time_budget_s:.0f} s"
    log(f"[{PEER_NAME}] {verdict}, {env_steps} env steps ({env_steps / max(wall, 1e-9):.0f} env steps/s)")
    return PeerRunResult(
        name=PEER_NAME,
        reached_target=reached,
        wall_s=wall,
        setup_s=setup_s,
        env_steps=env_steps,
        final_eval_return=evals[-1][2] if evals else None,
        evals=evals,
    )
