"""The reference language model of textdqn/TextGen-v0: next-token log-probabilities one token
at a time (a KV cache per prefix, read alone or batched across envs; torch.no_grad, eval mode),
and its greedy generations.

torch's thread settings are left as they are: the process that owns the env decides them.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from textdqn.errors import ConfigError
from textdqn.lm import max_positions
from textdqn.lm_cache import cache_arg, kv_layers, output_cache, step_rows

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclasses.dataclass
class LMState:
    """A prefix the model has read: its KV cache, the next token's log-probs (float32 [V]) and
    its tokens."""

    cache: Any
    logp: np.ndarray
    ids: list[int]
    """the prefix's tokens (what a read without a cache recomputes from)"""


class ReferenceLM:
    """A causal LM scoring next tokens over the first `vocab_size` ids (the tokenizer's).

    A checkpoint whose output layer is wider than the tokenizer (padded embeddings) has the
    extra logits dropped before the softmax; one that is narrower, or has fewer positions than
    `max_tokens`, is a ConfigError.
    """

    def __init__(self, model: PreTrainedModel, vocab_size: int, max_tokens: int) -> None:
        self.model = model.eval()
        self.vocab_size = int(vocab_size)
        width = model.get_output_embeddings().weight.shape[0]
        if width < vocab_size:
            raise ConfigError(
                f"the reference LM scores {width} tokens but its tokenizer has {vocab_size}: use the "
                "tokenizer saved with the checkpoint (or resize the model's embeddings to it)"
            )
        positions = max_positions(model)
        if positions is not None and positions < max_tokens:
            raise ConfigError(
                f"env.kwargs.max_tokens = {max_tokens} exceeds the reference LM's {positions} positions: "
                f"set max_tokens <= {positions}"
            )
        self._cache_arg = cache_arg(model)
        self.batch_with_cache = True
        """advance_batch reads one token a row on the stacked caches (False: every whole prefix,
        without caches, as before; `textdqn bench actor --compare kv-cache` compares the two)"""
        self._last_only = (
            {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
        )

    @torch.no_grad()
    def _run(self, ids: list[int] | np.ndarray, cache: Any) -> tuple[Any, np.ndarray]:
        inputs = torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0)
        out = self.model(input_ids=inputs, use_cache=True, **self._last_only, **{self._cache_arg: cache})
        logits = out.logits[0, -1, : self.vocab_size].float()
        return output_cache(out, self._cache_arg), torch.log_softmax(logits, dim=-1).numpy()

    def start(self, prompt: np.ndarray) -> LMState:
        """Read `prompt` (int ids [L], L >= 1); the state holds the log-probs of the token after it."""
        if len(prompt) == 0:
            raise ValueError("the reference LM needs a prompt of at least one token")
        cache, logp = self._run(prompt, None)
        return LMState(cache, logp, [int(i) for i in prompt])

    def advance(self, state: LMState, token: int) -> LMState:
        """Append `token` to the prefix of `state` (updated in place, and returned)."""
        state.ids.append(int(token))
        if state.cache is None:  # after a batched read: the whole prefix again
            state.cache, state.logp = self._run(state.ids, None)
        else:
            state.cache, state.logp = self._run([int(token)], state.cache)
        return state

    @torch.no_grad()
    def advance_batch(self, states: list[LMState], tokens: list[int]) -> None:
        """`advance` for several prefixes in one forward pass of one token a row: the states' KV
        caches are left-padded to the longest prefix and stacked, each row reads its token at
        its own position (the padding masked out), and each state keeps its row of the new
        cache. States without a cache, or caches of a kind that cannot be stacked, are read
        whole instead (`_read_whole`: no cache; `advance` rebuilds it later)."""
        if not states:
            return
        for state, token in zip(states, tokens, strict=True):
            state.ids.append(int(token))
        caches = [kv_layers(state.cache) for state in states]
        if not self.batch_with_cache or any(kv is None for kv in caches):
            self._read_whole(states)
            return
        out, rows = step_rows(self.model, caches, [int(t) for t in tokens], self._cache_arg)
        logp = torch.log_softmax(out.logits[:, -1, : self.vocab_size].float(), dim=-1).numpy()
        for row, state in enumerate(states):
            state.cache, state.logp = rows[row], logp[row]

    def _read_whole(self, states: list[LMState]) -> None:
        """Each state's whole prefix in one batch, without a cache (`next_logps`); the states'
        caches are dropped."""
        logp = self.next_logps([state.ids for state in states])
        for row, state in enumerate(states):
            state.cache, state.logp = None, logp[row]

    @torch.no_grad()
    def next_logps(self, prefixes: list[list[int]]) -> np.ndarray:
        """float32 [B, V]: the next token's log-probs after each of `prefixes` (whole token id
        lists), in one left-padded batch (each row at its own positions), without a cache."""
        longest = max(len(ids) for ids in prefixes)
        ids = torch.zeros((len(prefixes), longest), dtype=torch.long)
        mask = torch.zeros((len(prefixes), longest), dtype=torch.long)
        for row, prefix in enumerate(prefixes):
            ids[row, longest - len(prefix) :] = torch.as_tensor(prefix)
            mask[row, longest - len(prefix) :] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, **self._last_only
        )
        return torch.log_softmax(out.logits[:, -1, : self.vocab_size].float(), dim=-1).numpy()

    def greedy(
        self, prompt: np.ndarray, banned: np.ndarray, eos_id: int, max_new_tokens: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The reference's greedy continuation of `prompt`, never choosing a `banned` token (bool
        [V]), up to and including EOS or `max_new_tokens` tokens: (tokens int64 [T], log p_ref of
        each float32 [T])."""
        state = self.start(prompt)
        tokens, logps = [], []
        for t in range(max_new_tokens):
            token = int(np.argmax(np.where(banned, -np.inf, state.logp)))
            tokens.append(token)
            logps.append(state.logp[token])
            if token == eos_id or t == max_new_tokens - 1:
                break
            self.advance(state, token)
        return np.asarray(tokens, dtype=np.int64), np.asarray(logps, dtype=np.float32)
