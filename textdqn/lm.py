"""Causal language models for the text-generation env and the LM Q-network.

`causal_lm` loads a local `transformers` checkpoint, or builds a small GPT-2 from a config with
weights drawn from a seed, so that every process that builds the same spec gets the same
model (the env's reference LM and the Q-network it initialises). Nothing is downloaded.
torch and `transformers` are imported only when a model is made (textdqn.config imports
resolve_path from here).
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textdqn.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel


LM_KEYS = ("path", "layers", "width", "heads", "seed")
"""Keys of a causal LM spec (the env's and the network's `lm`): causal_lm's arguments but the sizes."""

LM_DTYPES = ("float32", "bfloat16")
"""dtypes an LM that is not trained may compute in (env.kwargs.lm_dtype, network.act_dtype)"""

PACKAGE_PREFIX = "textdqn:"
"""A path "textdqn:envs/textgen/data/concepts-lm" names a directory inside the installed package."""

SHIPPED_LM = "textdqn:envs/textgen/data/concepts-lm"
"""The small LM shipped for the concept prompts (textdqn.envs.textgen.make_lm builds it): the
reference LM of TextGen-v0 when a config names none."""


def resolve_path(path: str) -> str:
    """`path`, with a leading "textdqn:" replaced by the installed package's directory."""
    if path.startswith(PACKAGE_PREFIX):
        return str(Path(__file__).parent / path[len(PACKAGE_PREFIX) :])
    return path


def load_local(auto_class: type, path: str, key: str, what: str, **options):
    """`auto_class.from_pretrained(path, **options)` from a local directory only (an AutoModel
    class or AutoTokenizer); ConfigError naming `key` (the config key holding `path`) and the fix
    when `path` is not a local directory or holds no loadable `what` (e.g. "causal LM")."""
    if not path or not Path(resolve_path(path)).is_dir():
        raise ConfigError(
            f"{key} = {path!r} is not a local directory: pass a directory holding a transformers {what} "
            "checkpoint (config.json, weights and tokenizer files, e.g. written by save_pretrained); "
            "nothing is downloaded"
        )
    from safetensors import SafetensorError

    try:
        return auto_class.from_pretrained(resolve_path(path), local_files_only=True, **options)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError) as e:
        # A corrupt or truncated weights file lands here too (safetensors or torch.load errors).
        raise ConfigError(
            f"{key} = {path!r} cannot be loaded as a transformers {what} ({e}); pass a directory "
            "written by save_pretrained"
        ) from None


def max_positions(model) -> int | None:
    """The most tokens a transformers `model` reads (its position embeddings: GPT-2's
    n_positions, BERT's max_position_embeddings); None when its config names none."""
    config = model.config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


FUSED_GELU = "gelu_pytorch_tanh"
"""GPT-2's GELU (the tanh approximation) as one fused torch kernel"""


def fused_gelu(config: PretrainedConfig) -> PretrainedConfig:
    """`config` with GPT-2's "gelu_new" activation (the tanh approximation of GELU, written as
    five elementwise torch ops) replaced by "gelu_pytorch_tanh", the same function as one fused
    kernel (logits agree to ~1e-5): a fifth of a CPU learner update of the shipped LM was those
    elementwise ops. Other activations are left as they are."""
    for key in ("activation_function", "hidden_act"):
        if getattr(config, key, None) == "gelu_new":
            setattr(config, key, FUSED_GELU)
    return config


def causal_lm(
    path: str = "",
    *,
    vocab_size: int = 0,
    max_positions: int = 0,
    layers: int = 2,
    width: int = 64,
    heads: int = 4,
    seed: int = 0,
) -> PreTrainedModel:
    """A causal LM in eval mode: the checkpoint at local directory `path`, or (path "") a GPT-2
    with `layers` blocks of `width` (`heads` attention heads), `vocab_size` tokens and
    `max_positions` positions, its weights drawn from `seed` (the same in every process).

    A loaded checkpoint keeps its own sizes, its weights in float32; ConfigError names the fix
    when `path` is not a local checkpoint.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    if path:
        config = fused_gelu(load_local(AutoConfig, path, "language model path", "causal LM config"))
        # float32 whatever the checkpoint's dtype (transformers keeps a bfloat16 one in bfloat16): the
        # learner's Adam steps vanish in bfloat16 weights, and CPUs compute float32 fastest.
        lm = load_local(
            AutoModelForCausalLM, path, "language model path", "causal LM", dtype=torch.float32, config=config
        )
        return lm.eval()
    if min(vocab_size, max_positions, layers, width, heads) < 1 or width % heads:
        raise ConfigError(
            "a causal LM built from a config needs vocab_size, max_positions, layers, width, heads >= 1 "
            f"and heads dividing width; got vocab_size={vocab_size}, max_positions={max_positions}, "
            f"layers={layers}, width={width}, heads={heads}"
        )
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=max_positions,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=0,
        activation_function=FUSED_GELU,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model.eval()


def layer_count(spec: dict[str, Any]) -> int | None:
    """The transformer layers of the causal LM a spec names: its checkpoint's config.json
    (num_hidden_layers or n_layer; None when it has neither), or the spec's `layers`."""
    path = spec.get("path", "")
    if not path:
        return int(spec.get("layers", 2))
    from transformers import AutoConfig

    config = load_local(AutoConfig, path, "network.lm.path", "model config")
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    return int(layers) if layers else None


@functools.lru_cache(maxsize=4)
def shared_causal_lm(path: str = "", dtype: str = "float32", **sizes: int) -> PreTrainedModel:
    """`causal_lm(path, **sizes)` made once per process and shared (eval mode, never trained):
    the reference LM of every env an actor steps, one copy in memory however many envs; its
    weights in `dtype` (float32 or bfloat16: never trained, so bfloat16 loses only precision)."""
    import torch

    return causal_lm(path, **sizes).requires_grad_(False).to(getattr(torch, dtype))
