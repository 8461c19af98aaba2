"""What the shipped similarity task reads: prompts with target sentences and a small sentence
encoder, both made here, deterministically (nothing is downloaded).

    python -m textdqn.envs.textgen.make_similarity [DATA_DIR]   # default: the package's data/

- data/similarity-prompts.jsonl: the shipped concept prompts (make_prompts), each with a
  "target": one of the reference LM's corpus sentence shapes (make_lm.SENTENCES) whose noun
  and verb slots match the record's concepts, filled with them in a seeded order, e.g. "the
  farmer kicked the ball in the park ." for (ball, farmer, kick, park).
- data/lemma-encoder/: a BERT without transformer layers, saved with the prompts' word-level
  tokenizer. Every form of a listed noun or verb ("kick", "kicks", "kicked", "kicking") has
  the same seeded random embedding; function words, punctuation and special tokens have a zero
  one, and position and segment embeddings are zero. Its mean-pooled last hidden states are
  the texts' bags of content lemmas projected to 128 dimensions, so the similarity plug-in's
  cosine measures which content words two texts share, in any inflection, ignoring word order
  and function words. It is a stand-in for a real sentence-embedding checkpoint (e.g.
  all-MiniLM-L6-v2, see the README) that tests and CI can build.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

from textdqn.envs.textgen.make_lm import SENTENCES, _slots, slot_fields
from textdqn.envs.textgen.make_prompts import make_records, to_jsonl
from textdqn.envs.textgen.prompts import PromptRecord, load_prompts
from textdqn.envs.textgen.tokens import build_tokenizer
from textdqn.envs.textgen.words import NOUNS, VERBS, _entries
from textdqn.envs.word_tokenizer import save_tokenizer

DATA = Path(__file__).parent / "data"
PROMPTS_NAME = "similarity-prompts.jsonl"
ENCODER_NAME = "lemma-encoder"
WIDTH = 128
SEED = 0


def _shape_counts(sentence: str) -> tuple[int, int]:
    """(nouns, verbs): the distinct noun and verb slots of a corpus sentence shape."""
    slots = {name[:2] for name in _slots(sentence)}
    return sum(s[0] == "n" for s in slots), sum(s[0] == "v" for s in slots)


def target_sentence(concepts: tuple[str, ...], rng: random.Random) -> str:
    """A corpus-shaped sentence using exactly `concepts` (listed nouns and verbs), each once."""
    nouns = {e[0]: e for e in _entries(NOUNS)}
    verbs = {e[0]: e for e in _entries(VERBS)}
    chosen_n = [nouns[c] for c in concepts if c in nouns]
    chosen_v = [verbs[c] for c in concepts if c in verbs]
    if len(chosen_n) + len(chosen_v) != len(concepts):
        raise ValueError(f"{concepts} are not all listed nouns and verbs")
    shapes = [s for s in SENTENCES if _shape_counts(s) == (len(chosen_n), len(chosen_v))]
    if not shapes:
        raise ValueError(f"no sentence shape has {len(chosen_n)} nouns and {len(chosen_v)} verbs")
    sentence = shapes[int(rng.random() * len(shapes))]
    rng.shuffle(chosen_n)
    rng.shuffle(chosen_v)
    fields = {}
    for kind, chosen in (("n", chosen_n), ("v", chosen_v)):
        for i, entry in enumerate(chosen):
            fields.update(slot_fields(f"{kind}{i}", entry))
    return sentence.format(**fields)


def make_target_records(seed: int = SEED) -> list[PromptRecord]:
    """The shipped concept prompts, each with its target sentence (the same for the same seed)."""
    rng = random.Random(seed)
    return [
        PromptRecord(r.id, r.prompt, r.split, r.concepts, target_sentence(r.concepts, rng))
        for r in make_records()
    ]


def make_encoder(out: Path, width: int = WIDTH, seed: int = SEED) -> Path:
    """Save the lemma encoder (a layerless BERT and the prompts' tokenizer) to `out`."""
    from transformers import BertConfig, BertModel

    tokenizer = build_tokenizer(load_prompts())  # the shipped LM's tokenizer (make_lm)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        num_hidden_layers=0,
        num_attention_heads=1,
        intermediate_size=width,
        max_position_embeddings=512,  # all zero: as long as the plug-in's max_length allows
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertModel(config).eval()  # its pooler is never used: the plug-in mean-pools
    generator = torch.Generator().manual_seed(seed)
    weight = torch.zeros(len(tokenizer), width)
    vocab = tokenizer.get_vocab()
    for entry in (*_entries(NOUNS), *_entries(VERBS)):
        vector = torch.randn(width, generator=generator)
        for form in entry:
            if form in vocab:
                weight[vocab[form]] = vector
    with torch.no_grad():
        embeddings = model.embeddings
        embeddings.word_embeddings.weight.copy_(weight)
        embeddings.position_embeddings.weight.zero_()
        embeddings.token_type_embeddings.weight.zero_()
        embeddings.LayerNorm.weight.fill_(1.0)
        embeddings.LayerNorm.bias.zero_()
        for parameter in model.pooler.parameters():  # unused (the plug-in mean-pools): zero it
            parameter.zero_()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    save_tokenizer(tokenizer, out)
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    data = Path(args[0]) if args else DATA
    data.mkdir(parents=True, exist_ok=True)
    (data / PROMPTS_NAME).write_text(to_jsonl(make_target_records()), encoding="utf-8")
    print(f"wrote {data / PROMPTS_NAME} and {make_encoder(data / ENCODER_NAME)}")


if __name__ == "__main__":
    main()
