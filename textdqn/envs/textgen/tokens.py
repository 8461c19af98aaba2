"""Tokenizers of textdqn/TextGen-v0: the word-level one built from the prompts and the word
list (no LM path given), or a local checkpoint's own; and the token ids of prompts and concepts.

`transformers` and `tokenizers` are imported by the functions that need them only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textdqn.envs.textgen.prompts import PromptRecord
from textdqn.envs.textgen.words import vocabulary_words
from textdqn.errors import ConfigError
from textdqn.lm import load_local

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[EOS]")
"""Ids 0..2 of the word-level tokenizer, in this order; [PAD] = 0 pads observations."""


def build_tokenizer(records: Iterable[PromptRecord]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the words of `records` (prompts, concepts, targets; both
    splits, so that train and test envs agree) and of the word list (every listed form).

    The vocabulary is SPECIAL_TOKENS (ids 0..2), then every word, sorted: the same ids in every
    process for the same records. Text is lowercased and split at whitespace and at each
    punctuation character; decoding joins tokens with spaces.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Lowercase()
    pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    texts = [*vocabulary_words()]
    for r in records:
        texts += [r.prompt, *r.concepts, *([r.target] if r.target else [])]
    words: set[str] = set()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *sorted(words - set(SPECIAL_TOKENS))))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )


def load_lm_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved with the local checkpoint at `path`; ConfigError when there is none
    or it has no end-of-sequence token (the env's stop action)."""
    from transformers import AutoTokenizer

    tokenizer = load_local(AutoTokenizer, path, "env.kwargs.lm.path", "causal LM tokenizer")
    if tokenizer.eos_token_id is None:
        raise ConfigError(
            f"the tokenizer at env.kwargs.lm.path = {path!r} has no eos_token, which TextGen-v0 needs as "
            "its stop action: set one (tokenizer.eos_token = '...'; tokenizer.save_pretrained(path))"
        )
    return tokenizer


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> np.ndarray:
    """int64 token ids of a prompt: its tokens, after the tokenizer's BOS token when it has one
    that differs from EOS (Llama-style checkpoints expect it; GPT-2 has none of its own)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if bos is not None and bos != eos:
        ids = [bos, *ids]
    return np.asarray(ids, dtype=np.int64)


def concept_ids(tokenizer: PreTrainedTokenizerBase, concepts: Iterable[str]) -> np.ndarray:
    """int64 ids of every token that spells a concept, alone or after a space (BPE tokenizers
    spell " dog" and "dog" differently): the tokens the action mask always allows."""
    ids: set[int] = set()
    for concept in concepts:
        for text in (concept, " " + concept):
            ids.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    ids.discard(tokenizer.unk_token_id)
    return np.asarray(sorted(ids), dtype=np.int64)


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> Path:
    """Write `tokenizer` to `directory` (created if needed); AutoTokenizer.from_pretrained reads it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    return directory
