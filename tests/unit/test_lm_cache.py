"""Acting with KV caches (network.kv_cache): an LM Q-network's Q-values from per-row caches,
read one new token a row, equal a forward pass over the whole rows, through growing texts,
new episodes and weight changes, for GPT-2 and a Llama (SmolLM2's architecture)."""

import numpy as np
import pytest
import torch

from tests.tiny_llama import tiny_llama
from textdqn.lm import causal_lm
from textdqn.lm_cache import FullRead, PrefixCache, acting_q
from textdqn.lm_network import LMQNetwork

VOCAB, T = 60, 24


def _llama():
    return tiny_llama(VOCAB)


def _rows(texts: list[list[int]]) -> torch.Tensor:
    obs = np.zeros((len(texts), 1 + T), dtype=np.int64)
    for row, text in enumerate(texts):
        obs[row, 0] = len(text)
        obs[row, 1 : 1 + len(text)] = text
    return torch.as_tensor(obs)


@pytest.mark.parametrize(
    "make", [lambda: causal_lm(vocab_size=VOCAB, max_positions=64), _llama], ids=["gpt2", "llama"]
)
def test_cached_q_values_equal_whole_rows_through_new_episodes_and_weight_changes(make):
    net = LMQNetwork(make(), dueling=True, q_scale=0.5).eval()
    torch.nn.init.normal_(net.value.weight)  # a V head that is not zero, so it is checked too
    cached, rng = acting_q(net, kv_cache=True), np.random.default_rng(0)
    assert isinstance(cached, PrefixCache) and isinstance(acting_q(net, kv_cache=False), FullRead)
    texts = [list(rng.integers(1, VOCAB, n)) for n in (3, 7, 5)]
    for step in range(16):
        obs = _rows(texts)
        with torch.no_grad():
            whole = net(obs)
        torch.testing.assert_close(cached(obs), whole, atol=1e-4, rtol=1e-4)
        for row, text in enumerate(texts):
            if len(text) >= 12 or (step == 5 and row == 1):  # a new episode: a new prompt
                texts[row] = list(rng.integers(1, VOCAB, int(rng.integers(2, 8))))
            else:
                text.append(int(rng.integers(1, VOCAB)))
        if step == 9:  # the learner's new weights: the caches must go
            with torch.no_grad():
                for p in net.parameters():
                    p.add_(0.01 * torch.randn_like(p))
            cached.clear()
    assert cached.cached_reads >= 30  # most rows took the cached path (48 reads, a few new prompts)


def test_cached_q_values_in_bfloat16_and_for_a_batch_that_changes_size():
    net = LMQNetwork(_llama(), dueling=True, q_scale=0.5).eval().to(torch.bfloat16)
    cached, rng = PrefixCache(net), np.random.default_rng(1)
    texts = [list(rng.integers(1, VOCAB, n)) for n in (4, 6)]
    for step in range(8):
        if step == 4:  # another caller's batch size: every row is read anew
            texts.append(list(rng.integers(1, VOCAB, 3)))
        obs = _rows(texts)
        with torch.no_grad():
            whole = net(obs)
        q = cached(obs)
        assert q.dtype == torch.float32 and whole.dtype == torch.float32
        torch.testing.assert_close(q, whole, atol=0.1, rtol=0.05)  # bfloat16's precision
        for text in texts:
            text.append(int(rng.integers(1, VOCAB)))
    assert cached.cached_reads == 3 * 2 + 3 * 3  # all but the first call and the one after the change


def test_a_cache_with_sliding_window_layers_is_a_clear_config_error():
    from transformers import MistralConfig, MistralForCausalLM

    from textdqn.errors import ConfigError

    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, sliding_window=4,
    )  # fmt: skip
    cached = PrefixCache(LMQNetwork(MistralForCausalLM(config).eval()))
    with pytest.raises(
        ConfigError, match=r"MistralForCausalLM's KV cache .* cannot be stacked.*kv_cache false"
    ):
        cached(_rows([[3, 5, 6, 7]]))
    assert cached._ids == [] and cached.cached_reads == 0  # nothing half-kept
