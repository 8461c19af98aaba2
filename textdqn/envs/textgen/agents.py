"""TextGen-v0's baseline policies, which need no learning: the reference LM's greedy decoding
(`rule`), its samples at temperature 1 (`sample`) and the constrained beam search (`beam`); each
is a warm-start agent and an evaluation baseline (`textdqn eval --agent NAME`). A mixin of
TextGenEnv (env.py), whose episode state (prompt, prefix, reference LM state, mask) they read.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from textdqn.envs.textgen.beam import constrained_beam
from textdqn.envs.textgen.prompts import PromptRecord
from textdqn.envs.textgen.rewards import covered, words


@dataclasses.dataclass(frozen=True)
class Generation:
    """A generated continuation of one prompt and how the env scores it."""

    text: str
    tokens: np.ndarray
    reward: float
    coverage: float
    success: bool
    metrics: dict[str, float]
    """eos, judge_nll, judge_tokens, perplexity and the repetition metrics (as episode info)"""


class BaselineAgents:
    """The baseline policies of TextGenEnv (mixed into it)."""

    def reference_greedy(self, record: PromptRecord | int | None = None) -> Generation:
        """The reference LM's greedy generation for `record` (a record of this split or its index;
        default: the current one), scored as the env scores the agent's (the same total reward,
        per-token or not). Cached per record: it is deterministic."""
        if record is None:
            record = self.record
        index = record if isinstance(record, int) else self.records.index(record)
        record = self.records[index]
        if record.id not in self._greedy:
            ids, logps = self.reference.greedy(
                self._prompt_ids[index], self.banned, self.eos_id, self.max_new_tokens
            )
            self._greedy[record.id] = self._score(record, ids, float(logps.sum()))
        return self._greedy[record.id]

    def sample_action(self) -> int:
        """A token sampled from the reference LM at temperature 1 (never a banned one), with the
        env's seeded generator: the reference's own writing (`textdqn eval --agent sample`)."""
        p = np.exp(np.where(self.banned, -np.inf, self._state.logp).astype(np.float64))
        return int(self.np_random.choice(self.vocab_size, p=p / p.sum()))

    def beam_action(self) -> int:
        """The next token of this episode's text by constrained beam search under the reference
        LM over the env's own masks (beam.py), searched from the current prefix when it is not
        the plan's: the baseline without learning (`textdqn eval --agent beam`). A prompt's text
        from the start is searched once and kept (demonstrators repeat prompts), or read from
        env.kwargs.beam_plans (beam_plans.py)."""
        done = self._generated
        if not done and self._index in self._beam_plans:  # deterministic: searched once a prompt
            self._beam = self._beam_plans[self._index]
        if self._beam[: len(done)] != done or len(self._beam) <= len(done):
            self._beam = self.beam_plan()
            if not done:
                self._beam_plans[self._index] = self._beam
        return self._beam[len(done)]

    @property
    def beam_length_bonus(self) -> float:
        """The beam's ranking of finished texts, log p_ref + this · length: the fluency terms'
        objective, (token_bonus / kl_coef) · length (0 without kl_coef)."""
        return self.token_bonus / self.kl_coef if self.kl_coef > 0 else 0.0

    def beam_plan(self) -> list[int]:
        """The constrained beam search's text (token ids, EOS included when it ends) from this
        episode's prefix on: its prefix and the rest."""
        done = self._generated
        prompt = self.prompt_ids(self._index)
        seen: dict[tuple[int, ...], np.ndarray] = {}  # each prefix is asked twice: ranked, extended

        def used(prefix: list[int]) -> np.ndarray:
            key = tuple(prefix)
            if key not in seen:
                seen[key] = covered(words(self.generated_text(prefix)), self.record.concepts)
            return seen[key]

        return constrained_beam(
            lambda prefixes: self.reference.next_logps([prompt + p for p in prefixes]),
            lambda prefix, logp: self._allowed(logp, used(prefix)),
            lambda prefix: int(used(prefix).sum()),
            self.eos_id,
            self.max_new_tokens,
            start=list(done),
            length_bonus=self.beam_length_bonus,
        )

    def prompt_ids(self, index: int) -> list[int]:
        """The token ids of the split's record `index` as the reference LM reads them."""
        return [int(i) for i in self._prompt_ids[index]]

    def rule_action(self) -> int:
        """The reference LM's greedy next token (never a banned one): the reference baseline
        (`textdqn eval --agent rule`), and a warm-start policy."""
        return int(np.argmax(np.where(self.banned, -np.inf, self._state.logp)))
