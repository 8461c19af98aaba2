"""Writes the shipped prompt files, data/concepts.jsonl and data/concepts-large.jsonl, from the
word list: deterministic.

    python -m textdqn.envs.textgen.make_prompts [PATH [LARGE_PATH]]

Each record asks for one sentence with 2–4 concepts (one or two verbs, the rest nouns,
listed alphabetically, as CommonGen lists its concept sets); no concept set repeats. Of the
first 600 records every fifth is a test record (120). concepts.jsonl holds those 600;
concepts-large.jsonl goes on to 3,000, all the others train records: the same test prompts,
six times the training prompts (configs/textgen-fluent.yaml, whose policy generalises from
the ones it was shown). The draws use only `random.Random(seed).random()`,
whose sequence Python keeps the same across versions, so the file can be checked against
this module.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from textdqn.envs.textgen.prompts import LARGE_PROMPTS, SHIPPED_PROMPTS, PromptRecord
from textdqn.envs.textgen.words import concept_words

COUNT = 600
LARGE_COUNT = 3000
SEED = 0
TEMPLATES = (
    "write a sentence with: {concepts}.",
    "use these words in a sentence: {concepts}.",
    "make a short sentence about: {concepts}.",
)


def _draw(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def _pick(rng: random.Random, words: tuple[str, ...], k: int) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < k:
        word = words[_draw(rng, len(words))]
        if word not in chosen:
            chosen.append(word)
    return chosen


def make_records(count: int = COUNT, seed: int = SEED) -> list[PromptRecord]:
    """`count` concept prompts, the same for the same seed (ids cg-0000, cg-0001, ...); each
    count's records begin with a smaller count's. Test records are every fifth of the first
    COUNT, so that every count has the same test split."""
    nouns, verbs = concept_words()
    rng = random.Random(seed)
    records: list[PromptRecord] = []
    seen: set[tuple[str, ...]] = set()
    while len(records) < count:
        k = 2 + _draw(rng, 3)
        n_verbs = 1 + (k == 4 and _draw(rng, 2) == 1)
        concepts = tuple(sorted(_pick(rng, verbs, n_verbs) + _pick(rng, nouns, k - n_verbs)))
        template = TEMPLATES[_draw(rng, len(TEMPLATES))]
        if concepts in seen:
            continue
        seen.add(concepts)
        i = len(records)
        records.append(
            PromptRecord(
                id=f"cg-{i:04d}",
                prompt=template.format(concepts=", ".join(concepts)),
                split="test" if i % 5 == 4 and i < COUNT else "train",
                concepts=concepts,
            )
        )
    return records


def to_jsonl(records: list[PromptRecord]) -> str:
    """The file's text: one JSON object a line, keys in a fixed order, a final newline."""
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> None:
    """Rewrite the shipped prompt files (or those at the paths given)."""
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] + [SHIPPED_PROMPTS, LARGE_PROMPTS][len(args) :]
    for path, count in zip(paths, (COUNT, LARGE_COUNT), strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_jsonl(make_records(count)), encoding="utf-8")
        print(f"wrote {count} prompt records to {path}")


if __name__ == "__main__":
    main()
