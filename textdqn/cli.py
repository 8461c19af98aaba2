"""The `textdqn` command line: the only place that parses argv."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textdqn.cli_bench import bench_app
from textdqn.cli_common import Overrides, console, fail
from textdqn.cli_lm import lm_app
from textdqn.errors import ConfigError, TextDQNError

app = typer.Typer(help="Distributed Ape-X DQN for language tasks, on Ray.", no_args_is_help=True)
replay_app = typer.Typer(help="Look into replay checkpoints.")
domain_app = typer.Typer(help="Check and describe dialogue domain files (textdqn/Dialogue-v0).")
app.add_typer(bench_app, name="bench")
app.add_typer(replay_app, name="replay")
app.add_typer(domain_app, name="domain")
app.add_typer(lm_app, name="lm")


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config, e.g. configs/cartpole.yaml (not with --resume)")
    ] = None,
    overrides: Overrides = None,
    serial: Annotated[bool, typer.Option("--serial", help="Run every component in this process.")] = False,
    address: Annotated[
        str | None,
        typer.Option(help="Join a running Ray cluster ('auto' inside one) instead of starting Ray."),
    ] = None,
    run_dir: Annotated[str, typer.Option(help="Run directory (default runs/<name>-<time>).")] = "",
    resume: Annotated[
        str, typer.Option(help="Continue the run in this directory from its last checkpoint.")
    ] = "",
    quiet: Annotated[bool, typer.Option(help="Plain log lines instead of the live view.")] = False,
    profile: Annotated[
        Path | None,
        typer.Option(help="Profile this process (cProfile; in serial mode every component) into this file."),
    ] = None,
) -> None:
    """Train an Ape-X DQN agent until the config's stop criterion is met.

    Exit codes: 0 when the run ended at a stop criterion, 2 on bad input or a fault that
    ended it (with one line saying what and what to do), 130 when interrupted (Ctrl-C,
    SIGTERM) after its final checkpoint and summary."""
    from textdqn.cluster.supervisor import train as run_training

    profiler = _start_profile() if profile else None
    try:
        cfg = _train_config(config, resume, overrides or [])
        summary = run_training(
            cfg,
            mode="serial" if serial else "ray",
            address=address,
            run_dir=run_dir,
            resume=resume,
            live=not quiet,
            overrides=overrides or (),
        )
    except TextDQNError as e:
        fail(e)
    except KeyboardInterrupt:  # before training started (e.g. during Ray's start-up)
        console.print("[bold red]interrupted[/] before training started; nothing was written")
        raise typer.Exit(code=130) from None
    finally:
        if profiler is not None and profile is not None:
            _write_profile(profiler, profile)
    reached = "reached" if summary["reached_target"] else "did not reach"
    console.print(
        f"{reached} the target {summary['target'] or '(none set)'} after {summary['env_steps']:,} env steps, "
        f"{summary['updates']:,} updates, {summary['wall_s']:.1f}s; final eval {summary['final_eval']}"
    )
    if summary["interrupted"]:
        raise typer.Exit(code=130)


def _start_profile():
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _write_profile(profiler, path: Path) -> None:
    """Save the profile (read it with `python -m pstats PATH` or snakeviz) and print the
    functions that took the most time, callees included."""
    import io
    import pstats

    profiler.disable()
    profiler.dump_stats(path)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    console.print(text.getvalue(), markup=False, highlight=False)
    console.print(f"wrote the profile to {path}")


def _train_config(config: Path | None, resume: str, overrides: list[str]):
    """The config to train: CONFIG with overrides, or on --resume the run's own config.yaml
    with overrides (a CONFIG given too must say the same, or it is refused)."""
    from textdqn import typed_config
    from textdqn.config import load_config, to_dict, without_secrets
    from textdqn.envs.run_files import copy_run_files
    from textdqn.metrics import RunDirectory

    if not resume:
        if config is None:
            raise ConfigError("give a config file (textdqn train configs/cartpole.yaml) or --resume RUN_DIR")
        return load_config(config, overrides)
    run = RunDirectory.open(resume)
    cfg = run.load_config(overrides)
    if config is not None:
        # The run reads its own copies of the env's files: compare what config.yaml says.
        given = load_config(config, overrides)
        given = typed_config.flatten(to_dict(without_secrets(copy_run_files(given, run.path, write=False))))
        saved = typed_config.flatten(to_dict(load_config(run.config_path, overrides)))
        differ = sorted(k for k in given.keys() | saved.keys() if given.get(k) != saved.get(k))
        if differ:
            raise ConfigError(
                f"--resume continues {resume} with its own config.yaml, but {config} differs from it "
                f"in {', '.join(differ[:8])}{' ...' if len(differ) > 8 else ''}: drop {config} from the "
                "command, and pass --set KEY=VALUE for what you mean to change"
            )
    return cfg


@app.command("eval")
def evaluate(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A run directory written by `textdqn train` (its last checkpoint).")
    ] = None,
    episodes: Annotated[int, typer.Option(help="Episodes to run.")] = 20,
    agent: Annotated[
        str, typer.Option(help="greedy (the run's policy), or a baseline: rule | random | sample | beam.")
    ] = "greedy",
    env: Annotated[str | None, typer.Option(help="Env id for a baseline without a run directory.")] = None,
    show: Annotated[
        int, typer.Option(help="Print this many episodes as text (language envs) instead of metrics.")
    ] = 0,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the evaluation episodes (goals, noise, sampling); by default the one a run's "
            "evaluations use. Another draws other episodes: how much does a figure owe to its draw?"
        ),
    ] = None,
    checkpoint: Annotated[
        bool,
        typer.Option(
            "--checkpoint",
            help="Evaluate the learner's last checkpoint instead of the policy the run's final "
            "evaluation measured (policy.pt, the network summary.json reports).",
        ),
    ] = False,
    overrides: Overrides = None,
) -> None:
    """Evaluate a run's greedy policy, or a baseline agent, and print its metrics.

    A run's greedy policy is the network its final evaluation measured (RUN_DIR/policy.pt): with
    the same settings this reproduces summary.json's final_eval. The learner trains on while an
    evaluation runs, so its last checkpoint (--checkpoint) is a slightly later network.

    Examples: `textdqn eval runs/dialogue-...`;
    `textdqn eval --agent rule --env textdqn/Dialogue-v0 --set env.kwargs.split=test --episodes 500`;
    `textdqn eval runs/dialogue-... --show 3` prints three evaluation dialogues as transcripts;
    `--episodes 2000 --seed 1` measures the policy on other episodes than its run did.
    """
    from textdqn.actors.evaluator import Evaluator, baseline_policy
    from textdqn.config import BASELINE_AGENTS

    try:
        cfg, weights, title = _eval_setup(run_dir, agent, env, overrides or [], checkpoint)
        evaluator = Evaluator(cfg) if seed is None else Evaluator(cfg, seed)
        if agent != "greedy" and agent not in BASELINE_AGENTS:
            raise ConfigError(f"--agent {agent!r} is not known: use greedy, {' or '.join(BASELINE_AGENTS)}")
        if show:
            _print_episodes(title, evaluator.show(agent, show, weights))
            return
        if weights is not None:
            result = evaluator.evaluate(weights, episodes)
        else:
            result = evaluator.run(baseline_policy(agent, evaluator.envs, cfg.run.seed), episodes)
    except TextDQNError as e:
        fail(e)
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)


def _print_episodes(title: str, episodes: list) -> None:
    console.rule(title)
    for i, episode in enumerate(episodes, 1):
        outcome = ", ".join(f"{k} {v:g}" for k, v in episode.outcome.items())
        console.print(f"[bold]episode {i}[/bold]", highlight=False)
        console.print(episode.text, markup=False, highlight=False, soft_wrap=True)
        console.print(f"outcome: {outcome}\n", highlight=False, soft_wrap=True)


def _eval_setup(run_dir: Path | None, agent: str, env: str | None, overrides: list[str], checkpoint: bool):
    """(config, the greedy policy's weights or None, table title) for `textdqn eval`: the weights
    policy.pt holds (those the final evaluation measured) or those of the last learner
    checkpoint's online network, as numpy arrays by state-dict key (networks.state_to_numpy)."""
    from textdqn import typed_config
    from textdqn.config import Config
    from textdqn.learner.checkpoint import load_checkpoint, load_policy
    from textdqn.metrics import RunDirectory
    from textdqn.networks import tensors_to_numpy

    if run_dir is None:
        if agent == "greedy" or env is None:
            raise ConfigError(
                "give a run directory to evaluate its policy, or --agent rule|random|sample|beam with "
                "--env ID to evaluate a baseline"
            )
        data = typed_config.apply_overrides({"env": {"id": env}}, overrides)
        cfg = typed_config.validate(typed_config.from_dict(Config, data))
        return cfg, None, f"{agent} agent on {env} {dict(cfg.env.kwargs) or ''}"
    run = RunDirectory.open(run_dir)
    cfg = run.load_config()
    if overrides:
        data = typed_config.apply_overrides(typed_config.to_dict(cfg), overrides)
        cfg = typed_config.validate(typed_config.from_dict(Config, data))
    if agent != "greedy":
        return cfg, None, f"{agent} agent on the evaluation env of {run_dir}"
    if run.policy_path.is_file() and not checkpoint:
        weights, info = load_policy(run.policy_path)
        version = info.get("evaluation", {}).get("weight_version", "?")
        title = f"greedy evaluation of {run_dir} (the policy its final evaluation measured, v{version})"
        return cfg, weights, title
    state, counters = load_checkpoint(run.checkpoints_dir)
    weights = tensors_to_numpy(state["online"])
    return cfg, weights, f"greedy evaluation of {run_dir} ({counters.get('env_steps', 0):,} env steps)"


@replay_app.command("inspect")
def replay_inspect(
    source: Annotated[
        str,
        typer.Argument(help="A shard checkpoint directory, or a Redis URL (redis://, rediss://, unix://)."),
    ],
    run: Annotated[
        str | None, typer.Option("--run", help="With a Redis URL: only this run's shards.")
    ] = None,
    password_env: Annotated[
        str,
        typer.Option(help="With a Redis URL: environment variable holding the password (if not in the URL)."),
    ] = "",
) -> None:
    """Print what a replay shard checkpoint, or every shard stored in a Redis, holds."""
    if source.startswith(("redis://", "rediss://", "unix://")):
        _inspect_redis(source, run, password_env)
        return
    from textdqn.replay_server import checkpoint

    try:
        meta, arrays = checkpoint.read(source)
    except TextDQNError as e:
        fail(e)
    table = Table(title=f"replay checkpoint {source}")
    table.add_column("key")
    table.add_column("value")
    size = min(meta["next_key"], meta["capacity"])
    for key, value in [
        ("size / capacity", f"{size:,} / {meta['capacity']:,}"),
        ("inserts", f"{meta['next_key']:,}"),
        ("samples", f"{meta['samples']:,}"),
        ("priority updates (stale)", f"{meta['updates']:,} ({meta['stale_updates']:,})"),
        ("alpha", str(meta["alpha"])),
        ("total priority", f"{float(arrays['leaves'].sum()):.6g}"),
    ]:
        table.add_row(key, value)
    for name, (dtype, shape) in (meta["schema"] or {}).items():
        table.add_row(f"field {name}", f"{dtype} {tuple(shape)}")
    console.print(table)


def _inspect_redis(url: str, run: str | None, password_env: str) -> None:
    """`replay inspect URL`: one row per shard stored under textdqn:{*} (the password never shown)."""

    from textdqn.replay_server.redis_tier import inspect_shards, redact_url

    if password_env and password_env not in os.environ:
        fail(ConfigError(f"--password-env names {password_env!r}, which is not set: export it first"))
    try:
        shards = inspect_shards(url, os.environ.get(password_env, "") if password_env else "", run)
    except TextDQNError as e:
        fail(e)
    if not shards:
        console.print(f"no textdqn replay shards in {redact_url(url)}" + (f" for run {run!r}" if run else ""))
    for shard in shards:
        table = Table(title=f"replay shard {shard['index']} of run {shard['run_id']} in {redact_url(url)}")
        table.add_column("key")
        table.add_column("value")
        leaves = shard["leaves"]
        for key, value in [
            ("size / capacity", f"{shard['size']:,} / {shard['capacity']:,}"),
            ("inserts", f"{shard['inserts']:,}"),
            ("samples", f"{shard['samples']:,}"),
            ("priority updates", f"{shard['priority_updates']:,}"),
            ("alpha", str(shard["alpha"])),
            ("total priority", f"{leaves['total']:.6g}"),
            (
                "priority min / mean / max",
                f"{leaves['min']:.4g} / {leaves['mean']:.4g} / {leaves['max']:.4g}",
            ),
        ]:
            table.add_row(key, value)
        for name, (dtype, shape) in shard["schema"].items():
            table.add_row(f"field {name}", f"{dtype} {tuple(shape)}")
        console.print(table)


DomainFile = Annotated[str, typer.Argument(help="A domain YAML file, or a shipped domain's name (movies).")]


@domain_app.command("check")
def domain_check(file: DomainFile) -> None:
    """Check a dialogue domain file: one line when it is fine, else every problem (exit code 2)."""
    from textdqn.envs.dialogue.domain_report import check_summary

    try:
        console.print(check_summary(file), markup=False, highlight=False, soft_wrap=True)
    except TextDQNError as e:
        fail(e)


@domain_app.command("show")
def domain_show(
    file: DomainFile, seed: Annotated[int, typer.Option(help="Knowledge-base and goal seed (kb_seed).")] = 0
) -> None:
    """Print a domain's act space, observation size, knowledge base, goal statistics and two goals."""
    from textdqn.envs.dialogue.domain_report import show_domain

    try:
        tables = show_domain(file, seed)
    except TextDQNError as e:
        fail(e)
    for table in tables:
        console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
