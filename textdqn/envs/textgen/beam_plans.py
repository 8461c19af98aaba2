"""Constrained beam search's texts searched once and kept in a file (env.kwargs.beam_plans).

The search (beam.py) is a deterministic function of the reference LM's weights, the prompt, its
concepts and the env's mask settings, and it is what a demonstrator costs: on one core about
0.4 s a prompt with the shipped LM, against a few milliseconds for a step of the env. A plans
file holds each prompt's text from the start, keyed by the prompt's token ids and concepts, with
a fingerprint of everything else the search depends on; an env given one reads its plans instead
of searching (a prompt not in the file is searched as before), and refuses a file searched under
other settings. `textdqn lm beam-plans CONFIG OUT` writes one for a config's env (both splits).
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from textdqn.envs.textgen.beam import BEAM_WIDTH
from textdqn.errors import ConfigError

FORMAT = "textdqn-beam-plans/1"

_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""an LM's SHA-256s (weights, config) per model object: a process's envs share one model
(textdqn.lm.shared_causal_lm)"""

_NOT_ARCHITECTURE = {"transformers_version", "_name_or_path", "dtype", "torch_dtype", "architectures"}
"""config keys that do not change what the LM computes (its dtype is a fingerprint key of its own)"""


def plan_key(prompt_ids: Iterable[int], concepts: Iterable[str]) -> str:
    """The key of one prompt's plan: its token ids and its concepts."""
    return json.dumps([[int(i) for i in prompt_ids], list(concepts)], separators=(",", ":"))


def fingerprint(env: Any) -> dict[str, Any]:
    """What the search depends on besides the prompt: the reference LM's weights (a SHA-256 of
    its parameters) and architecture (of its config, e.g. its activation), its dtype, the
    vocabulary and the mask and ranking settings."""
    model = env.reference.model
    if model not in _DIGESTS:
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().contiguous().cpu().numpy().tobytes())
        config = {k: v for k, v in model.config.to_dict().items() if k not in _NOT_ARCHITECTURE}
        architecture = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        _DIGESTS[model] = digest.hexdigest(), architecture
    return {
        "lm_sha256": _DIGESTS[model][0],
        "lm_config_sha256": _DIGESTS[model][1],
        "lm_dtype": str(next(model.parameters()).dtype),
        "vocab_size": int(env.vocab_size),
        "eos_id": int(env.eos_id),
        "top_k": int(env.top_k),
        "max_new_tokens": int(env.max_new_tokens),
        "eos_after_concepts": bool(env.eos_after_concepts),
        "length_bonus": float(env.beam_length_bonus),
        "width": BEAM_WIDTH,
    }


def load_plans(path: Path, env: Any) -> dict[int, list[int]]:
    """The plans of `path` for the env's records, by record index (records the file lacks are
    left out); a ConfigError when the file is not a plans file or was searched under other
    settings than the env's."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"env.kwargs.beam_plans = {str(path)!r} cannot be read as a plans file ({e}); "
            "write one with: textdqn lm beam-plans CONFIG OUT"
        ) from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"env.kwargs.beam_plans = {str(path)!r} is not a {FORMAT} file")
    expected, found = fingerprint(env), data.get("fingerprint", {})
    differ = sorted(k for k in expected if found.get(k) != expected[k])
    if differ:
        raise ConfigError(
            f"env.kwargs.beam_plans = {str(path)!r} was searched under other settings than this env's "
            f"({', '.join(differ)} differ); search again with: textdqn lm beam-plans CONFIG {path}, "
            "or drop env.kwargs.beam_plans (the env then searches as it goes)"
        )
    plans = data["plans"]
    keys = [plan_key(env.prompt_ids(i), r.concepts) for i, r in enumerate(env.records)]
    return {i: [int(t) for t in plans[k]] for i, k in enumerate(keys) if k in plans}


def _search(env_kwargs: dict[str, Any], split: str, indices: list[int]) -> dict[str, list[int]]:
    """A worker's share: the plans of the split's records at `indices` (one torch thread: the
    workers are the parallelism)."""
    import torch

    from textdqn.envs.textgen.env import TextGenEnv

    torch.set_num_threads(1)
    env = TextGenEnv(**{**env_kwargs, "split": split})
    plans = {}
    for index in indices:
        env.reset(options={"prompt_index": index})
        key = plan_key(env.prompt_ids(index), env.record.concepts)
        plans[key] = env.beam_plan()
    return plans


def write_plans(env_kwargs: dict[str, Any], out: Path, workers: int = 1) -> tuple[int, dict[str, Any]]:
    """Search the plans of every record of both splits of TextGen-v0 with `env_kwargs` in
    `workers` processes and write them to `out`; returns (plans written, fingerprint)."""
    from textdqn.envs.textgen.env import TextGenEnv

    searching = {**env_kwargs, "beam_plans": ""}  # the plans are what is being written
    envs = {split: TextGenEnv(**{**searching, "split": split}) for split in ("train", "test")}
    stamp = fingerprint(envs["train"])  # the same for both splits: prompts are not in it
    jobs = [
        (split, [int(i) for i in part])
        for split, env in envs.items()
        for part in np.array_split(np.arange(len(env.records)), workers)
    ]
    plans: dict[str, list[int]] = {}
    with ProcessPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(_search, searching, split, part) for split, part in jobs if len(part)]
        for future in futures:
            plans.update(future.result())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "fingerprint": stamp, "plans": plans}, separators=(",", ":"))
    out.write_text(text + "\n")
    return len(plans), stamp
