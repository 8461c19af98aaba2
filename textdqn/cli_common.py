"""What every `textdqn` sub-command shares: the console, the error exit, the --set option."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

# Piped or redirected output keeps wide benchmark tables whole (Rich would assume 80 columns).
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def fail(error: Exception) -> NoReturn:
    """Print `error` as the command's one-line failure and exit with status 2."""
    console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
    raise typer.Exit(code=2)


Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set section.key=value (repeatable)."),
]
