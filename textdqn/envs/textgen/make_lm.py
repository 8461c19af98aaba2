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
COPY = 0.5
SENTENCES = (  # n: noun forms (singular, plural), v: verb forms (base, -s, -ing, past)
    "the {n0} {v1} the {n1} .",
    "a {n0} is {v2} in the {n1} .",
    "the {n0p} {v3} near the {n1} .",
    "my {n0} {v3} with a {n1} .",
    "the {n0} and the {n1} {v3} .",
    "two {n0p} are {v2} by the {n1} .",
)


def make_corpus(count: int, seed: int = 0) -> list[str]:
    """`count` training texts "prompt sentence", the same for the same seed."""
    rng = random.Random(seed)
    nouns, verbs = _entries(NOUNS), _entries(VERBS)
    by_name = {e[0]: e for e in (*nouns, *verbs)}
    texts = []
    for _ in range(count):
        concepts = [rng.choice(nouns)[0] for _ in range(rng.randint(1, 2))] + [rng.choice(verbs)[0]]
        rng.shuffle(concepts)
        prompt = rng.choice(TEMPLATES).format(concepts=", ".join(concepts))
        n0, n1 = rng.choice(nouns), rng.choice(nouns)
        v = rng.choice(verbs)
        if rng.random() < COPY:  # use one of the prompt's concepts
            pick = rng.choice(concepts)
            if len(by_name[pick]) == 4:
                v = by_name[pick]
            else:
                n0 = by_name[pick]
        fields = {"n0": n0[0], "n0p": n0[-1], "n1": n1[0], "v1": v[1], "v2": v[2], "v3": v[3]}
        texts.append(f"{prompt} {rng.choice(SENTENCES).format(**fields)}")
    return texts


def train_lm(out: Path, steps: int = 3000, batch: int = 64, count: int = 20_000, seed: int = 0) -> Path:
    """Build the GPT-2 of SPEC, train it on `count` corpus texts for `steps` steps (AdamW, one
    thread, seeded), and save it with its tokenizer to `out`."""
    from textdqn.lm import causal_lm

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(load_prompts())
    eos = tokenizer.eos_token_id
    rows = [[*tokenizer.encode(text, add_special_tokens=False), eos] for text in make_corpus(count, seed)]
    data = np.zeros((len(rows), MAX_TOKENS), dtype=np.int64)
    for i, row in enumerate(rows):
        data[i, : len(row)] = row[:MAX_TOKENS]
    data_t = torch.from_numpy(data)
    model = causal_lm(vocab_size=len(tokenizer), max_positions=MAX_TOKENS, **SPEC).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        ids = data_t[torch.randint(len(data_t), (batch,), generator=generator)]
        labels = ids.masked_fill(ids == 0, -100)
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
