"""The Q-network's config section (`network:`) and its checks, re-exported by textdqn.config.

`kind` picks the Q-network: an MLP for float observations, a transformer encoder for token
ids, or a causal language model whose logits are the Q-values over its vocabulary (`lm`, the
same spec as the text-generation env's reference LM). `lm_mismatches` is the cross-section
check that keeps the two LMs the same; Config calls it.
"""

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from textdqn.lm import LM_DTYPES, LM_KEYS, resolve_path
from textdqn.typed_config import Rule, above, at_least, join

KINDS = ("auto", "mlp", "encoder", "lm")
"""Q-network kinds: auto = mlp for float observations, encoder for token ids."""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The Q-network shared by the learner and the actors."""

    kind: str = "auto"
    """Q-network: auto (mlp for float observations, encoder for token ids), mlp, encoder, or lm
    (a causal LM whose next-token logits are the Q-values; needs lm)"""
    hidden: tuple[int, ...] = (256, 256)
    """widths of the MLP torso's hidden layers (vector observations)"""
    dueling: bool = True
    """dueling head: Q = V + A − mean(A); for kind lm, A = the LM's logits and V a new head
    (False: Q = the logits themselves, Soft Q-Learning's parameterisation)"""
    q_scale: float = 1.0
    """Q = q_scale × the head's output. mlp, encoder: set it near the size of the returns
    (e.g. 40 for the dialogue's ±80) when the features are normalised, as a transformer's are,
    so that Adam's small steps can reach them; lm: a temperature on the logits (e.g. 0.1)
    that brings them to the rewards' scale"""
    encoder_layers: int = 2
    """transformer Q-network (token observations): encoder layers"""
    encoder_width: int = 128
    """transformer Q-network: hidden size"""
    encoder_ff: int = 0
    """transformer Q-network: width of the feed-forward layers; 0 = 4 × encoder_width (BERT's
    ratio). They hold two thirds of the encoder's multiply-adds at that ratio, so 2 × the width
    makes an update about a third cheaper"""
    encoder_heads: int = 4
    """transformer Q-network: attention heads (they must divide encoder_width)"""
    pretrained: str = ""
    """transformer Q-network: local directory of a transformers checkpoint whose encoder is used
    instead of one built from encoder_*; empty builds one (token length: the env's observation)"""
    lm: dict[str, Any] = dataclasses.field(default_factory=dict)
    """kind lm: the causal LM to start from, the env's lm spec: {path: local checkpoint} or
    {layers, width, heads, seed} (a GPT-2 built from a seed); vocabulary = the action space"""
    lm_train_layers: int = 0
    """kind lm: train only the top N transformer layers, the final norm and the V head; the
    embeddings, the LM head (often tied to them) and the lower layers keep the checkpoint's
    weights, so the backward pass stops N layers down (0: train the whole LM)"""
    act_dtype: str = "float32"
    """kind lm: the dtype actors and evaluators hold the Q-network in: float32, or bfloat16
    (about 1.8x faster acting for SmolLM2 on a CPU with bfloat16 matrix units; the learner
    keeps float32 weights, see learner.cpu_bf16)"""
    kv_cache: bool = False
    """kind lm: actors and evaluators act with a KV cache per env (each step reads only the new
    token of each env's text, batched across envs) instead of a forward pass over every whole
    text; the same Q-values. It pays for large LMs (SmolLM2: see the README), not for the
    shipped 2-layer one"""

    _RULES: ClassVar[dict[str, Rule]] = {
        "q_scale": above(0, "a float"),
        "encoder_layers": at_least(1),
        "encoder_width": at_least(1),
        "encoder_heads": at_least(1),
        "encoder_ff": at_least(0),
        "lm_train_layers": at_least(0),
    }

    def _check(self, path: str) -> list[str]:
        found = []
        if not self.hidden or min(self.hidden) < 1:
            hidden = join(path, "hidden")
            found.append(f"{hidden} = {list(self.hidden)} needs at least one layer, each width >= 1")
        if self.encoder_heads >= 1 and self.encoder_width % self.encoder_heads:
            width, heads = join(path, "encoder_width"), join(path, "encoder_heads")
            found.append(
                f"{width} = {self.encoder_width} is not a multiple of {heads} = {self.encoder_heads}: "
                "change one so that the heads divide the width"
            )
        if self.pretrained and not Path(self.pretrained).is_dir():
            found.append(pretrained_missing(join(path, "pretrained"), self.pretrained))
        return found + self._check_kind(path)

    def _check_kind(self, path: str) -> list[str]:
        kind, lm = join(path, "kind"), join(path, "lm")
        if self.kind not in KINDS:
            return [
                f"{kind} = {self.kind!r} is not a Q-network kind: expected one of "
                f"{', '.join(map(repr, KINDS))} (auto: mlp for float observations, encoder for token ids)"
            ]
        if self.kind == "lm" and not self.lm:
            return [
                f"{kind} = 'lm' needs {lm}, the causal LM whose logits become the Q-values: set {lm} "
                "to the env's lm, e.g. {path: /local/checkpoint} or {layers: 2, width: 64, heads: 4, "
                "seed: 0} (a YAML anchor keeps them equal)"
            ]
        if self.kind != "lm" and self.lm:
            return [f"{lm} is set but {kind} = {self.kind!r} does not use it: set {kind} to 'lm' or drop it"]
        if self.act_dtype not in LM_DTYPES:
            return [f"{join(path, 'act_dtype')} = {self.act_dtype!r}: use {' or '.join(LM_DTYPES)}"]
        lm_only = {"kv_cache": self.kv_cache, "lm_train_layers": self.lm_train_layers}
        lm_only["act_dtype"] = self.act_dtype != "float32"
        if self.kind != "lm" and any(lm_only.values()):
            name = next(key for key, value in lm_only.items() if value)
            return [f"{join(path, name)} is for {kind} = 'lm' (a causal LM): drop it for {self.kind!r}"]
        return lm_spec_problems(self.lm, lm)


