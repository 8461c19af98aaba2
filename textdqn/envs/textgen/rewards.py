"""Rewards of textdqn/TextGen-v0: pure functions of the generated text, and the plug-ins the
env's `reward` kwarg chooses among.

A plug-in scores a finished (or partial) generation: `score(text, record) -> float`, and says
whether it met the task: `success(text, record) -> bool`. The env pays `score` at the end of
an episode, or, with `per_token=True`, its increments along the way (potential-based:
r_t = score(text after t) − score(text before t), with 0 for the empty text, so the
per-token rewards sum to the terminal one). Every plug-in scores the empty text 0.

- "coverage" (this module): fraction of the record's concepts used.
- "classifier", "similarity" (model_rewards.py): a local sequence classifier's probability of a
  label; the cosine similarity of sentence embeddings to a target text.
"""

from __future__ import annotations

import inspect
import itertools
import re
from typing import Any, Protocol

import numpy as np

from textdqn.envs.textgen.prompts import PromptRecord
from textdqn.envs.textgen.words import word_forms
from textdqn.errors import ConfigError

REWARDS = ("coverage", "classifier", "similarity")
_WORD = re.compile(r"[^\W_]+")


class Reward(Protocol):
    """What the env needs of a reward plug-in."""

    def check(self, records: list[PromptRecord]) -> None:
        """ConfigError when a record lacks what this reward needs (the env calls it at construction)."""
        ...

    def score(self, text: str, record: PromptRecord) -> float:
        """The reward of generated `text` (without the prompt) for `record`; 0 for ""."""
        ...

    def success(self, text: str, record: PromptRecord) -> bool:
        """Whether `text` does what `record` asks."""
        ...


# --- pure functions ---


def words(text: str) -> list[str]:
    """The lowercased words of `text` (runs of letters and digits; punctuation dropped)."""
    return _WORD.findall(text.lower())


def covered(text_words: list[str], concepts: tuple[str, ...] | list[str]) -> np.ndarray:
    """bool [C]: whether each concept occurs in `text_words` as a whole word or an inflected
    form of it (dogs for dog; running, ran for run; see words.word_forms)."""
    present = set(text_words)
    return np.array([not present.isdisjoint(word_forms(c)) for c in concepts], dtype=bool)


def coverage(text_words: list[str], concepts: tuple[str, ...] | list[str]) -> float:
    """Fraction of `concepts` used in `text_words` (1.0 when there are none to use)."""
    return float(covered(text_words, concepts).mean()) if len(concepts) else 1.0


def repetition(text_words: list[str]) -> float:
    """Fraction of words that repeat the word just before them ("dog dog") or complete a
    bigram seen earlier in the text ("the dog ... the dog"); in [0, 1), 0 for < 2 words.
    Repeated function words alone ("the dog and the ball") are not repetition."""
    if len(text_words) < 2:
        return 0.0
    seen: set[tuple[str, str]] = set()
    repeats = 0
    for bigram in itertools.pairwise(text_words):
        repeats += bigram[0] == bigram[1] or bigram in seen
        seen.add(bigram)
    return repeats / len(text_words)


def kl_penalty(logp_ref: np.ndarray | float, kl_coef: float) -> np.ndarray | float:
    """kl_coef · log p_ref(a_t | s_t): ≤ 0, lower for tokens the reference finds less likely.
    Summed over an episode of the policy's own tokens, it estimates −kl_coef · KL(policy ‖ ref)."""
    return kl_coef * logp_ref


# --- plug-ins ---


class CoverageReward:
    """CommonGen-style concept coverage: the fraction of the record's concepts the text uses
    (inflected forms count). Repetition is penalised by the env, for every plug-in
    (env.kwargs.repeat_penalty)."""

    def check(self, records: list[PromptRecord]) -> None:
        missing = [r.id for r in records if not r.concepts]
        if missing:
            raise ConfigError(
                f"the coverage reward needs concepts, and prompt records {missing[:5]} list none: add "
                '"concepts": [words] to every record, or choose another env.kwargs.reward'
            )

    def score(self, text: str, record: PromptRecord) -> float:
        found = words(text)
        return coverage(found, record.concepts) if found else 0.0

    def success(self, text: str, record: PromptRecord) -> bool:
        return bool(covered(words(text), record.concepts).all())


def make_reward(name: str, kwargs: dict[str, Any] | None = None) -> Reward:
    """The plug-in called `name` (one of REWARDS), built from `kwargs` (env.kwargs.reward_kwargs);
    ConfigError for an unknown name or keyword, naming what would be accepted."""
    kwargs = dict(kwargs or {})
    if name == "coverage":
        cls: Any = CoverageReward
    elif name in ("classifier", "similarity"):
        from textdqn.envs.textgen import model_rewards

        cls = model_rewards.ClassifierReward if name == "classifier" else model_rewards.SimilarityReward
    else:
        raise ConfigError(f"env.kwargs.reward = {name!r}: use one of {list(REWARDS)}")
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as e:
        moved = (
            "repeat_penalty is env.kwargs.repeat_penalty now, for every reward; "
            if "repeat_penalty" in kwargs
            else ""
        )
        raise ConfigError(
            f"env.kwargs.reward_kwargs = {kwargs!r} do not fit reward {name!r} ({e}); {moved}its arguments "
            f"are in the README (Text generation, reward plug-ins) and the docstring of {cls.__name__}. "
            "Switching rewards with --set? Replace the whole mapping: "
            "--set 'env.kwargs.reward_kwargs={path: DIR}'"
        ) from None
    return cls(**kwargs)
