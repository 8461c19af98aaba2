"""The small reference LM shipped for the concept task, and the corpus it was trained on."""

import gymnasium as gym
import numpy as np

import textdqn.envs  # noqa: F401  (registers the envs)
from textdqn.envs.textgen.make_lm import SHIPPED_LM, make_corpus
from textdqn.lm import resolve_path

SHIPPED = "textdqn:envs/textgen/data/concepts-lm"


def test_package_paths_resolve_to_the_shipped_checkpoint():
    assert resolve_path(SHIPPED) == str(SHIPPED_LM)
    assert (SHIPPED_LM / "model.safetensors").is_file() and (SHIPPED_LM / "tokenizer.json").is_file()
    assert resolve_path("/elsewhere/lm") == "/elsewhere/lm"


def test_corpus_is_deterministic_and_uses_a_concept_in_about_half_the_pairs():
    texts = make_corpus(400, seed=3)
    assert texts == make_corpus(400, seed=3) and texts != make_corpus(400, seed=4)
    prompt, sentence = texts[0].split(". ", 1)
    assert ":" in prompt and sentence.endswith(" .")


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
