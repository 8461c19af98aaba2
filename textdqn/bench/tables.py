"""Rich tables for benchmark results (figures in, table out; no measuring here)."""

from __future__ import annotations

from rich.table import Table

_OPS = ("insert", "sample", "sample+update")


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}K"
    return f"{x:.0f}"


def replay_table(result: dict) -> Table:
    """One row per (implementation, observation kind); transitions/s per operation."""
    table = Table(title=f"replay throughput (transitions/s, batch {result['settings']['batch']})")
    for col in ("impl", "obs", *_OPS):
        table.add_column(col, justify="left" if col in ("impl", "obs") else "right")
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for row in result["rows"]:
        cells.setdefault((row["impl"], row["obs"]), {})[row["op"]] = row["per_s"]
    for (impl, obs), ops in cells.items():
        table.add_row(impl, obs, *(_fmt(ops.get(op)) for op in _OPS))
    ratios = result["ratios"]
    caption = [
        f"{key.replace('_', ' ')}: " + ("-" if v is None else f"{v:.2f}x") for key, v in ratios.items()
    ]
    per_item = result.get("bytes_per_item", {})
    caption += [f"our bytes/transition ({obs}): {b}" for obs, b in per_item.items()]
    recovery = result.get("redis_recovery")
    if recovery:
        caption.append(
            f"redis recovery: a new shard reloaded {recovery['items']:,} {recovery['obs']} items "
            f"in {recovery['seconds']:.2f}s"
        )
    table.caption = "\n".join(caption)
    return table


def memory_table(result: dict) -> Table:
    """Bytes per stored transition of the text envs' shapes, whole (observations, scalars, key,
    tree share and mask), with the mask in each form: packed, as bool, and as ids (W a row)."""
    from textdqn.bench.replay_bench import MEMORY_TARGET

    table = Table(title="replay memory per transition (bytes, with priority-tree share)")
    columns = ("transition", "obs + next_obs", "mask packed", "mask as bool", "mask as ids (W)", "sent as")
    for col in columns:
        table.add_column(col, justify="left" if col == "transition" else "right")
    for row in result.get("text_transitions", []):
        table.add_row(
            row["transition"],
            f"{row['bytes_observations']:,}",
            f"{row['bytes_packed_mask']:,}",
            f"{row['bytes_bool_mask']:,}",
            f"{row['bytes_id_mask']:,} ({row['mask_ids']})",
            row["stored_as"],
        )
    table.caption = (
        f"target: <= {MEMORY_TARGET:,} bytes a transition for top-k masks, k <= 64; ids are uint16 "
        "(vocabularies up to 65,535), W = top-k + concept tokens + EOS; actors send the smaller form"
    )
    return table


