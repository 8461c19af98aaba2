"""The small reference LM shipped for the concept task, and the corpus it was trained on."""

import gymnasium as gym
import numpy as np

import textdqn.envs  # noqa: F401  (registers the envs)
from textdqn.envs.textgen.make_lm import SHIPPED_LM, make_corpus
from textdqn.envs.textgen.rewards import coverage, words
from textdqn.lm import resolve_path

SHIPPED = "textdqn:envs/textgen/data/concepts-lm"


def test_package_paths_resolve_to_the_shipped_checkpoint():
    assert resolve_path(SHIPPED) == str(SHIPPED_LM)
    assert (SHIPPED_LM / "model.safetensors").is_file() and (SHIPPED_LM / "tokenizer.json").is_file()
    assert resolve_path("/elsewhere/lm") == "/elsewhere/lm"


def test_corpus_is_deterministic_and_its_sentences_use_some_of_the_prompts_concepts():
    pairs = make_corpus(2000, seed=3)
    assert pairs == make_corpus(2000, seed=3) and pairs != make_corpus(2000, seed=4)
    prompt, sentence = pairs[0]
    assert ":" in prompt and sentence.endswith(" .")
    used = []
    for prompt, sentence in pairs:
        concepts = prompt.split(": ", 1)[1].rstrip(".").split(", ")
        used.append(coverage(words(sentence), concepts))
    # Each content slot copies an unused concept with probability COPY: a weak pull, not a habit.
    assert 0.15 < np.mean(used) < 0.5 and np.mean(np.array(used) == 0) > 0.2


def test_shipped_lm_writes_sentences_that_cover_few_concepts():
    env = gym.make("textdqn/TextGen-v0", split="test", lm={"path": SHIPPED}).unwrapped
    greedy = [env.reference_greedy(i) for i in range(40)]
    assert all(g.text and g.text.split()[0] in ("the", "a", "two", "my") for g in greedy)  # sentences
    assert np.mean([g.coverage for g in greedy]) < 0.3  # a weak reference: room for the agent
    _, info = env.reset(seed=0)
    assert info["action_mask"].sum() >= env.top_k and info["action_mask"][env.eos_id]


def test_envs_of_one_process_share_one_reference_lm():
    a = gym.make("textdqn/TextGen-v0", lm={"path": SHIPPED}).unwrapped
    b = gym.make("textdqn/TextGen-v0", split="test", lm={"path": SHIPPED}).unwrapped
    assert a.reference.model is b.reference.model
    assert not any(p.requires_grad for p in a.reference.model.parameters())


def test_gpt2s_tanh_gelu_loads_as_the_fused_kernel_computing_the_same_logits():
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.activations import GELUTanh, NewGELUActivation

    from textdqn.lm import causal_lm

    stock = AutoModelForCausalLM.from_pretrained(str(SHIPPED_LM)).eval()  # the checkpoint's gelu_new
    loaded, built = causal_lm(SHIPPED), causal_lm(vocab_size=50, max_positions=8)
    assert isinstance(stock.transformer.h[0].mlp.act, NewGELUActivation)
    for lm in (loaded, built):
        assert all(isinstance(block.mlp.act, GELUTanh) for block in lm.transformer.h)
    tokens = torch.randint(1, stock.config.vocab_size, (8, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded(tokens).logits, stock(tokens).logits, atol=1e-4)
