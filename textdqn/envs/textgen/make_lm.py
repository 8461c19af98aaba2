"""The small reference LM shipped for the concept task: a GPT-2 built from a config, trained
on a corpus this module writes, with the word-level tokenizer of the shipped prompts.

    python -m textdqn.envs.textgen.make_lm [DIR]     # default: the package's data/concepts-lm

The corpus pairs a concept prompt (the shipped prompt templates over random concepts of the
word list) with a simple sentence made from templates; in a fraction `COPY` of the pairs the
sentence uses one of the prompt's concepts, otherwise none. The LM so learns the format
(prompt, a sentence, EOS) and a weak habit of using a concept: a fluent, partly compliant
reference, whose greedy text covers some concepts and whose top-k leaves room to cover all.
Configs name the result `lm: {path: "textdqn:envs/textgen/data/concepts-lm"}`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch

from textdqn.envs.textgen.make_prompts import TEMPLATES
from textdqn.envs.textgen.prompts import load_prompts
from textdqn.envs.textgen.tokens import build_tokenizer
from textdqn.envs.textgen.words import NOUNS, VERBS, _entries
from textdqn.envs.word_tokenizer import save_tokenizer

SHIPPED_LM = Path(__file__).parent / "data" / "concepts-lm"
SPEC = {"layers": 2, "width": 64, "heads": 4, "seed": 0}
MAX_TOKENS = 40
COPY = 0.35
"""probability that a content slot of a corpus sentence holds an unused prompt concept of its
kind (noun or verb) rather than a word drawn at random"""
ZIPF = 1.5
"""exponent of the random words' Zipf distribution (over a seeded ranking of each word list)"""
SENTENCES = (  # n<i>: noun i (n<i>p its plural); v<i>: verb i as base, s, ing, ed (its past)
    "the {n0} {v0s} .",
    "the {n0} {v0s} the {n1} .",
    "a {n0} is {v0ing} in the {n1} .",
    "the {n0p} {v0ed} near the {n1} .",
    "my {n0} {v0ed} with a {n1} .",
    "the {n0} and the {n1} {v0ed} .",
    "two {n0p} are {v0ing} by the {n1} .",
    "the {n0} {v0ed} the {n1} in the {n2} .",
    "a {n0} and a {n1} {v0ed} near the {n2} .",
    "the {n0} with the {n1} {v0s} in the {n2} .",
    "the {n0} {v0s} and {v1s} .",
    "the {n0} {v0ed} and then {v1ed} the {n1} .",
    "the {n0} {v0s} while the {n1} {v1s} .",
    "a {n0} is {v0ing} and {v1ing} by the {n1} .",
    "the {n0p} {v0ed} the {n1} and {v1ed} near the {n2} .",
)
"""the corpus's sentence shapes: one to three nouns, one or two verbs (every mix of concepts
the shipped prompts ask for fits at least one)"""


def _zipf(rng: random.Random, count: int) -> tuple[list[int], list[float]]:
    """A seeded ranking of `count` words and their Zipf weights (rank r: 1 / r ** ZIPF)."""
    order = list(range(count))
    rng.shuffle(order)
    return order, [1.0 / (rank + 1) ** ZIPF for rank in range(count)]


def make_corpus(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` training pairs (prompt, sentence), the same for the same seed.

    A prompt lists 2–4 concepts (one or two verbs, the rest nouns, as the shipped prompts);
    the sentence is one of SENTENCES, each content slot holding an unused concept of its kind
    with probability COPY, else a word drawn Zipf-distributed. So the LM learns sentence
    shapes with up to five content words, a common-words habit (its greedy text writes the
    frequent words, few concepts), and a weak pull towards the prompt's concepts.
    """
    rng = random.Random(seed)
    nouns, verbs = _entries(NOUNS), _entries(VERBS)
    kinds = {"n": (nouns, _zipf(rng, len(nouns))), "v": (verbs, _zipf(rng, len(verbs)))}
    texts = []
    for _ in range(count):
        k = rng.randint(2, 4)
        n_verbs = 2 if k == 4 and rng.random() < 0.5 else 1
        wanted = {"n": rng.sample(nouns, k - n_verbs), "v": rng.sample(verbs, n_verbs)}
        concepts = [e[0] for e in (*wanted["n"], *wanted["v"])]
        prompt = rng.choice(TEMPLATES).format(concepts=", ".join(sorted(concepts)))
        sentence = rng.choice(SENTENCES)
        fields = {}
        for slot in sorted({name[:2] for name in _slots(sentence)}):
            entries, (order, weights) = kinds[slot[0]]
            if wanted[slot[0]] and rng.random() < COPY:
                entry = wanted[slot[0]].pop(rng.randrange(len(wanted[slot[0]])))
            else:
                entry = entries[order[rng.choices(range(len(order)), weights)[0]]]
            fields.update(slot_fields(slot, entry))
        texts.append((prompt, sentence.format(**fields)))
    return texts


def slot_fields(slot: str, entry: tuple[str, ...]) -> dict[str, str]:
    """A SENTENCES slot ("n0", "v1") filled with a word list entry: a noun's base form and
    plural ("n0", "n0p"), a verb's base, s, ing and ed forms ("v1", "v1s", "v1ing", "v1ed")."""
    if slot[0] == "n":
        return {slot: entry[0], slot + "p": entry[-1]}
    return {slot + suffix: form for suffix, form in zip(("", "s", "ing", "ed"), entry, strict=True)}


def _slots(sentence: str) -> list[str]:
    return [part.split("}")[0] for part in sentence.split("{")[1:]]


def train_lm(out: Path, steps: int = 4000, batch: int = 64, count: int = 50_000, seed: int = 0) -> Path:
    """Build the GPT-2 of SPEC, train it on `count` corpus pairs for `steps` steps (AdamW, one
    thread, seeded), and save it with its tokenizer to `out`. The loss covers the sentence and
    its EOS only: the env never asks the LM to write a prompt."""
    from textdqn.lm import causal_lm

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(load_prompts())
    eos = tokenizer.eos_token_id
    pairs = make_corpus(count, seed)
    data = np.zeros((len(pairs), MAX_TOKENS), dtype=np.int64)
    scored = np.zeros((len(pairs), MAX_TOKENS), dtype=bool)  # the sentence's tokens and EOS
    for i, (prompt, sentence) in enumerate(pairs):
        head = tokenizer.encode(prompt, add_special_tokens=False)
        row = [*head, *tokenizer.encode(sentence, add_special_tokens=False), eos][:MAX_TOKENS]
        data[i, : len(row)] = row
        scored[i, len(head) : len(row)] = True
    data_t, scored_t = torch.from_numpy(data), torch.from_numpy(scored)
    model = causal_lm(vocab_size=len(tokenizer), max_positions=MAX_TOKENS, **SPEC).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        rows = torch.randint(len(data_t), (batch,), generator=generator)
        ids = data_t[rows]
        labels = ids.masked_fill(~scored_t[rows], -100)
        loss = model(input_ids=ids, attention_mask=(ids != 0).long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step}: loss {loss.item():.3f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(str(out))
    save_tokenizer(tokenizer, out)
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else SHIPPED_LM
    print(f"wrote {train_lm(out)}")


if __name__ == "__main__":
    main()
