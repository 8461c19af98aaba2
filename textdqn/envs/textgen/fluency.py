"""What a reader notices in a generated text besides the task: how likely a language model
finds it (perplexity under a fluency judge), how much it repeats itself, and whether it ends.

Pure functions of the text's words, and `Judge`, a local causal LM that scores a text after
its prompt. TextGen-v0 reports these for every episode (env.py) and aggregates them over an
evaluation (`evaluation_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from textdqn.envs.textgen.rewards import words
from textdqn.envs.textgen.tokens import encode_prompts
from textdqn.errors import ConfigError
from textdqn.lm import shared_causal_lm

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def ngrams(text_words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of `text_words`, in order."""
    return [tuple(text_words[i : i + n]) for i in range(len(text_words) - n + 1)]


def distinct(text_words: Sequence[str], n: int) -> float:
    """distinct-n (Li et al. 2016) of one text: unique n-grams / n-grams; 1.0 when it has none."""
    grams = ngrams(text_words, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def repeated_ngrams(text_words: Sequence[str], n: int = 3) -> float:
    """Fraction of the text's n-grams that already occurred earlier in it (0 when it has none):
    "the dog runs the dog runs" repeats 2 of its 4 trigrams."""
    grams = ngrams(text_words, n)
    if not grams:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)


def text_metrics(text_words: Sequence[str]) -> dict[str, float]:
    """Repetition metrics of one text: distinct_1, distinct_2, repeated_3grams and words."""
    return {
        "distinct_1": distinct(text_words, 1),
        "distinct_2": distinct(text_words, 2),
        "repeated_3grams": repeated_ngrams(text_words, 3),
        "words": float(len(text_words)),
    }


def perplexity(nll: float, tokens: float) -> float:
    """exp(nll / tokens): the perplexity of `tokens` tokens whose negative log-likelihoods sum to
    `nll` (nats); 1.0 for no tokens."""
    return math.exp(nll / tokens) if tokens > 0 else 1.0


def corpus_distinct(texts_words: Sequence[Sequence[str]], n: int) -> float:
    """distinct-n over a corpus (Li et al. 2016's own form): unique n-grams of all the texts over
    their n-grams (none across two texts); 1.0 when they have none. Low when many texts share
    one shape, though each text alone repeats nothing."""
    grams = [gram for text_words in texts_words for gram in ngrams(text_words, n)]
    return len(set(grams)) / len(grams) if grams else 1.0


def evaluation_metrics(means: dict[str, float], texts: Sequence[str] = ()) -> dict[str, float]:
    """What an evaluation adds to the means of TextGen-v0's episode infos: `judge_perplexity`,
    the corpus perplexity of all the evaluated texts under the judge (exp of their summed
    negative log-likelihood over their summed tokens: the ratio of the two means), and, given
    the texts, `corpus_distinct_2` (corpus_distinct: how varied the texts are as a set)."""
    out = {}
    if "judge_nll_mean" in means and "judge_tokens_mean" in means:
        out["judge_perplexity"] = perplexity(means["judge_nll_mean"], means["judge_tokens_mean"])
    if texts:
        out["corpus_distinct_2"] = corpus_distinct([words(t) for t in texts], 2)
    return out


class Judge:
    """A local causal LM (its own tokenizer) scoring generated text as a continuation of its
    prompt: the negative log-likelihood of the text's tokens, and of the model's EOS after them
    when the text ended there. Batch 1, torch.no_grad; scores of a text are remembered.

    Args:
        model: a causal LM in eval mode.
        tokenizer: its tokenizer (it needs an eos_token).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self._memo: dict[tuple[str, str, bool], tuple[float, int]] = {}

    @torch.no_grad()
    def nll(self, prompt: str, text: str, ended: bool) -> tuple[float, int]:
        """(summed negative log-likelihood in nats, number of tokens scored) of `text` after
        `prompt`, its EOS included when `ended`. (0.0, 0) for an empty text that did not end."""
        key = (prompt, text, ended)
        if key not in self._memo:
            if len(self._memo) >= 4096:
                self._memo.clear()
            self._memo[key] = self._score(prompt, text, ended)
        return self._memo[key]

    def _score(self, prompt: str, text: str, ended: bool) -> tuple[float, int]:
        tok = self.tokenizer
        context = encode_prompts(tok, [prompt])[0].tolist()  # BOS as the env writes prompts
        spaced = (" " + text) if text and not text.startswith(" ") else text
        scored = tok(spaced, add_special_tokens=False)["input_ids"] if text else []
        scored = scored + ([tok.eos_token_id] if ended else [])
        if not scored:
            return 0.0, 0
        ids = torch.as_tensor([context + scored])
        logits = self.model(input_ids=ids).logits[0, len(context) - 1 : -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp[torch.arange(len(scored)), torch.as_tensor(scored)]
        return float(-picked.sum()), len(scored)


def make_judge(spec: dict[str, Any] | None) -> Judge | None:
    """The fluency judge of env.kwargs.judge ({"path": local causal LM}); None for the reference."""
    if not spec:
        return None
    unknown = sorted(set(spec) - {"path"})
    if unknown or not spec.get("path"):
        raise ConfigError(
            f"env.kwargs.judge = {spec!r}: give {{path: DIR}}, a local causal LM checkpoint with its "
            "tokenizer (or leave judge out: the reference LM judges)"
        )
    from transformers import AutoTokenizer

    from textdqn.lm import load_local

    path = str(spec["path"])
    tokenizer = load_local(AutoTokenizer, path, "env.kwargs.judge.path", "causal LM tokenizer")
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"the judge's tokenizer at {path!r} has no eos_token: set one and save it again")
    return Judge(shared_causal_lm(path), tokenizer)
