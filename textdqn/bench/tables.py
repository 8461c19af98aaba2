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
    """Bytes per stored transition of the text envs' shapes, masks packed (as sent) and as bool."""
    table = Table(title="replay memory per transition (bytes, with priority-tree share)")
    for col in ("transition", "mask packed", "mask as bool"):
        table.add_column(col, justify="left" if col == "transition" else "right")
    for row in result.get("text_transitions", []):
        table.add_row(row["transition"], f"{row['bytes_packed_mask']:,}", f"{row['bytes_bool_mask']:,}")
    return table


def _optional(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def train_table(result: dict) -> Table:
    """Time to target: one row per implementation, the verdict as caption."""
    table = Table(title="time to target: greedy eval return >= 475 (20 episodes), CartPole-v1")
    columns = ("impl", "reached", "total s", "set-up s", "env steps", "final eval", "learner util", "lag")
    for col in columns:
        table.add_column(col, justify="left" if col == "impl" else "right")
    for r in result["rows"]:
        reached = "yes" if r["reached_target"] else f"no (budget {r['budget_s']:.0f}s)"
        util = None if r.get("learner_utilization") is None else 100 * r["learner_utilization"]
        table.add_row(
            r["impl"],
            reached,
            f"{r['total_s']:.1f}",
            f"{r['setup_s']:.1f}",
            f"{r['env_steps']:,}",
            _optional(r["final_eval_return"], ".1f"),
            "-" if util is None else f"{util:.0f}%",
            _optional(r.get("policy_lag_mean"), ".2f"),
        )
    table.caption = result["verdict"]
    return table


def learner_table(result: dict) -> Table:
    """Learner throughput per feed, the ratio as caption."""
    table = Table(title="learner throughput")
    for col in ("feed", "device", "updates/s", "transitions/s", "utilization"):
        table.add_column(col, justify="left" if col in ("feed", "device") else "right")
    for r in result["rows"]:
        table.add_row(
            r["feed"],
            r["device"],
            f"{r['updates_per_s']:.1f}",
            f"{r['transitions_per_s']:,.0f}",
            f"{100 * r['utilization']:.0f}%",
        )
    table.caption = f"ray-sharded / in-process: {result['ratio_ray_vs_in_process']:.2f}x"
    return table


def lm_table(result: dict) -> Table:
    """LM Q-network learner throughput, one row per precision."""
    settings = result["settings"]
    table = Table(title=f"LM Q-network learner ({settings['lm']}, batch {settings['batch']})")
    for col in ("device", "precision", "parameters", "vocab", "updates/s", "tokens/s", "transitions/s"):
        table.add_column(col, justify="left" if col in ("device", "precision") else "right")
    for r in result["rows"]:
        table.add_row(
            r["device"], r["precision"], f"{r['parameters']:,}", f"{r['vocab']:,}",
            f"{r['updates_per_s']:.2f}", _fmt(r["tokens_per_s"]), _fmt(r["transitions_per_s"]),
        )  # fmt: skip
    rows = result["rows"]
    if len(rows) == 2 and rows[0]["updates_per_s"]:
        table.caption = f"bf16 / fp32 updates/s: {rows[1]['updates_per_s'] / rows[0]['updates_per_s']:.2f}x"
    return table
