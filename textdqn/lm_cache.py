"""KV caches for token prefixes that grow one token a step, read in batches: the reference LM
of TextGen-v0's envs and the LM Q-network the actors act with.

Each row keeps its own cache (a transformers DynamicCache of batch 1). A step stacks the rows'
caches, left-padded to the longest prefix, reads one new token a row at its own position with
the padding masked out, and hands each row its part of the new cache: one forward pass of B
tokens instead of B passes of one, or one pass over every whole prefix.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from textdqn.errors import ConfigError
from textdqn.networks import q_values

KV = list[tuple[Tensor, Tensor]]
"""a cache's (keys, values) per layer, each [1, kv_heads, L, head_dim]"""


def cache_arg(model: nn.Module) -> str:
    """The keyword `model.forward` takes its KV cache by: `cache` (transformers 5) or
    `past_key_values` (earlier versions)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def kv_layers(cache: Any) -> KV | None:
    """A DynamicCache's keys and values per layer; None for no cache, or one with layers of
    another kind (sliding windows, quantized), which are not stacked."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer or layer.keys is None for layer in layers):
        return None
    return [(layer.keys, layer.values) for layer in layers]


def output_cache(out: Any, arg: str) -> Any:
    """The cache a transformers model output carries (named like the forward's argument)."""
    return out.get("cache", None) if arg == "cache" else out.get("past_key_values")


def step_rows(model: nn.Module, caches: list[KV], tokens: list[int], arg: str) -> tuple[Any, list[Any]]:
    """Read one token a row after each row's cached prefix, in one forward pass of `model` (a
    causal LM or its base model) -> (the model's output, [B, 1, ...], and each row's new cache,
    holding only its own positions)."""
    from transformers import DynamicCache

    past = [int(kv[0][0].shape[2]) for kv in caches]
    longest = max(past)
    stacked = [
        tuple(
            torch.cat(
                [
                    nn.functional.pad(kv[layer][part], (0, 0, longest - n, 0))
                    for kv, n in zip(caches, past, strict=True)
                ]
            )
            for part in (0, 1)
        )
        for layer in range(len(caches[0]))
    ]
    mask = torch.ones((len(caches), longest + 1), dtype=torch.long)
    for row, n in enumerate(past):
        mask[row, : longest - n] = 0
    out = model(
        input_ids=torch.as_tensor(tokens, dtype=torch.long)[:, None],
        attention_mask=mask,
        position_ids=torch.as_tensor(past, dtype=torch.long)[:, None],
        use_cache=True,
        **{arg: DynamicCache(stacked)},
    )
    layers = [(layer.keys, layer.values) for layer in output_cache(out, arg).layers]
    rows = [
        DynamicCache(
            [(k[row : row + 1, :, longest - n :], v[row : row + 1, :, longest - n :]) for k, v in layers]
        )
        for row, n in enumerate(past)
    ]
    return out, rows


class FullRead:
    """Q-values by a forward pass over every whole row (any Q-network): what actors act with
    unless network.kv_cache is set."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    def clear(self) -> None:
        pass  # nothing kept between calls

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        return self.net(obs)


def acting_q(net: nn.Module, kv_cache: bool) -> FullRead | PrefixCache:
    """How an actor or evaluator computes `net`'s Q-values: from KV caches (`kv_cache`, an
    LMQNetwork) or whole rows. Call `.clear()` after loading new weights into `net`."""
    return PrefixCache(net) if kv_cache else FullRead(net)


class PrefixCache:
    """An LMQNetwork's Q-values for rows of observations that each grow by one token a step
    (an actor's envs), from KV caches of the network's base model: a row that extends the
    prefix it had at the last call reads only its new token; any other row (a new episode)
    reads its whole prefix. `clear()` after the network's weights change.

    Equal to `net(obs)` up to float rounding (tests/unit/test_lm_cache.py)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.body = net.lm.base_model
        self.arg = cache_arg(self.body)
        self.clear()

    def clear(self) -> None:
        self._ids: list[np.ndarray | None] = []
        self._caches: list[Any] = []

    cached_reads = 0
    """rows read from their caches so far (tests check that the caches are used)"""

    @torch.no_grad()
    def __call__(self, obs: Tensor) -> Tensor:
        """Q [B, V] of length-prefixed token rows [B, 1 + T] (as LMQNetwork.forward)."""
        rows = obs.long().numpy()
        if len(self._ids) != len(rows):
            self._ids, self._caches = [None] * len(rows), [None] * len(rows)
        prefixes = [row[1 : 1 + max(int(row[0]), 1)].copy() for row in rows]
        try:
            hidden = self._read(prefixes)
        except BaseException:
            self.clear()  # no half-updated state: the next call reads every row whole
            raise
        self._ids = prefixes
        net = self.net
        return q_values(torch.stack(hidden), net.lm.get_output_embeddings(), net.value, net.q_scale).float()

    def _read(self, prefixes: list[np.ndarray]) -> list[Tensor]:
        """Each row's last hidden state: from its cache when it extends the last call's prefix
        by one token (all such rows in one pass), else from its whole prefix."""
        hidden: list[Tensor | None] = [None] * len(prefixes)
        grown, new_tokens = [], []
        for b, ids in enumerate(prefixes):
            before = self._ids[b]
            extends = before is not None and len(before) == len(ids) - 1 and (ids[:-1] == before).all()
            if extends and kv_layers(self._caches[b]) is not None:
                grown.append(b)
                new_tokens.append(int(ids[-1]))
                continue
            out = self.body(input_ids=torch.as_tensor(ids)[None], use_cache=True)
            hidden[b], self._caches[b] = out.last_hidden_state[0, -1], output_cache(out, self.arg)
            if kv_layers(self._caches[b]) is None:
                raise ConfigError(
                    f"network.kv_cache: {type(self.net.lm).__name__}'s KV cache has layers of a kind "
                    "that cannot be stacked (sliding windows, quantized): set network.kv_cache false"
                )
        if grown:
            caches = [kv_layers(self._caches[b]) for b in grown]
            out, after = step_rows(self.body, caches, new_tokens, self.arg)
            for i, b in enumerate(grown):
                hidden[b], self._caches[b] = out.last_hidden_state[i, -1], after[i]
            self.cached_reads += len(grown)
        return hidden
