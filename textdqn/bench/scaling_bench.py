"""`textdqn bench scaling`: throughput of the real system over actor and shard counts.

Every (actors, shards) cell is a fresh run of the config in local mode (or on the cluster
at `address`), measured in its steady state by textdqn/cluster/scaling.py. Scaling
efficiency at k actors is rate(k) / ((k / k0) · rate(k0)) for the same shard count, k0 the
smallest actor count measured (1 by default), rate the env steps/s. Results go to
scaling.csv and scaling.png in the output directory; projection.py turns the rows into a
projection for N nodes.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from textdqn.config import load_config

_TEXT_COLUMNS = {"config"}
_BOOL_COLUMNS = {"learner"}
_INT_COLUMNS = {"actors", "shards", "nodes", "host_cores", "batch_size", "steps_per_call", "sync_every"}
_INT_COLUMNS |= {"publish_every", "actor_restarts", "weight_bytes", "item_bytes"}


@dataclasses.dataclass(frozen=True)
class ScalingSettings:
    """What `bench scaling` measures (see the CLI's help for each)."""

    config: str
    actors: tuple[int, ...] = (1, 2, 4, 8)
    shards: tuple[int, ...] = (1, 2, 4)
    seconds: float = 20.0
    warmup_s: float = 10.0
    with_learner: bool = True
    address: str | None = None
    overrides: tuple[str, ...] = ()


def cell_overrides(settings: ScalingSettings, actors: int, shards: int) -> list[str]:
    """Config overrides of one cell; without a learner nothing samples, so the
    samples-per-insert limiter is off (it would block the inserts otherwise)."""
    overrides = [*settings.overrides, f"actors.num_actors={actors}", f"replay.num_shards={shards}"]
    if not settings.with_learner:
        overrides.append("replay.rate_limiter.samples_per_insert=0")
    return overrides


def run_scaling(
    settings: ScalingSettings,
    log: Callable[[str], None] = print,
    on_row: Callable[[list[dict]], None] = lambda rows: None,
) -> list[dict]:
    """Measure every cell, each from a fresh start; returns one row per cell with efficiencies.
    `on_row` gets the rows so far after each cell (the CLI writes the CSV), so a cell that
    fails loses only itself."""
    from textdqn.cluster.scaling import measure_cell

    configs = {
        (k, s): load_config(settings.config, cell_overrides(settings, k, s))  # all validated first
        for s in settings.shards
        for k in settings.actors
    }
    rows = []
    for (k, s), config in configs.items():
        log(f"{config.run.name}: {k} actor(s), {s} shard(s){'' if settings.with_learner else ', no learner'}")
        figures = measure_cell(
            config, settings.seconds, settings.warmup_s, settings.address, settings.with_learner, log
        )
        rows.append(
            {
                "config": config.run.name,
                "learner": settings.with_learner,
                "actors": k,
                "shards": s,
                "host_cores": os.cpu_count() or 1,
                "batch_size": config.learner.batch_size,
                "samples_per_insert": config.replay.rate_limiter.samples_per_insert,
                "steps_per_call": config.actors.steps_per_call,
                "sync_every": config.actors.sync_every,
                "publish_every": config.learner.publish_every,
                **figures,
            }
        )
        log(f"  {figures['env_steps_per_s']:,.0f} env steps/s")
        on_row(with_efficiency(rows))
    return with_efficiency(rows)


def with_efficiency(rows: list[dict]) -> list[dict]:
    """Rows with `efficiency`: rate(k) / ((k / k0) · rate(k0)), per shard count."""
    out = []
    for row in rows:
        same = [r for r in rows if r["shards"] == row["shards"] and r["learner"] == row["learner"]]
        base = min(same, key=lambda r: r["actors"])
        rate0 = base["env_steps_per_s"]
        ideal = rate0 * row["actors"] / base["actors"]
        out.append({**row, "efficiency": row["env_steps_per_s"] / ideal if ideal > 0 else None})
    return out


def write_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict]:
    """Rows written by write_csv, numbers as numbers and empty cells as None."""

    def value(key: str, text: str):
        if key in _TEXT_COLUMNS:
            return text
        if key in _BOOL_COLUMNS:
            return text == "True"
        if text == "":
            return None
        number = float(text)
        return int(number) if number.is_integer() and key in _INT_COLUMNS else number

    with Path(path).open(newline="") as f:
        return [{k: value(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_scaling(rows: list[dict], out_png: Path) -> Path:
    """Left: env steps/s against actors, one line per shard count, each with its ideal
    linear line (dotted). Right: learner utilization (or, without a learner, the CPU cores
    the actors used) against actors."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    rate_ax, right_ax = fig.subplots(1, 2)
    learner = any(r["learner"] for r in rows)
    for i, shards in enumerate(sorted({r["shards"] for r in rows})):
        line = sorted((r for r in rows if r["shards"] == shards), key=lambda r: r["actors"])
        ks = [r["actors"] for r in line]
        color = f"C{i}"
        rate_ax.plot(ks, [r["env_steps_per_s"] for r in line], "o-", color=color, label=f"{shards} shard(s)")
        rate_ax.plot(ks, [line[0]["env_steps_per_s"] * k / ks[0] for k in ks], ":", color=color)
        if learner:
            right_ax.plot(ks, [100 * (r["learner_utilization"] or 0) for r in line], "o-", color=color)
        else:
            right_ax.plot(ks, [r["cpu_actors"] for r in line], "o-", color=color)
    rate_ax.plot([], [], ":", color="grey", label="ideal linear")
    cores = rows[0]["host_cores"]
    for ax in (rate_ax, right_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            sorted({r["actors"] for r in rows}), labels=sorted({str(r["actors"]) for r in rows}, key=int)
        )
        ax.axvline(cores, color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel(f"rollout actors (dashed: {cores} cores)")
        ax.grid(alpha=0.3)
    rate_ax.set_yscale("log")  # log-log: the ideal linear line is straight
    rate_ax.set_ylabel("env steps/s (steady state)")
    rate_ax.legend(loc="best")
    if learner:
        right_ax.set_ylabel("learner utilization (%)")
        right_ax.set_ylim(0, 105)
    else:
        right_ax.set_ylabel("CPU cores used by the actors")
    mode = "" if learner else ", no learner"
    fig.suptitle(f"bench scaling: {rows[0]['config']}{mode}")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    return out_png