def lm_spec_problems(spec: Mapping[str, Any], key: str) -> list[str]:
    """What is wrong with a causal LM spec (see LM_KEYS) found at config key `key`."""
    found = [
        f"{join(key, name)} is not a key of a causal LM spec: accepted keys are {', '.join(LM_KEYS)}"
        for name in spec
        if name not in LM_KEYS
    ]
    path = spec.get("path", "")
    if not isinstance(path, str):
        found.append(f"{join(key, 'path')} = {path!r} has the wrong type: expected str")
    elif path and not Path(resolve_path(path)).is_dir():
        found.append(
            f"{join(key, 'path')} = {path!r} is not a local directory: pass the path of a directory "
            "holding a transformers causal LM checkpoint (written by save_pretrained), or leave path "
            "out to build a GPT-2 from layers, width, heads and seed; nothing is downloaded"
        )
    for name in ("layers", "width", "heads", "seed"):
        value, least = spec.get(name, 1), 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            found.append(f"{join(key, name)} = {value!r} is out of range: expected an int >= {least}")
    width, heads = spec.get("width", 64), spec.get("heads", 4)
    if isinstance(width, int) and isinstance(heads, int) and heads >= 1 and width % heads:
        found.append(
            f"{join(key, 'width')} = {width} is not a multiple of {join(key, 'heads')} = {heads}: "
            "change one so that the heads divide the width"
        )
    return found


def lm_mismatches(
    network: NetworkConfig, env_kwargs: Mapping[str, Any], eval_env_kwargs: Mapping[str, Any]
) -> list[str]:
    """Cross-section check: a kind-lm Q-network starts from the env's reference LM (its
    vocabulary is the action space, its greedy policy the LM's), so network.lm must equal
    env.kwargs.lm, and eval.env_kwargs.lm when evaluation replaces it."""
    if network.kind != "lm" or not network.lm:
        return []
    found = []
    for key, kwargs in (("env.kwargs.lm", env_kwargs), ("eval.env_kwargs.lm", eval_env_kwargs)):
        if "lm" in kwargs and kwargs["lm"] != network.lm:
            found.append(
                f"network.lm = {network.lm!r} differs from {key} = {kwargs['lm']!r}: the LM Q-network "
                "must start from the env's reference LM (same vocabulary, same initial policy); set "
                "network.lm to the env's lm (a YAML anchor keeps them equal)"
            )
    return found


def pretrained_missing(key: str, value: str) -> str:
    """The message for a `pretrained` path that is not a local directory."""
    return (
        f"{key} = {value!r} is not a local directory: pass the path of a directory holding a "
        "transformers checkpoint (config.json and weights, e.g. written by save_pretrained), or '' to "
        "build the encoder from the encoder_* settings; nothing is downloaded"
    )
