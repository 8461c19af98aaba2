"""Constrained beam search under the reference LM: concept-to-text's classic baseline without
learning (lexically constrained decoding, as CommonGen's baselines; the beams are kept per number
of constraints met, as in grid beam search, Hokamp and Liu 2017).

It searches the env's own action space (the same masks the agent acts under) for the text its
fluency terms value most: the highest log p_ref(text) + length_bonus · length among the texts
that end with EOS. So it shows what the reward's fluency objective is worth at best, and how far
a learned policy is from it. Pure functions of callables: the env supplies the LM and the masks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BEAM_WIDTH = 32
"""beams kept for each number of concepts used (32: wider beams found no better text on the
shipped test prompts)"""

NextLogps = Callable[[list[list[int]]], np.ndarray]
"""generated prefixes -> float [B, V]: log p_ref of the next token after the prompt and each prefix"""
Mask = Callable[[list[int], np.ndarray], np.ndarray]
"""(a generated prefix, its next-token log-probs) -> bool [V]: the actions allowed after it"""
Progress = Callable[[list[int]], int]
"""a generated prefix -> how many of the record's concepts it uses"""


def constrained_beam(
    next_logps: NextLogps,
    mask: Mask,
    progress: Progress,
    eos_id: int,
    max_new_tokens: int,
    start: list[int] | None = None,
    length_bonus: float = 0.0,
    width: int = BEAM_WIDTH,
) -> list[int]:
    """The best continuation of `start` (default: none yet) found: token ids, EOS included when
    the text ends. Each step extends every beam by each allowed token and keeps the `width`
    likeliest of each progress count; a beam that chose EOS is finished. The best finished text
    maximises log p + length_bonus · length; when none finished within max_new_tokens, the
    likeliest beam of the most progress (a text cut at the limit)."""
    beams: list[tuple[list[int], float]] = [(list(start or []), 0.0)]
    finished: list[tuple[list[int], float]] = []
    while beams and len(beams[0][0]) < max_new_tokens:
        candidates = []
        for (prefix, score), logp in zip(beams, next_logps([b for b, _ in beams]), strict=True):
            for token in np.flatnonzero(mask(prefix, logp)):
                candidates.append(([*prefix, int(token)], score + float(logp[token])))
        candidates.sort(key=lambda c: -c[1])
        kept: dict[int, int] = {}
        beams = []
        for prefix, score in candidates:
            if prefix[-1] == eos_id:
                finished.append((prefix, score))
                continue
            count = progress(prefix)
            if kept.get(count, 0) < width:
                kept[count] = kept.get(count, 0) + 1
                beams.append((prefix, score))
    if finished:
        return max(finished, key=lambda c: c[1] + length_bonus * len(c[0]))[0]
    return max(beams, key=lambda c: (progress(c[0]), c[1]))[0]
