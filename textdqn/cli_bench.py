"""`textdqn bench ...`: throughput benchmarks, each against its peers in the same run
(registered in cli.py as the `bench` sub-command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from textdqn.cli_common import Overrides, console, fail
from textdqn.errors import ConfigError, TextDQNError

bench_app = typer.Typer(help="Throughput benchmarks, each against its peers in the same run.")


def _report(table: Table, result: dict, json_path: Path | None) -> None:
    """Print a benchmark's table and, when asked, write its results as JSON."""
    from textdqn.bench.replay_bench import write_json

    console.print(table)
    if json_path:
        write_json(result, json_path)
        console.print(f"wrote {json_path}")


@bench_app.command("replay")
def bench_replay(
    quick: Annotated[bool, typer.Option(help="Smaller capacity and shorter timings.")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Skip the Ray-sharded service.")] = False,
) -> None:
    """Insert, sample and sample+update throughput: our shard vs RLlib vs cpprb vs our Ray service."""
    from textdqn.bench.replay_bench import QUICK, ReplayBenchSettings, run_replay_bench
    from textdqn.bench.tables import memory_table, replay_table

    settings = QUICK if quick else ReplayBenchSettings()
    console.print(
        f"replay benchmark: capacity {settings.capacity:,}, batch {settings.batch}, "
        f"prefill {settings.prefill:,}, {settings.seconds}s per measurement"
    )
    result = run_replay_bench(settings, with_ray=not no_ray, log=lambda m: console.print(m, style="dim"))
    console.print(memory_table(result))
    _report(replay_table(result), result, json_path)


@bench_app.command("train")
def bench_train(
    config: Annotated[
        str, typer.Argument(help="The config to train to its target.")
    ] = "configs/cartpole.yaml",
    impls: Annotated[
        str, typer.Option(help="What to time, comma-separated: serial, local (textdqn's modes), dqn, rllib.")
    ] = "serial,local,dqn,rllib",
    seeds: Annotated[
        str, typer.Option(help="Seeds, comma-separated; each implementation runs once per seed.")
    ] = "0,1,2",
    rllib_seeds: Annotated[
        str | None, typer.Option(help="Seeds for RLlib alone (its runs are the longest); default --seeds.")
    ] = None,
    rllib_budget: Annotated[float, typer.Option(help="Seconds of training each RLlib run gets.")] = 600.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
    overrides: Overrides = None,
) -> None:
    """Time to a config's target, each run a command of its own timed end to end: textdqn
    (serial and local mode) vs a single-process DQN (CleanRL's recipe) vs RLlib's DQN."""
    from textdqn.bench.tables import train_table
    from textdqn.bench.train_bench import run_train_bench

    try:
        result = run_train_bench(
            config,
            impls=[i.strip() for i in impls.split(",") if i.strip()],
            seeds=_counts(seeds, "--seeds", minimum=0),
            overrides=tuple(overrides or ()),
            rllib_budget_s=rllib_budget,
            rllib_seeds=None if rllib_seeds is None else _counts(rllib_seeds, "--rllib-seeds", minimum=0),
            log=lambda m: console.print(m, style="dim"),
        )
    except TextDQNError as e:
        fail(e)
    _report(train_table(result), result, json_path)


@bench_app.command("dqn-baseline")
def bench_dqn_baseline(
    config: Annotated[str, typer.Argument(help="The config whose env, evaluation and target to use.")],
    seed: Annotated[int, typer.Option(help="Seed of the env, exploration and network.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
    overrides: Overrides = None,
) -> None:
    """A single-process DQN to CleanRL's published recipe, trained to the config's target
    (bench train's peer; the config's network, actors, replay and learner are not used)."""
    import dataclasses

    from textdqn.bench.dqn_baseline import run_dqn_baseline
    from textdqn.bench.replay_bench import write_json
    from textdqn.config import load_config

    try:
        cfg = load_config(config, tuple(overrides or ()))
        result = run_dqn_baseline(cfg, seed, log=lambda m: console.print(m, style="dim"))
    except TextDQNError as e:
        fail(e)
    verdict = "reached the target" if result.reached_target else "did not reach the target"
    console.print(
        f"{verdict} after {result.env_steps:,} env steps, {result.updates:,} updates, {result.wall_s:.1f} s"
    )
    if json_path:
        write_json(dataclasses.asdict(result), json_path)


@bench_app.command("rllib-dqn")
def bench_rllib_dqn(
    config: Annotated[str, typer.Argument(help="The config whose env, evaluation and target to use.")],
    seed: Annotated[int, typer.Option(help="RLlib's seed.")] = 0,
    budget: Annotated[float, typer.Option(help="Seconds of training before giving up.")] = 600.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
    overrides: Overrides = None,
) -> None:
    """RLlib's DQN with its strongest published settings, trained to the config's target
    (bench train's peer)."""
    import dataclasses

    from textdqn.bench.replay_bench import write_json
    from textdqn.bench.rllib_dqn import run_rllib_dqn
    from textdqn.config import load_config

    try:
        cfg = load_config(config, tuple(overrides or ()))
        result = run_rllib_dqn(
            cfg, seed=seed, time_budget_s=budget, log=lambda m: console.print(m, style="dim")
        )
    except TextDQNError as e:
        fail(e)
    if json_path:
        write_json(dataclasses.asdict(result), json_path)


@bench_app.command("learner")
def bench_learner(
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    seconds: Annotated[float, typer.Option(help="Measuring time of each side.")] = 10.0,
    network: Annotated[
        str, typer.Option(help="mlp (batch 512) or transformer (dialogue-text's token Q-network, batch 64).")
    ] = "mlp",
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """Learner updates/s fed from an in-process replay vs through the Ray-sharded replay."""
    from textdqn.bench.learner_bench import learner_settings, run_learner_bench
    from textdqn.bench.tables import learner_table

    try:
        settings = learner_settings(network, seconds)
    except TextDQNError as e:
        fail(e)
    what = f"MLP {settings.hidden}" if network == "mlp" else f"transformer, {settings.tokens} tokens"
    console.print(f"learner benchmark: batch {settings.batch}, {what}, device {device}")
    result = run_learner_bench(settings, device, log=lambda m: console.print(m, style="dim"))
    _report(learner_table(result), result, json_path)


@bench_app.command("actor")
def bench_actor(
    config: Annotated[
        str, typer.Argument(help="The config whose actor to run.")
    ] = "configs/dialogue-text.yaml",
    seconds: Annotated[float, typer.Option(help="Measuring time of each setting.")] = 30.0,
    compare: Annotated[
        str,
        typer.Option(
            help="priorities: acted initial priorities vs a forward pass over every batch; kv-cache "
            "(network kind lm): KV-cached reads of each env's new token vs whole texts; bf16 (network kind "
            "lm): the acting Q-network and reference LM in bfloat16 vs float32."
        ),
    ] = "priorities",
    overrides: Overrides = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """One rollout actor's env steps/s under two settings, in one run: initial priorities from
    acting's Q-values vs a forward pass over every sent batch, KV-cached reads vs whole texts,
    or bfloat16 vs float32 LMs."""
    from textdqn.bench.actor_bench import run_actor_bench
    from textdqn.bench.tables import actor_table
    from textdqn.config import load_config

    try:
        cfg = load_config(config, tuple(overrides or ()))
        result = run_actor_bench(
            cfg, seconds=seconds, compare=compare, log=lambda m: console.print(m, style="dim")
        )
    except TextDQNError as e:
        fail(e)
    _report(actor_table(result), result, json_path)


@bench_app.command("encoder")
def bench_encoder(
    ff: Annotated[str, typer.Option(help="Feed-forward widths to compare, comma-separated.")] = "256,128",
    threads: Annotated[str, typer.Option(help="Torch threads to compare, comma-separated.")] = "1,2",
    tokens: Annotated[
        str, typer.Option(help="Observation lengths to compare, comma-separated (default: the config's).")
    ] = "",
    extras: Annotated[
        str,
        typer.Option(
            help="Extra rows at the last setting: bf16 (CPU autocast), compile, one-pass, single-q."
        ),
    ] = "",
    seconds: Annotated[float, typer.Option(help="Measuring time of each row.")] = 8.0,
    config: Annotated[
        str, typer.Option(help="The config whose token Q-network, learner batch and length to measure.")
    ] = "configs/dialogue-text.yaml",
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """A token Q-network's learner update (configs/dialogue-text.yaml's by default) under
    settings, in one run: feed-forward width, threads, observation length, bf16, torch.compile."""
    from textdqn.bench.encoder_bench import EncoderBenchSettings, run_encoder_bench, token_network
    from textdqn.bench.tables import encoder_table

    try:
        _, batch, length = token_network(config)
        tokens = tokens or str(length)
        settings = EncoderBenchSettings(
            config=config,
            batch=batch,
            # The first row is the reference: the widest, longest setting on the fewest threads.
            ff=_counts(ff, "--ff")[::-1],
            threads=_counts(threads, "--threads"),
            tokens=_counts(tokens, "--tokens", minimum=3)[::-1],
            extras=tuple(e for e in extras.split(",") if e),
            seconds=seconds,
        )
    except TextDQNError as e:
        fail(e)
    console.print(
        f"token Q-network learner benchmark ({config}): batch {settings.batch}, {seconds:g} s a row"
    )
    result = run_encoder_bench(settings, log=lambda m: console.print(m, style="dim"))
    _report(encoder_table(result), result, json_path)


@bench_app.command("lm-learner")
def bench_lm_learner(
    lm: Annotated[
        str, typer.Option(help="Local causal LM checkpoint (e.g. models/gpt2); default: the shipped one.")
    ] = "textdqn:envs/textgen/data/concepts-lm",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    batch: Annotated[int, typer.Option(help="Transitions per update.")] = 256,
    seconds: Annotated[float, typer.Option(help="Measuring time of each row.")] = 20.0,
    max_tokens: Annotated[int, typer.Option(help="Observation length (rows hold half to all of it).")] = 48,
    train_layers: Annotated[
        str, typer.Option(help="network.lm_train_layers to compare, comma-separated (0: the whole LM).")
    ] = "0",
    cpu_bf16: Annotated[
        bool, typer.Option(help="On CPU too, a bf16 autocast row (learner.cpu_bf16).")
    ] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
) -> None:
    """LM Q-network learner updates/s and tokens/s (TextGen-v0's shapes); fp32 and, on CUDA or
    with --cpu-bf16, bf16 autocast."""
    from textdqn.bench.lm_bench import LMBenchSettings, run_lm_bench
    from textdqn.bench.tables import lm_table

    try:
        layers = _counts(train_layers, "--train-layers", minimum=0)
    except TextDQNError as e:
        fail(e)
    settings = LMBenchSettings(
        lm=lm, batch=batch, seconds=seconds, max_tokens=max_tokens, train_layers=layers, cpu_bf16=cpu_bf16
    )
    console.print(f"LM learner benchmark: {lm}, batch {batch}, device {device}")
    try:
        result = run_lm_bench(settings, device, log=lambda m: console.print(m, style="dim"))
    except TextDQNError as e:
        fail(e)
    _report(lm_table(result), result, json_path)


def _counts(text: str, option: str, minimum: int = 1) -> tuple[int, ...]:
    """Comma-separated whole numbers >= minimum, sorted, each once; ConfigError otherwise."""
    try:
        counts = tuple(int(x) for x in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < minimum:
        kind = "positive whole numbers" if minimum == 1 else f"whole numbers >= {minimum}"
        raise ConfigError(f"{option} takes {kind} separated by commas (e.g. 1,2,4), got {text!r}")
    return tuple(sorted(set(counts)))


@bench_app.command("scaling")
def bench_scaling(
    config: Annotated[Path, typer.Argument(help="The config to scale, e.g. configs/cartpole.yaml.")],
    actors: Annotated[str, typer.Option(help="Rollout actor counts, comma-separated.")] = "1,2,4,8",
    shards: Annotated[str, typer.Option(help="Replay shard counts, comma-separated.")] = "1,2,4",
    seconds: Annotated[float, typer.Option(help="Measuring window of each cell, in seconds.")] = 20.0,
    warmup: Annotated[
        float, typer.Option(help="Seconds before the window (after replay fills and warm starts end).")
    ] = 10.0,
    address: Annotated[
        str | None, typer.Option(help="Measure on a running Ray cluster ('auto' inside one).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for scaling.csv and scaling.png.")] = None,
    no_learner: Annotated[
        bool, typer.Option("--no-learner", help="Actors and shards alone (no sampling, no limiter).")
    ] = False,
    project: Annotated[
        int, typer.Option(help="Also project throughput on up to this many CPU nodes (0: no projection).")
    ] = 0,
    node_cores: Annotated[int, typer.Option(help="Cores of each projected CPU node.")] = 16,
    node_gbps: Annotated[float, typer.Option(help="Network link of each projected node, Gbit/s.")] = 10.0,
    learner_updates_per_s: Annotated[
        float | None,
        typer.Option(help="Project with this learner rate (e.g. from bench learner --device cuda)."),
    ] = None,
    from_csv: Annotated[
        Path | None, typer.Option(help="Re-tabulate, re-plot and project an earlier scaling.csv.")
    ] = None,
    overrides: Overrides = None,
) -> None:
    """Steady-state throughput over actor and shard counts, each cell a fresh run of the real
    system; writes scaling.csv and scaling.png and prints the table (and a projection).

    Example: `textdqn bench scaling configs/cartpole.yaml --actors 1,2,4 --shards 1,2 --no-learner`."""
    from textdqn.bench import projection
    from textdqn.bench.scaling_bench import ScalingSettings, plot_scaling, read_csv, run_scaling, write_csv
    from textdqn.bench.tables import projection_table, scaling_table

    try:
        if project < 0:
            raise ConfigError(f"--project takes a number of nodes >= 1 (0: no projection), got {project}")
        if from_csv:
            rows, out_dir = read_csv(from_csv), out or from_csv.parent
        else:
            settings = ScalingSettings(
                config=str(config), actors=_counts(actors, "--actors"), shards=_counts(shards, "--shards"),
                seconds=seconds, warmup_s=warmup, with_learner=not no_learner, address=address,
                overrides=tuple(overrides or ()),
            )  # fmt: skip
            out_dir = out or Path("runs") / f"scaling-{config.stem}{'-no-learner' if no_learner else ''}"
            save = lambda rows: write_csv(rows, out_dir / "scaling.csv")  # noqa: E731  after every cell
            rows = run_scaling(settings, log=lambda m: console.print(m, style="dim"), on_row=save)
            console.print(f"wrote {out_dir / 'scaling.csv'}")
    except TextDQNError as e:
        fail(e)
    console.print(f"wrote {plot_scaling(rows, out_dir / 'scaling.png')}")
    console.print(scaling_table(rows))
    if project:
        try:
            costs = projection.unit_costs(rows, learner_updates_per_s)
        except TextDQNError as e:
            fail(e)
        shape = projection.NodeShape(cores=node_cores, gbps=node_gbps)
        projected = projection.project(costs, shape, project)
        console.print(projection_table(projected, node_cores, node_gbps, projection.saturation(projected)))


@bench_app.command("gpu")
def bench_gpu(
    device: Annotated[str, typer.Option(help="cuda on a GPU machine; cpu tests the wiring.")] = "cuda",
    quick: Annotated[bool, typer.Option(help="Seconds-long parts, for testing the wiring.")] = False,
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the figures.")] = Path(
        "gpu-bench.json"
    ),
) -> None:
    """The GPU figures in one run (under 10 minutes on one GPU, 16 cores): bench learner (MLP,
    transformer), bench lm-learner (fp32, bf16), and dialogue-text to its target with the
    learner on the GPU and 12 actors; writes them all to one JSON file."""
    from textdqn.bench.gpu_bench import run_gpu_bench
    from textdqn.bench.replay_bench import write_json
    from textdqn.bench.tables import learner_table, lm_table

    try:
        result = run_gpu_bench(device, quick=quick, log=lambda m: console.print(m, style="dim"))
    except TextDQNError as e:
        fail(e)
    for part in result["learner"].values():
        console.print(learner_table(part))
    console.print(lm_table(result["lm_learner"]))
    d = result["dialogue_text"]
    verdict = "reached" if d["reached_target"] else "did not reach"
    console.print(
        f"dialogue-text: {verdict} its target in {d['total_s']:.1f} s total ({d['env_steps']:,} env steps, "
        f"final eval {d['final_eval']})"
    )
    write_json(result, json_path)
    console.print(f"wrote {json_path}")
