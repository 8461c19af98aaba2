"""Tokenizers of textdqn/TextGen-v0: the word-level one built from the prompts and the word
list (no LM path given), or a local checkpoint's own; and the token ids of prompts and concepts.

`transformers` and `tokenizers` are imported by the functions that need them only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from textdqn.envs.textgen.prompts import PromptRecord
from textdqn.envs.textgen.words import vocabulary_words
from textdqn.envs.word_tokenizer import word_level_tokenizer
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
    texts = [*vocabulary_words()]
    for r in records:
        texts += [r.prompt, *r.concepts, *([r.target] if r.target else [])]
    return word_level_tokenizer(texts, SPECIAL_TOKENS, pad_token="[PAD]", eos_token="[EOS]")


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


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], chat_template: bool = False
) -> list[np.ndarray]:
    """int64 token ids of each prompt: its tokens, after the tokenizer's BOS token when it has
    one that differs from EOS (Llama-style checkpoints expect it; GPT-2 has none of its own).
    With `chat_template`, each prompt is the user turn of the tokenizer's chat template followed
    by the opening of the assistant's turn (chat_prompts), its special tokens as the template
    writes them (BOS included when the template has one)."""
    if chat_template:
        encoded = _token_ids(tokenizer, chat_prompts(tokenizer, texts))
        return [np.asarray(ids, dtype=np.int64) for ids in encoded]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    prefix = [bos] if bos is not None and bos != eos else []
    return [np.asarray(prefix + ids, dtype=np.int64) for ids in _token_ids(tokenizer, texts)]


def chat_prompts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[str]:
    """Each text as a one-turn conversation in the tokenizer's chat template: the user turn
    (after the template's default system turn, if it writes one), then the start of the
    assistant's turn, where the agent writes (add_generation_prompt). ConfigError when the
    tokenizer has no template or it cannot render a user turn."""
    conversations = [[{"role": "user", "content": text}] for text in texts]
    return list(_render(tokenizer, conversations, add_generation_prompt=True)) if conversations else []


def stop_token_id(tokenizer: PreTrainedTokenizerBase, chat_template: bool = False) -> int:
    """TextGen-v0's stop action: the tokenizer's EOS, or with `chat_template` the token that ends
    an assistant turn in its chat template (an instruct model's natural end, e.g. ChatML's
    "<|im_end|>", which need not be its EOS), falling back to EOS for a template that ends
    turns with no special token."""
    if chat_template:
        marker = "textdqn-end-of-turn-marker"
        conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
        text = _render(tokenizer, conversation)
        special = set(tokenizer.all_special_ids)
        after = text[text.rindex(marker) + len(marker) :] if marker in text else ""
        for i in _token_ids(tokenizer, [after])[0] if after else []:
            if i in special:
                return int(i)
    if tokenizer.eos_token_id is None:
        raise ConfigError(
            "the tokenizer at env.kwargs.lm.path has no eos_token (nor, for chat_template, an end-of-turn "
            "token), which TextGen-v0 needs as its stop action: set one and save it again"
        )
    return int(tokenizer.eos_token_id)


def _render(tokenizer: PreTrainedTokenizerBase, conversations: list, **options):
    """apply_chat_template(conversations) as text; ConfigError when the tokenizer has no chat
    template or it refuses the conversation."""
    from jinja2 import TemplateError

    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "env.kwargs.chat_template is true but the tokenizer at env.kwargs.lm.path has no chat template "
            "(chat_template.jinja or tokenizer_config.json): set chat_template: false, or use an instruct "
            "checkpoint imported with its template (textdqn lm import)"
        )
    try:
        return tokenizer.apply_chat_template(conversations, tokenize=False, **options)
    except (TemplateError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(
            f"the chat template of the tokenizer at env.kwargs.lm.path cannot render a user and an assistant "
            f"turn ({e}): set env.kwargs.chat_template: false"
        ) from None


def concept_ids(
    tokenizer: PreTrainedTokenizerBase, concept_lists: Iterable[Iterable[str]]
) -> list[np.ndarray]:
    """For each list of concepts (e.g. every prompt's), the int64 ids of every token that spells
    one of them, alone or after a space (BPE tokenizers spell " dog" and "dog" differently):
    the tokens the action mask always allows."""
    lists = [list(concepts) for concepts in concept_lists]
    texts = [text for concepts in lists for concept in concepts for text in (concept, " " + concept)]
    encoded = iter(_token_ids(tokenizer, texts))
    out = []
    unk = tokenizer.unk_token_id
    for number, concepts in enumerate(lists, start=1):
        ids: set[int] = set()
        for concept in concepts:
            spellings = [next(encoded), next(encoded)]
            if unk is not None and all(set(s) <= {unk} for s in spellings):
                raise ConfigError(
                    f"concept {concept!r} of prompt {number} is not in the reference LM's vocabulary (it "
                    "reads as the unknown token), so no text could ever contain it: use words its tokenizer "
                    "knows, or a reference LM whose vocabulary has them"
                )
            ids.update(i for spelling in spellings for i in spelling)
        ids.discard(unk)
        out.append(np.asarray(sorted(ids), dtype=np.int64))
    return out


def unknown_words(tokenizer: PreTrainedTokenizerBase, text: str) -> list[str]:
    """The whitespace-separated words of `text` that the tokenizer reads as its unknown token
    (none for a byte-level BPE, which spells every word)."""
    unk = tokenizer.unk_token_id
    if unk is None or not text or unk not in _token_ids(tokenizer, [text])[0]:
        return []
    found = text.split()
    return [w for w, ids in zip(found, _token_ids(tokenizer, found), strict=True) if unk in ids]


def _token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """The token ids of each text, no special tokens added: one call to the Rust tokenizer of a
    fast tokenizer (transformers' own wrapping costs more than the tokenizing), else one call."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def checked_prompt_ids(
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[PromptRecord],
    max_tokens: int,
    max_new_tokens: int,
    chat_template: bool,
    source: str,
) -> dict[str, np.ndarray]:
    """Every record's prompt as token ids, by record id; ConfigError when a prompt (of either
    split, so that train and test settings agree) leaves no room for max_new_tokens, has no
    tokens, or has a word (in its prompt or target) the tokenizer does not know. `source` names
    the prompts file ("" for the shipped one) in the errors."""
    source = source or "the shipped prompts"
    texts = [r.prompt for r in records]
    encoded = dict(zip((r.id for r in records), encode_prompts(tokenizer, texts, chat_template), strict=True))
    room = max_tokens - max_new_tokens
    longest = max(records, key=lambda r: len(encoded[r.id]))
    if len(encoded[longest.id]) > room:
        raise ConfigError(
            f"prompt {longest.id!r} of {source} has {len(encoded[longest.id])} tokens, more than "
            f"max_tokens - max_new_tokens = {room}: raise env.kwargs.max_tokens to "
            f"{len(encoded[longest.id]) + max_new_tokens} or shorten the prompt"
        )
    if any(len(ids) == 0 for ids in encoded.values()):
        raise ConfigError(f"a prompt of {source} has no tokens; write some text in every prompt")
    for record in records:
        for field, text in (("prompt", record.prompt), ("target", record.target or "")):
            unknown = unknown_words(tokenizer, text)
            if unknown:
                raise ConfigError(
                    f"the {field} of prompt record {record.id!r} in {source} has words the reference "
                    f"LM's tokenizer does not know ({unknown[:5]} read as its unknown token, so the "
                    "agent could neither read nor write them): reword it with words the vocabulary has, "
                    "or use a reference LM (env.kwargs.lm) whose tokenizer has them"
                )
    return encoded
