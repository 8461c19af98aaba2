"""The word-level tokenizers textdqn's language envs build from their own vocabulary (the
dialogue domain's words, the text-generation prompts' words), and saving / loading them.

Built with `tokenizers` and wrapped as a `transformers` PreTrainedTokenizerFast; imported by
the functions that need them only.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textdqn.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast


def word_level_tokenizer(
    texts: Iterable[str], special_tokens: tuple[str, ...], **roles: object
) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over every word of `texts`.

    The vocabulary is `special_tokens` (ids 0, 1, ...; "[UNK]" among them), then every word,
    sorted: the same ids in every process for the same texts. Text is lowercased and split at
    whitespace and at each punctuation character; decoding joins tokens with spaces. `roles`
    go to PreTrainedTokenizerFast (pad_token="[PAD]", eos_token=..., extra_special_tokens=...).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Lowercase()
    pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")]
    )
    words: set[str] = set()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = {token: i for i, token in enumerate((*special_tokens, *sorted(words - set(special_tokens))))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", **roles)


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> Path:
    """Write `tokenizer` to `directory` (tokenizer.json + tokenizer_config.json, created if
    needed); `load_tokenizer(directory)` or `AutoTokenizer.from_pretrained` reads it back."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    return directory


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerFast:
    """A tokenizer written by `save_tokenizer` (e.g. the one in a run directory)."""
    from transformers import PreTrainedTokenizerFast

    if not (Path(directory) / "tokenizer.json").is_file():
        raise ConfigError(f"{directory} holds no tokenizer.json: pass a directory written by save_tokenizer")
    return PreTrainedTokenizerFast.from_pretrained(str(directory))
