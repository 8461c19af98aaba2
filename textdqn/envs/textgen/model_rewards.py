"""Reward plug-ins backed by local `transformers` models (nothing is downloaded).

- ClassifierReward: the probability a sequence-classification checkpoint gives one label.
- SimilarityReward: the cosine similarity of mean-pooled sentence embeddings (any AutoModel
  checkpoint) of the generated text and a target text.

Both run batch 1 under torch.no_grad in eval mode, and leave torch's thread settings alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from textdqn.envs.textgen.prompts import PromptRecord
from textdqn.errors import ConfigError
from textdqn.lm import load_local

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_MEMO = 4096  # scores remembered per plug-in (cleared when full)


def _load(path: str, auto_model: type, what: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoTokenizer

    key = "env.kwargs.reward_kwargs.path"
    model = load_local(auto_model, path, key, what)
    tokenizer = load_local(AutoTokenizer, path, key, f"{what} tokenizer")
    return model.eval(), tokenizer


class ClassifierReward:
    """The probability that a local sequence classifier gives `label` to the generated text.

    Args:
        path: local directory of an AutoModelForSequenceClassification checkpoint and tokenizer.
        label: the label, by name (as in the checkpoint's config.id2label) or index.
        success_at: an episode succeeds when the probability reaches this.
        max_length: texts are cut to this many tokens.
    """

    def __init__(self, path: str = "", label: str | int = 1, success_at: float = 0.5, max_length: int = 128):
        from transformers import AutoModelForSequenceClassification

        self.model, self.tokenizer = _load(path, AutoModelForSequenceClassification, "sequence classifier")
        self.label = self._label_index(label, path)
        self.success_at, self.max_length = float(success_at), int(max_length)
        self._scores: dict[str, float] = {}  # the env asks for a text's reward, then its success

    def check(self, records: list[PromptRecord]) -> None:
        pass  # any prompt will do

    def _label_index(self, label: str | int, path: str) -> int:
        id2label = {int(i): str(name) for i, name in self.model.config.id2label.items()}
        if isinstance(label, str) and not label.isdigit():
            index = {name: i for i, name in id2label.items()}.get(label)
        else:
            index = int(label) if int(label) in id2label else None
        if index is None:
            raise ConfigError(
                f"env.kwargs.reward_kwargs.label = {label!r} is not a label of the classifier at {path!r}; "
                f"use a name or index of {id2label}"
            )
        return index

    @torch.no_grad()
    def probabilities(self, text: str) -> torch.Tensor:
        """float [num_labels]: the classifier's label distribution for `text`."""
        inputs = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length)
        return self.model(**inputs).logits[0].float().softmax(-1)

    def score(self, text: str, record: PromptRecord) -> float:
        if not text.strip():
            return 0.0
        if text not in self._scores:
            if len(self._scores) >= _MEMO:
                self._scores.clear()
            self._scores[text] = float(self.probabilities(text)[self.label])
        return self._scores[text]

    def success(self, text: str, record: PromptRecord) -> bool:
        return self.score(text, record) >= self.success_at


class SimilarityReward:
    """Cosine similarity of the generated text's sentence embedding to a target text's.

    Embeddings are a local AutoModel's last hidden states, mean-pooled over the tokens
    (sentence-transformers' usual pooling).

    Args:
        path: local directory of a transformers encoder checkpoint and its tokenizer.
        target: the target text for every prompt; "" uses each record's "target" field.
        success_at: an episode succeeds when the similarity reaches this.
        max_length: texts are cut to this many tokens.
    """

    def __init__(self, path: str = "", target: str = "", success_at: float = 0.8, max_length: int = 128):
        from transformers import AutoModel

        self.model, self.tokenizer = _load(path, AutoModel, "sentence-embedding model")
        self.target, self.success_at, self.max_length = str(target), float(success_at), int(max_length)
        self._targets: dict[str, torch.Tensor] = {}
        self._scores: dict[tuple[str, str], float] = {}  # (text, target) -> similarity

    def check(self, records: list[PromptRecord]) -> None:
        for record in records:
            self.target_of(record)

    @torch.no_grad()
    def embed(self, text: str) -> torch.Tensor:
        """float [hidden]: the mean of `text`'s last hidden states over its tokens."""
        inputs = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length)
        hidden = self.model(**inputs).last_hidden_state[0].float()
        mask = inputs["attention_mask"][0].unsqueeze(-1).float()
        return (hidden * mask).sum(0) / mask.sum().clamp(min=1.0)

    def target_of(self, record: PromptRecord) -> str:
        """The text `record`'s generations are compared with; ConfigError when there is none."""
        target = self.target or record.target
        if not target:
            raise ConfigError(
                f"the similarity reward needs a target text, and prompt record {record.id!r} has none: add a "
                '"target" field to every record of the prompts file, or set env.kwargs.reward_kwargs.target'
            )
        return target

    def score(self, text: str, record: PromptRecord) -> float:
        target = self.target_of(record)
        if not text.strip():
            return 0.0
        if (text, target) not in self._scores:
            if target not in self._targets:
                self._targets[target] = self.embed(target)
            if len(self._scores) >= _MEMO:
                self._scores.clear()
            similarity = torch.nn.functional.cosine_similarity(self.embed(text), self._targets[target], dim=0)
            self._scores[text, target] = float(similarity)
        return self._scores[text, target]

    def success(self, text: str, record: PromptRecord) -> bool:
        return self.score(text, record) >= self.success_at
