"""The configuration of a textdqn run: frozen, typed, nested dataclasses.

Every field has a one-line doc under it. Load a YAML file with ``load_config(path,
overrides)``; ``--set section.key=value`` overrides are parsed and type-checked, and
``validate`` rejects unknown keys and bad values before anything starts (the generic
machinery lives in textdqn/typed_config.py). The network section and its LM checks live in
textdqn/network_config.py, the replay section in textdqn/replay_config.py; both are re-exported
here.
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from textdqn.errors import ConfigError  # noqa: F401  (re-exported for callers)
from textdqn.network_config import NetworkConfig, lm_mismatches
from textdqn.replay_config import RateLimiterConfig, ReplayConfig, redacted
from textdqn.typed_config import (
    Rule,
    above,
    apply_overrides,
    at_least,
    dump_config,
    from_dict,
    in_range,
    join,
    load,
    to_dict,
    validate,
)

__all__ = [
    "ActorConfig",
    "ClusterConfig",
    "Config",
    "EnvConfig",
    "EvalConfig",
    "LearnerConfig",
    "NetworkConfig",
    "RateLimiterConfig",
    "ReplayConfig",
    "RunConfig",
    "StopConfig",
    "apply_overrides",
    "dump_config",
    "from_dict",
    "load_config",
    "to_dict",
    "validate",
    "without_secrets",
]

# --- sections ---


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The environment every actor, and the evaluator, runs."""

    id: str = "CartPole-v1"
    """gymnasium id (textdqn envs live under the textdqn/ namespace)"""
    num_envs: int = 8
    """environments stepped together by each rollout actor (one batched inference a step)"""
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """keyword arguments passed to gymnasium.make"""
    max_episode_steps: int = 0
    """cap on episode length; 0 keeps the env's own"""

    _RULES: ClassVar[dict[str, Rule]] = {"num_envs": at_least(1), "max_episode_steps": at_least(0)}


_SCHEDULES = ("constant", "linear", "exponential")
BASELINE_AGENTS = ("random", "rule", "sample", "beam")
"""the agents eval.baseline and `textdqn eval --agent` accept (actors/evaluator.py plays them)"""


