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
    table.caption = "\n".join(caption)
    return table
