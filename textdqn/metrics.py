"""A run's books: its directory, the metrics log (CSV + TensorBoard), the learning curve,
summary.json and the live console view.

Call order in a training job: `RunDirectory.create(config)` (or `.open(dir)` to resume),
`MetricsLogger(run, METRIC_COLUMNS)`, then per metrics row `logger.log(row)` and
`view.update(row)` inside `with ConsoleView(title) as view:`; at the end `logger.close()`,
`plot_learning_curve(run.metrics_csv, run.plot_path)` and `write_summary(run.summary_path, ...)`.
matplotlib, TensorBoard and rich are imported where they are used, so importing this
module stays cheap.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textdqn.config import Config, dump_config, load_config, without_secrets
from textdqn.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = [
    "METRIC_COLUMNS",
    "ConsoleView",
    "MetricsLogger",
    "RunDirectory",
    "learning_curve_figure",
    "plain_line",
    "plot_learning_curve",
    "read_summary",
    "write_summary",
]

METRIC_COLUMNS: tuple[str, ...] = (
    "wall_s", "env_steps", "updates", "env_steps_per_s", "updates_per_s", "replay_size",
    "samples_per_insert", "policy_lag_mean", "policy_lag_max", "sample_age_mean",
    "learner_utilization", "loss", "q_mean", "train_return_mean", "train_episodes",
    "eval_return_mean", "eval_return_std", "eval_success_rate", "eval_target", "env_errors", "actor_restarts",
    "learner_restarts",
    "bad_updates", "epsilon_mean", "weight_version", "insert_retries", "shard_errors", "shards_down",
    "rate_limited", "insert_wait_s", "sample_wait_s", "demo_share", "demo_margin_loss",
)  # fmt: skip
"""The keys of a metrics row, in CSV column order (wall_s in seconds since the run began)."""

Row = Mapping[str, float | int | None]


class RunDirectory:
    """The files of one run, all under `path`: config.yaml (the resolved config), metrics.csv
    (one row per log interval), evaluations.jsonl (every metric of each evaluation), tensorboard/
    (event files), checkpoints/, summary.json (the final summary), policy.pt (the weights its
    final evaluation measured) and learning_curve.png; each has a property below."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def config_path(self) -> Path:
        return self._path / "config.yaml"

    @property
    def metrics_csv(self) -> Path:
        return self._path / "metrics.csv"

    @property
    def tensorboard_dir(self) -> Path:
        return self._path / "tensorboard"

    @property
    def checkpoints_dir(self) -> Path:
        return self._path / "checkpoints"

    @property
    def evaluations_path(self) -> Path:
        return self._path / "evaluations.jsonl"

    @property
    def summary_path(self) -> Path:
        return self._path / "summary.json"

    @property
    def policy_path(self) -> Path:
        return self._path / "policy.pt"

    @property
    def plot_path(self) -> Path:
        return self._path / "learning_curve.png"

    @staticmethod
    def default_path(config: Config, root: str = "runs") -> Path:
        """root/<run.name>-<YYYYmmdd-HHMMSS>, with -2, -3, ... if that already holds a run."""
        base = Path(root) / f"{config.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while (path / "config.yaml").exists():  # two runs started in the same second
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path

    def record_resume(self, config: Config, overrides: Sequence[str]) -> None:
        """A resume with `overrides` (--set ...) rewrites config.yaml to what now runs and adds a
        line to resumes.log, so the run directory says what changed and when."""
        if not overrides:
            return
        from textdqn.envs.run_files import copy_run_files

        dump_config(without_secrets(copy_run_files(config, self._path)), self.config_path)
        from textdqn.replay_server.redis_connection import redact_url

        shown = [f"{k}={redact_url(v)}" for k, _, v in (o.partition("=") for o in overrides)]
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "overrides": shown})
        with (self._path / "resumes.log").open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    @classmethod
    def create(cls, config: Config, run_dir: str = "", root: str = "runs") -> RunDirectory:
        """Make a new run directory (`run_dir`, or root/<run.name>-<YYYYmmdd-HHMMSS>) and write
        `config` to its config.yaml; a directory that already holds a run is refused. The env's
        user files (a domain file, a prompts file) are copied into it (envs/run_files.py): train
        with `run.with_own_files(config)`."""
        path = Path(run_dir) if run_dir else cls.default_path(config, root)
        run = cls(path)
        if run.config_path.exists():
            raise ConfigError(
                f"run directory {path} already holds a run ({run.config_path} exists): "
                f"pass --resume {path} to continue it, or choose another --run-dir"
            )
        if path.exists() and not path.is_dir():
            raise ConfigError(f"run directory {path} is a file: choose another --run-dir")
        for folder in (run.path, run.tensorboard_dir, run.checkpoints_dir):
            folder.mkdir(parents=True, exist_ok=True)
        from textdqn.envs.run_files import copy_run_files

        dump_config(without_secrets(copy_run_files(config, run.path)), run.config_path)
        return run

    def with_own_files(self, config: Config) -> Config:
        """`config` reading the env's files from this run directory's copies."""
        from textdqn.envs.run_files import copy_run_files, resolve_run_files

        return resolve_run_files(copy_run_files(config, self._path, write=False), self._path)

    @classmethod
    def open(cls, path: str | Path) -> RunDirectory:
        """An existing run directory, to resume or evaluate; ConfigError if it holds no run."""
        run = cls(path)
        if not run.path.is_dir():
            raise ConfigError(
                f"run directory {run.path} does not exist: pass a directory written by "
                "`textdqn train` (by default under runs/)"
            )
        if not run.config_path.is_file():
            raise ConfigError(
                f"{run.path} is not a run directory (no config.yaml in it): pass a directory "
                "written by `textdqn train`, or start a new run without --resume"
            )
        run.tensorboard_dir.mkdir(exist_ok=True)
        run.checkpoints_dir.mkdir(exist_ok=True)
        return run

    def load_config(self, overrides: Sequence[str] = ()) -> Config:
        """The run's config.yaml, with ``--set`` style `overrides` applied and validated, reading
        the env's files from this run directory's copies."""
        return self.with_own_files(load_config(self.config_path, overrides))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers (their str() would otherwise vary by numpy version)."""
    return value.item() if hasattr(value, "item") else value


class MetricsLogger:
    """Appends metric rows to the run's metrics.csv (flushed after every row) and writes one
    TensorBoard scalar per non-empty column, tagged with the column name, at step = env_steps.
    Each evaluation's whole result (log_evaluation) goes to evaluations.jsonl and to TensorBoard
    as eval/<metric>: metrics.csv has room for the return, success and target only.

    A resumed run appends to the existing metrics.csv when its header equals `columns`. When
    the header differs (the columns changed between versions), rows go to the first
    metrics-<n>.csv (n = 1, 2, ...) that is new or has the same header; `csv_path` says which.
    """

    def __init__(self, run: RunDirectory, columns: Sequence[str], tensorboard: bool = True) -> None:
        self.columns = tuple(columns)
        self.csv_path = self._pick_csv(run.metrics_csv)
        is_new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        if not is_new:
            _end_partial_line(self.csv_path)
        self._file = self.csv_path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if is_new:
            self._csv.writerow(self.columns)
            self._file.flush()
        self._rows = 0
        self._evaluations = run.evaluations_path
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(run.tensorboard_dir), flush_secs=10)

    def _pick_csv(self, first: Path) -> Path:
        path, n = first, 0
        while path.exists() and path.stat().st_size > 0 and _header(path) != list(self.columns):
            n += 1
            path = first.with_name(f"{first.stem}-{n}{first.suffix}")
        return path

    def log(self, row: Row) -> None:
        """Append `row`; missing or None values are empty cells and are left out of TensorBoard."""
        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise ValueError(f"unknown metric columns {unknown}: expected a subset of {list(self.columns)}")
        values = [_plain(row.get(c)) for c in self.columns]
        self._csv.writerow(["" if v is None else v for v in values])
        self._file.flush()
        self._rows += 1
        if self._writer is not None:
            step = row.get("env_steps")
            step = self._rows if step is None else int(step)
            for column, value in zip(self.columns, values, strict=True):
                if value is not None:
                    self._writer.add_scalar(column, float(value), global_step=step)

    def log_evaluation(self, result: Mapping[str, Any], env_steps: int, wall_s: float) -> None:
        """Append an evaluation's `result` (every metric its env reports: coverage, perplexity,
        wrong informs, ...) as one JSON line with its env steps and wall time, and write each
        numeric metric to TensorBoard as eval/<metric> at step = env_steps."""
        record = {"env_steps": int(env_steps), "wall_s": float(wall_s), **result}
        with self._evaluations.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")
        if self._writer is not None:
            for key, value in result.items():
                value = _plain(value)
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    self._writer.add_scalar(f"eval/{key}", float(value), global_step=int(env_steps))

    def close(self) -> None:
        """Flush and close the CSV and the TensorBoard writer (idempotent)."""
        if not self._file.closed:
            self._file.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _end_partial_line(path: Path) -> None:
    """A run killed mid-write may leave a row without its newline; end it so that ours start clean."""
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) not in (b"\n", b"\r"):
            f.write(b"\r\n")


def _read_columns(metrics_csv: Path) -> dict[str, list[float | None]]:
    """Column -> values of a metrics CSV, None for empty or unparsable cells."""
    with Path(metrics_csv).open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = list(reader)
    return {name: [_float(r[i]) if i < len(r) else None for r in rows] for i, name in enumerate(header)}


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _pairs(xs: list[float | None], ys: list[float | None]) -> tuple[list[float], list[float]]:
    kept = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def plot_learning_curve(
    metrics_csv: Path, out_png: Path, target: float | None = None, metric: str = "eval_return_mean"
) -> Path:
    """Plot `metric` (and train_return_mean, dashed, when present) against env steps and
    against wall-clock seconds, side by side, with the target as a horizontal line; rows
    where a value is empty are skipped. Returns `out_png`."""
    fig = learning_curve_figure(_read_columns(metrics_csv), target, metric)
    fig.suptitle(f"{Path(metrics_csv).resolve().parent.name}: {metric}")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png


def learning_curve_figure(data: dict[str, list], target: float | None, metric: str):
    """The learning curve's matplotlib Figure. A metric on another scale than the training
    return (success or coverage, 0–1) gets its own axis on the left, and the return its own
    on the right, so neither flattens the other and the target sits on the metric's scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(next(iter(data.values()), []))
    same_scale = metric == "eval_return_mean"
    fig = Figure(figsize=(11, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    legend_axes = [axes[0]]  # the first panel and, when it has one, its return axis
    for ax, x_name, x_label in zip(
        axes, ("env_steps", "wall_s"), ("env steps", "wall clock (s)"), strict=True
    ):
        xs = data.get(x_name, [None] * n)
        if metric in data:
            ax.plot(*_pairs(xs, data[metric]), "o-", markersize=3, label=metric)
        if target is not None:
            ax.axhline(target, color="grey", linestyle=":", label=f"target {target:g}")
        if "train_return_mean" in data:
            return_ax = ax if same_scale else ax.twinx()
            return_ax.plot(
                *_pairs(xs, data["train_return_mean"]), "--", color="C1", label="train_return_mean"
            )
            if not same_scale:
                return_ax.set_ylabel("train_return_mean", color="C1")
                if ax is axes[0]:
                    legend_axes.append(return_ax)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    values = [v for v in data.get(metric, []) if v is not None] + ([target] if target is not None else [])
    if not same_scale and values and 0 <= min(values) and max(values) <= 1:
        axes[0].set_ylim(-0.02, 1.02)  # a rate: its whole range
    axes[0].set_ylabel(metric)
    handles = [h for ax in legend_axes for h in ax.get_legend_handles_labels()[0]]
    if handles:
        axes[0].legend(handles=handles, loc="best")
    return fig


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_summary(path: Path, summary: Mapping) -> None:
    """Write `summary` as JSON (indent 1) atomically: a reader sees the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dict(summary), indent=1, default=_json_default)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_summary(path: str | Path) -> dict:
    """The summary written by `write_summary`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _num(value: Any, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _fields(row: Row) -> list[tuple[str, str, str]]:
    """(label, plain key, text) of each value the console shows; "-" where a value is missing."""
    g = row.get
    util = g("learner_utilization")
    eval_text = _num(g("eval_return_mean"), ".4g")
    if g("eval_return_std") is not None and g("eval_return_mean") is not None:
        eval_text += f" ± {g('eval_return_std'):.3g}"
    if g("eval_success_rate") is not None:
        eval_text += f" (success {g('eval_success_rate'):.0%})"
    fields = [
        ("env steps", "env_steps", f"{_num(g('env_steps'))} ({_num(g('env_steps_per_s'), suffix='/s')})"),
        ("updates", "updates", f"{_num(g('updates'))} ({_num(g('updates_per_s'), suffix='/s')})"),
        ("replay size", "replay", _num(g("replay_size"))),
        ("samples/insert", "spi", _num(g("samples_per_insert"), ".3g")),
        ("policy lag mean/max", "lag", f"{_num(g('policy_lag_mean'), '.3g')}/{_num(g('policy_lag_max'))}"),
        ("learner utilization", "util", "-" if util is None else f"{util:.0%}"),
        ("train return", "train_return", _num(g("train_return_mean"), ".4g")),
        ("eval return", "eval_return", eval_text),
        ("env errors", "env_errors", _num(g("env_errors"))),
        (
            "actor / learner restarts",
            "restarts",
            f"{_num(g('actor_restarts'))}/{_num(g('learner_restarts'))}",
        ),
        (
            "replay faults: lost calls / resent inserts / shards down",
            "replay_faults",
            f"{_num(g('shard_errors'))}/{_num(g('insert_retries'))}/{_num(g('shards_down'))}",
        ),
    ]
    if g("demo_share") is not None:  # only runs whose learner uses demonstrations
        demo = f"{g('demo_share'):.0%}/{_num(g('demo_margin_loss'), '.3g')}"
        fields.append(("demonstrations: share of samples / margin loss", "demo", demo))
    return fields


def plain_line(row: Row) -> str:
    """One log line for a metrics row, e.g. ``env_steps=12,345 (2,100/s) updates=1,234 (210/s) ...``."""
    wall = row.get("wall_s")
    prefix = "" if wall is None else f"[{wall:,.1f}s] "
    return prefix + " ".join(f"{key}={text}" for _, key, text in _fields(row))


class ConsoleView:
    """Live progress of a run: a rich table redrawn in place on a terminal, or one plain line
    per `update` when `enabled` is False or the console is not a terminal (CI logs, pipes)."""

    def __init__(self, title: str, enabled: bool = True, console: Console | None = None) -> None:
        from rich.console import Console

        self.title = title
        self.console = console if console is not None else Console()
        self._live = None
        if enabled and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(self._table({}), console=self.console, refresh_per_second=4)
            self._live.start()
        else:
            self._print(title)

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _table(self, row: Row) -> Table:
        from rich.table import Table

        wall = row.get("wall_s")
        title = self.title if wall is None else f"{self.title}  [{wall:,.0f}s]"
        table = Table(title=title, show_header=False, title_justify="left", expand=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        for label, _, text in _fields(row):
            table.add_row(label, text)
        return table

    def note(self, text: str) -> None:
        """Print one line of its own (above the live table on a terminal: Live redirects its
        console's output there), e.g. an evaluation."""
        self._print(text)

    def update(self, row: Row) -> None:
        """Show the metrics row `row` (the keys of METRIC_COLUMNS; missing ones show as "-")."""
        if self._live is not None:
            self._live.update(self._table(row), refresh=True)
        else:
            self._print(plain_line(row))

    def close(self) -> None:
        """Stop the live display, leaving its last state on screen (idempotent)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> ConsoleView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
