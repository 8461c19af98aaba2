"""ReferenceLM's batched reads: one token a row on stacked, left-padded KV caches gives each
prefix the log-probs of reading it alone, for GPT-2 (learned positions) and a Llama (rotary
positions, grouped KV heads: SmolLM2's architecture)."""

import copy

import numpy as np
import pytest

from tests.tiny_llama import tiny_llama
from textdqn.envs.textgen.reference import ReferenceLM
from textdqn.lm import causal_lm

VOCAB = 60


def _llama():
    return tiny_llama(VOCAB)


@pytest.mark.parametrize(
    "make", [lambda: causal_lm(vocab_size=VOCAB, max_positions=64), _llama], ids=["gpt2", "llama"]
)
def test_batched_reads_on_stacked_caches_equal_reading_each_prefix_alone(make):
    lm = ReferenceLM(make(), VOCAB, 40)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(1, VOCAB, n) for n in (3, 9, 5, 1)]
    batched = [lm.start(p) for p in prompts]
    alone = [copy.deepcopy(s) for s in batched]
    for _ in range(6):  # rows of different lengths, growing: the padding moves each step
        tokens = [int(t) for t in rng.integers(1, VOCAB, len(prompts))]
        lm.advance_batch(batched, tokens)
        for state, token in zip(alone, tokens, strict=True):
            lm.advance(state, token)
        for b, a in zip(batched, alone, strict=True):
            assert b.ids == a.ids and b.cache is not None
            np.testing.assert_allclose(b.logp, a.logp, atol=1e-4)
            assert b.cache.get_seq_length() == len(b.ids)  # each row keeps only its own positions
    without = [lm.start(p) for p in prompts]  # a state without a cache is read whole
    without[1].cache = None
    lm.advance_batch(without, [5, 6, 7, 8])
    for s, p, t in zip(without, prompts, [5, 6, 7, 8], strict=True):
        fresh = lm.start(np.append(p, t))
        np.testing.assert_allclose(s.logp, fresh.logp, atol=1e-4)
        assert s.cache is None
