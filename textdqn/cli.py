"""The `textdqn` command line: the only place that parses argv."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from textdqn.errors import TextDQNError

app = typer.Typer(help="Distributed Ape-X DQN for language tasks, on Ray.", no_args_is_help=True)
bench_app = typer.Typer(help="Throughput benchmarks, each against its peers in the same run.")
replay_app = typer.Typer(help="Look into replay checkpoints.")
app.add_typer(bench_app, name="bench")
app.add_typer(replay_app, name="replay")
console = Console()


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


@bench_app.command("replay")
def bench_replay(
    quick: Annotated[bool, typer.Option(help="Smaller capacity and shorter timings.")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Skip the Ray-sharded service.")] = False,
) -> None:
    """Insert, sample and sample+update throughput: our shard vs RLlib vs cpprb vs our Ray service."""
    from textdqn.bench.replay_bench import QUICK, ReplayBenchSettings, run_replay_bench, write_json
    from textdqn.bench.tables import replay_table

    settings = QUICK if quick else ReplayBenchSettings()
    console.print(
        f"replay benchmark: capacity {settings.capacity:,}, batch {settings.batch}, "
        f"prefill {settings.prefill:,}, {settings.seconds}s per measurement"
    )
    result = run_replay_bench(settings, with_ray=not no_ray, log=lambda m: console.print(m, style="dim"))
    console.print(replay_table(result))
    if json_path:
        write_json(result, json_path)
        console.print(f"wrote {json_path}")


@replay_app.command("inspect")
def replay_inspect(directory: Path) -> None:
    """Print what a replay shard checkpoint holds (size, capacity, fields, priority mass)."""
    from textdqn.replay_server import checkpoint

    try:
        meta, arrays = checkpoint.read(directory)
    except TextDQNError as e:
        _fail(e)
    table = Table(title=f"replay checkpoint {directory}")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