@dataclasses.dataclass(frozen=True)
class ActorConfig:
    """Rollout actors: Ape-X ε-greedy exploration, n-step transitions, weight syncing."""

    num_actors: int = 2
    """rollout actors (Ray actors in local and cluster mode, one loop in serial mode)"""
    epsilon: float = 0.4
    """Ape-X base ε: env slot i of N explores with ε^(1 + alpha·i/(N−1))"""
    epsilon_alpha: float = 7.0
    """Ape-X α spreading ε over env slots"""
    epsilon_schedule: str = "constant"
    """how each slot's ε changes with its env steps: constant, linear or exponential"""
    epsilon_final: float = 0.01
    """ε reached by the decaying schedules (times each slot's Ape-X factor)"""
    epsilon_decay_steps: int = 100_000
    """env steps per actor of the linear decay, or the half-life of the exponential one"""
    explore_temperature: float = 0.0
    """what an exploratory (ε) action is: 0 = uniformly random over the valid actions; τ > 0 =
    drawn from softmax(Q / τ) over them (Boltzmann exploration; with network.kind lm and τ =
    network.q_scale, at first the reference LM's own sampling)"""
    warm_start_steps: int = 0
    """env steps per actor acted by the env's warm_start_agent before ε-greedy takes over:
    TC-Bot's warm start of replay with a baseline's dialogues; 0 = off"""
    warm_start_agent: Literal["rule", "beam"] = "rule"
    """who acts during the warm start: "rule" (the env's rule agent, its rule_action(): the
    Dialogue-v0 rule agent, TextGen-v0's reference greedy) or "beam" (its beam_action():
    TextGen-v0's constrained beam search, demonstrations of the fluency objective's best texts)"""
    demo_envs: int = 0
    """env slots of each actor (its first, most exploring ones) that act with the
    warm_start_agent all along, as demonstrators whose transitions stay a steady share of
    replay (DQfD keeps its demonstrations for good; a warm start's are evicted once replay
    wraps); 0 = none"""
    n_step: int = 3
    """steps summed into one transition's reward"""
    n_step_cut: bool = False
    """end an n-step transition before an exploratory action (Watkins's Q(λ)), so that its
    return follows the greedy policy only; warm-start (rule) actions count as exploratory.
    False = Ape-X's uncorrected n-step returns"""
    gamma: float = 0.99
    """discount per env step"""
    send_batch_size: int = 256
    """transitions per insert request"""
    sync_every: int = 256
    """env steps (per actor, all its envs counted) between checks for newer weights"""
    steps_per_call: int = 512
    """env steps an actor runs per supervisor call (its unit of work and of reporting)"""
    num_cpus: float = 0.5
    """logical Ray CPUs reserved per actor"""
    max_env_errors: int = 20
    """env steps that may fail in a row (each followed by a reset of the actor's envs) before
    the run stops with the env's error"""
    max_restarts: int = 3
    """times a crashed rollout actor is replaced by a new one (which continues its env step
    count); past that it is dropped, and the run ends when none is left; -1: without limit"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "num_actors": at_least(1),
        "epsilon": in_range(0, 1),
        "epsilon_alpha": at_least(0, "a float"),
        "epsilon_final": in_range(0, 1),
        "epsilon_decay_steps": at_least(0),
        "explore_temperature": at_least(0, "a float"),
        "warm_start_steps": at_least(0),
        "demo_envs": at_least(0),
        "n_step": at_least(1),
        "gamma": in_range(0, 1),
        "send_batch_size": at_least(1),
        "sync_every": at_least(1),
        "steps_per_call": at_least(1),
        "num_cpus": above(0),
        "max_restarts": at_least(-1),
        "max_env_errors": at_least(0),
    }

    def _check(self, path: str) -> list[str]:
        if self.epsilon_schedule in _SCHEDULES:
            return []
        key = join(path, "epsilon_schedule")
        return [f"{key} = {self.epsilon_schedule!r} is not a schedule: expected one of {_SCHEDULES}"]

    @property
    def demonstrates(self) -> bool:
        """Whether any action is a demonstrator's (a warm start, or demonstrator env slots)."""
        return self.warm_start_steps > 0 or self.demo_envs > 0

    @property
    def warm_start_method(self) -> str:
        """The env method the warm start acts with (rule_action, beam_action)."""
        return f"{self.warm_start_agent}_action"


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The learner: double DQN with importance weights, target network, Adam."""

    batch_size: int = 512
    """transitions per update"""
    lr: float = 5e-4
    """Adam learning rate (at the start, when it is annealed)"""
    lr_final: float = 5e-5
    """learning rate reached after lr_anneal_updates (linearly), then kept"""
    lr_anneal_updates: int = 0
    """updates over which the learning rate goes from lr to lr_final; 0 keeps lr constant"""
    adam_eps: float = 1.5e-4
    """Adam epsilon"""
    grad_clip: float = 10.0
    """max global gradient norm; 0 turns clipping off"""
    loss: str = "huber"
    """TD loss: huber or mse"""
    double_q: bool = True
    """double DQN target (online argmax, target value); False uses the target's max"""
    target_update: str = "hard"
    """hard (copy every target_update_every updates) or soft (Polyak tau every update)"""
    target_update_every: int = 500
    """updates between hard target copies"""
    tau: float = 0.005
    """Polyak coefficient of soft target updates"""
    publish_every: int = 10
    """updates between weight publications to the actors (one version each)"""
    device: str = "auto"
    """cpu, cuda, or auto (cuda when available)"""
    bf16: bool = True
    """on CUDA, run the networks' forward passes under bfloat16 autocast (the loss stays float32);
    on CPU only with cpu_bf16"""
    cpu_bf16: bool = False
    """on CPU too, with bf16: pays for large LMs on CPUs with bfloat16 matrix units (SmolLM2:
    `textdqn bench lm-learner --cpu-bf16`), costs for small networks (bench encoder's bf16 row)"""
    torch_threads: int = 1
    """intra-op threads of the learner's torch (CPU)"""
    prefetch: int = 4
    """sampled batches the background thread keeps ready"""
    demo_margin: float = 0.0
    """DQfD's large-margin loss on demonstrations (actors.warm_start_steps, actors.demo_envs):
    max_a [Q(s, a) + margin·(a ≠ a_demo)] − Q(s, a_demo), so the greedy action of a
    demonstrated state is the demonstrator's by at least this margin; 0 = off (Hester et al.
    2018 use 0.8 with rewards clipped to ±1: set it on the scale of the Q-values' gaps)"""
    demo_loss_weight: float = 1.0
    """weight of the large-margin loss next to the TD loss (DQfD's λ2)"""
    demo_ce: float = 0.0
    """weight of a cross-entropy loss on demonstrations: −log softmax(Q(s, ·) / demo_ce_temperature)
    at the demonstrated action, so the demonstrator's choice becomes the likeliest under the
    Q-values' softmax (behaviour cloning next to the margin loss: it ranks every other action
    below it, not only the runner-up), over every action (replay keeps the next state's mask,
    not this one's); 0 = off"""
    demo_ce_temperature: float = 0.1
    """the softmax's temperature for demo_ce, on the Q-values' scale (network.q_scale for an LM
    Q-network: the LM's own cross-entropy on its logits)"""
    demo_priority_bonus: float = 0.0
    """added to the priority of demonstrations (DQfD's ε_d), so they keep being sampled once
    their TD errors are small"""
    max_bad_updates: int = 100
    """updates with a NaN/inf loss that are skipped before the run aborts"""
    max_restarts: int = 3
    """times a dead learner is restarted from the run's last checkpoint before the run ends"""
    num_cpus: float = 1.0
    """logical Ray CPUs reserved for the learner actor"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "batch_size": at_least(1),
        "lr": above(0),
        "lr_final": above(0),
        "lr_anneal_updates": at_least(0),
        "adam_eps": above(0),
        "grad_clip": at_least(0, "a float"),
        "target_update_every": at_least(1),
        "tau": in_range(0, 1),
        "publish_every": at_least(1),
        "torch_threads": at_least(1),
        "prefetch": at_least(1),
        "max_bad_updates": at_least(0),
        "max_restarts": at_least(0),
        "num_cpus": at_least(0, "a float"),
        "demo_margin": at_least(0, "a float"),
        "demo_loss_weight": at_least(0, "a float"),
        "demo_priority_bonus": at_least(0, "a float"),
        "demo_ce": at_least(0, "a float"),
        "demo_ce_temperature": above(0),
    }

    @property
    def uses_demos(self) -> bool:
        """Whether updates treat demonstrations apart (transitions then carry a demo flag)."""
        return self.demo_margin > 0 or self.demo_ce > 0 or self.demo_priority_bonus > 0

    def _check(self, path: str) -> list[str]:
        found = []
        if self.target_update == "soft" and self.tau <= 0:
            found.append(
                f"{join(path, 'tau')} = {self.tau} with {join(path, 'target_update')} = 'soft' never moves "
                "the target network: use tau in (0, 1] (e.g. 0.005), or target_update=hard"
            )
        if self.cpu_bf16 and not self.bf16:
            found.append(
                f"{join(path, 'cpu_bf16')} = true does nothing with {join(path, 'bf16')} = false: set bf16 "
                "true (bf16 autocast on CUDA, and with cpu_bf16 on CPU) or drop cpu_bf16"
            )
        for name, accepted in (
            ("loss", ("huber", "mse")),
            ("target_update", ("hard", "soft")),
            ("device", ("auto", "cpu", "cuda")),
        ):
            value = getattr(self, name)
            if value not in accepted:
                found.append(f"{join(path, name)} = {value!r} is not accepted: expected one of {accepted}")
        return found


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Periodic greedy evaluation (ε = 0) on separate env instances."""

    every_env_steps: int = 20_000
    """env steps between evaluations; 0 turns periodic evaluation off"""
    episodes: int = 20
    """episodes per evaluation"""
    num_envs: int = 10
    """environments stepped together by the evaluator"""
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """keyword arguments that replace env.kwargs for evaluation (e.g. split: test)"""
    baseline: str | tuple[str, ...] = ""
    """baseline agents (rule, random, sample, beam; one or a list) evaluated once at the start of the
    run on the same episodes, reported in summary.json next to the policy; empty: none"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "every_env_steps": at_least(0),
        "episodes": at_least(1),
        "num_envs": at_least(1),
    }

    @property
    def baselines(self) -> tuple[str, ...]:
        """The baseline agents, in order (none for "")."""
        if isinstance(self.baseline, str):
            return (self.baseline,) if self.baseline else ()
        return tuple(self.baseline)

    def _check(self, path: str) -> list[str]:
        wrong = [b for b in self.baselines if b not in BASELINE_AGENTS]
        if not wrong:
            return []
        key = join(path, "baseline")
        return [
            f"{key} = {self.baseline!r}: {wrong} are not baseline agents; use {', '.join(BASELINE_AGENTS)}, "
            "a list"
        ]


@dataclasses.dataclass(frozen=True)
class StopConfig:
    """When a run stops: the first criterion met ends it (0 or empty means unused; with
    none set, a run trains until interrupted)."""

    env_steps: int = 0
    """total env steps across actors"""
    updates: int = 0
    """learner updates"""
    time_s: float = 0.0
    """wall-clock seconds of training"""
    target_metric: str = ""
    """an evaluation metric, e.g. return_mean or success_rate"""
    target_value: float = 0.0
    """the run has reached its target when target_metric >= target_value"""
    target_max: dict[str, float] = dataclasses.field(default_factory=dict)
    """evaluation metrics that must also stay below these values for the target to count, e.g.
    {any_wrong_inform_mean: 0.01}: success with fewer than 1 % of dialogues told a wrong value"""
    target_min: dict[str, float] = dataclasses.field(default_factory=dict)
    """evaluation metrics that must also reach at least these values for the target to count,
    e.g. {eos_mean: 0.9}: 90 % of generated texts end before the length limit"""
    at_target: bool = True
    """stop at the first evaluation that meets the target; false runs the whole budget and
    judges the target by the final evaluation alone: where evaluations vary by more than the
    margin, the first of many above the target flatters the policy"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "env_steps": at_least(0),
        "updates": at_least(0),
        "time_s": at_least(0, "a float"),
    }


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """Where the components run on a Ray cluster (a machine's local Ray has none of these)."""

    learner_resource: str = "learner"
    """custom Ray resource of the learner's node type: when the cluster has it, the learner
    asks for a share of it (and for a GPU when there is one)"""
    replay_resource: str = "replay"
    """custom Ray resource of replay node types: when the cluster has it, shards ask for it"""
    spread_shards: bool = True
    """put shards on different nodes where there are several (Ray's SPREAD strategy)"""
    actors_elsewhere: bool = True
    """when the cluster has learner or replay nodes, place rollout actors on the other nodes
    with CPUs, round-robin (soft: where none has room, anywhere)"""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Identity of a run: its name, seed and output directory."""

    name: str = "textdqn"
    """name of the run, used in the run directory and in logs"""
    seed: int = 0
    """base random seed; each component derives its own from it"""
    run_dir: str = ""
    """where checkpoints and metrics go; empty means runs/<name>-<timestamp>"""
    checkpoint_every_updates: int = 5_000
    """learner updates between checkpoints (one is also written at the end)"""
    log_every_s: float = 2.0
    """seconds between metric rows (console, metrics.csv, TensorBoard)"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "seed": at_least(0),
        "checkpoint_every_updates": at_least(1),
        "log_every_s": above(0),
    }


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration of a textdqn run, one field per section."""

    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    """name, seed and output directory"""
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    """the environment"""
    actors: ActorConfig = dataclasses.field(default_factory=ActorConfig)
    """rollout actors"""
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    """the Q-network"""
    learner: LearnerConfig = dataclasses.field(default_factory=LearnerConfig)
    """the learner"""
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)
    """sharded prioritized replay service"""
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    """periodic greedy evaluation"""
    stop: StopConfig = dataclasses.field(default_factory=StopConfig)
    """stop criteria"""
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    """placement on a Ray cluster"""

    def _check(self, path: str) -> list[str]:
        # Across sections: an LM Q-network must start from the env's reference LM.
        return lm_mismatches(self.network, self.env.kwargs, self.eval.env_kwargs) + self._demo_mismatches()

    def _demo_mismatches(self) -> list[str]:
        a, found = self.actors, []
        if a.demo_envs >= self.env.num_envs:
            found.append(
                f"actors.demo_envs = {a.demo_envs} leaves none of env.num_envs = {self.env.num_envs} "
                "slots to the Q-network: use fewer demonstrator slots (e.g. 1) or more envs"
            )
        if self.learner.uses_demos and not a.demonstrates:
            found.append(
                "learner.demo_margin / demo_ce / demo_priority_bonus act on demonstrations, but nothing "
                "demonstrates: set actors.warm_start_steps or actors.demo_envs, or set them to 0"
            )
        return found


def without_secrets(cfg: Config) -> Config:
    """`cfg` as the run directory keeps it: a password in replay.redis_url becomes ***
    (a resumed run takes it from replay.redis_password_env, or from --set again)."""
    url = redacted(cfg.replay.redis_url)
    if url == cfg.replay.redis_url:
        return cfg
    return dataclasses.replace(cfg, replay=dataclasses.replace(cfg.replay, redis_url=url))


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read the YAML file at `path`, apply ``--set`` style `overrides`, build and validate."""
    return load(Config, path, overrides)