def _optional(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def train_table(result: dict) -> Table:
    """Time to target: one row per implementation (median over seeds, each seed's run shown),
    the ratios as caption."""
    t = result["target"]
    goal = f"{t['metric']} >= {t['value']}" + "".join(f", {k} < {v}" for k, v in t["max"].items())
    goal += "".join(f", {k} >= {v}" for k, v in t["min"].items())
    table = Table(title=f"time to target: greedy eval {goal}, {t['env']} (total s, start-up included)")
    columns = ("impl", "reached", "median total s", "each seed: total s (env steps)", "median env steps")
    for col in columns:
        table.add_column(
            col, justify="left" if col in ("impl", "each seed: total s (env steps)") else "right"
        )
    for s in result["summary"]:
        runs = [r for r in result["rows"] if r["impl"] == s["impl"]]
        each = ", ".join(
            f"{r['seed']}: {r['total_s']:.1f}{'' if r['reached_target'] else ' missed'} ({r['env_steps']:,})"
            for r in runs
        )
        table.add_row(
            s["impl"],
            f"{s['reached']}/{s['runs']}",
            f"{'≥ ' if s['lower_bound'] else ''}{s['median_total_s']:.1f}",
            each,
            f"{s['median_env_steps']:,.0f}",
        )
    table.caption = "\n".join(result["verdicts"])
    return table


def learner_table(result: dict) -> Table:
    """Learner throughput per feed, the ratio as caption."""
    table = Table(title="learner throughput")
    for col in ("feed", "network", "device", "updates/s", "transitions/s", "utilization"):
        table.add_column(col, justify="left" if col in ("feed", "network", "device") else "right")
    for r in result["rows"]:
        table.add_row(
            r["feed"],
            r.get("network", "mlp"),
            r["device"],
            f"{r['updates_per_s']:.1f}",
            f"{r['transitions_per_s']:,.0f}",
            f"{100 * r['utilization']:.0f}%",
        )
    table.caption = f"ray-sharded / in-process: {result['ratio_ray_vs_in_process']:.2f}x"
    return table


def lm_table(result: dict) -> Table:
    """LM Q-network learner throughput, one row per precision and number of trained layers."""
    settings = result["settings"]
    title = (
        f"LM Q-network learner ({settings['lm']}, batch {settings['batch']}, {settings['max_tokens']} tokens)"
    )
    table = Table(title=title)
    cols = ("device", "precision", "parameters", "trained", "published MB", "vocab", "updates/s", "tokens/s",
            "transitions/s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("device", "precision") else "right")
    for r in result["rows"]:
        table.add_row(
            r["device"], r["precision"], f"{r['parameters']:,}", f"{r['trained']:,}",
            f"{r['published_bytes'] / 1e6:,.1f}", f"{r['vocab']:,}",
            f"{r['updates_per_s']:.3f}", _fmt(r["tokens_per_s"]), _fmt(r["transitions_per_s"]),
        )  # fmt: skip
    rows = result["rows"]
    if len(rows) == 2 and rows[0]["updates_per_s"] and rows[1]["precision"] != rows[0]["precision"]:
        table.caption = f"bf16 / fp32 updates/s: {rows[1]['updates_per_s'] / rows[0]['updates_per_s']:.2f}x"
    return table


def actor_table(result: dict) -> Table:
    """bench actor: one rollout actor's env steps/s under each of two settings."""
    n = result["settings"]["num_envs"]
    table = Table(title=f"rollout actor ({result['config']}, {n} envs, one thread)")
    heading = {"priorities": "initial priorities", "kv-cache": "reading texts", "bf16": "LMs' dtype"}
    table.add_column(heading[result["compare"]])
    table.add_column("env steps/s", justify="right")
    for r in result["rows"]:
        table.add_row(r["setting"], f"{r['env_steps_per_s']:,.1f}")
    first, second = (r["setting"] for r in result["rows"])
    table.caption = f"{first} / {second}: {result['ratio']:.2f}x"
    return table


def encoder_table(result: dict) -> Table:
    """bench encoder: one row per setting of the token Q-network's learner update."""
    table = Table(title=f"token Q-network learner (batch {result['settings']['batch']}, one process)")
    for col in ("ff", "threads", "tokens", "extra", "updates/s", "transitions/s", "vs first", "warm-up s"):
        table.add_column(col, justify="left" if col == "extra" else "right")
    for r in result["rows"]:
        table.add_row(
            str(r["ff"]), str(r["threads"]), str(r["tokens"]), r["extra"], f"{r['updates_per_s']:.2f}",
            _fmt(r["transitions_per_s"]), f"{r['vs_first']:.2f}x", f"{r['warmup_s']:.1f}",
        )  # fmt: skip
    return table


def scaling_table(rows: list[dict]) -> Table:
    """bench scaling: one row per (shards, actors) cell, steady-state rates and CPU cores used."""
    learner = any(r["learner"] for r in rows)
    title = f"scaling: {rows[0]['config']}{'' if learner else ', no learner'} (steady state)"
    table = Table(title=title)
    columns = ["shards", "actors", "env steps/s", "efficiency", "inserts/s", "samples/s"]
    if learner:
        columns += ["updates/s", "learner util", "lag"]
    columns += ["CPU actors", "CPU shards", *(["CPU learner"] if learner else []), "CPU store", "CPU driver"]
    columns += ["CPU ray"]
    for col in columns:
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: (r["shards"], r["actors"])):
        cells = [
            str(r["shards"]),
            str(r["actors"]),
            _fmt(r["env_steps_per_s"]),
            _optional(r["efficiency"], ".2f"),
            _fmt(r["inserts_per_s"]),
            _fmt(r["samples_per_s"]),
        ]
        if learner:
            util = r["learner_utilization"]
            cells += [
                _optional(r["updates_per_s"], ".1f"),
                "-" if util is None else f"{100 * util:.0f}%",
                _optional(r["policy_lag_mean"], ".2f"),
            ]
        cells += [f"{r['cpu_actors']:.2f}", f"{r['cpu_shards']:.2f}",
                  *([_optional(r["cpu_learner"], ".2f")] if learner else []),
                  f"{r['cpu_store']:.2f}", f"{r['cpu_driver']:.2f}",
                  _optional(r["cpu_ray_system"], ".2f")]  # fmt: skip
        table.add_row(*cells)
    table.caption = (
        f"efficiency: rate(k) / ((k/k0)·rate(k0)) per shard count, k0 the fewest actors; CPU in cores "
        f"(CPU-s per s) summed per component, host {rows[0]['host_cores']} cores, "
        f"{rows[0]['window_s']:.0f}s windows"
    )
    return table


def projection_table(rows: list[dict], cores: int, gbps: float, summary: str) -> Table:
    """bench scaling --project: every component's bound in env steps/s, per node count."""
    from textdqn.bench.projection import BOUNDS

    table = Table(title=f"projection: CPU nodes of {cores} cores, {gbps:g} Gbit/s links (env steps/s)")
    table.add_column("nodes", justify="right")
    table.add_column("actors, shards", justify="right")
    for col in (*(f"{b} bound" for b in BOUNDS), "projected", "binds"):
        table.add_column(col, justify="left" if col == "binds" else "right")
    for r in rows:
        bounds = ["-" if r[b] == float("inf") else _fmt(r[b]) for b in BOUNDS]
        layout = f"{r['num_actors']}, {r['num_shards']}"
        table.add_row(str(r["nodes"]), layout, *bounds, _fmt(r["projected"]), r["binds"])
    table.caption = summary
    return table
