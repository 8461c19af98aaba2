"""TextGen-v0 reward plug-ins on hand-made texts: coverage with inflections, the repetition
penalty, potential-based per-token rewards, the KL penalty, and the classifier and
similarity rewards on tiny BERTs saved to a temporary directory."""

import numpy as np
import pytest
import torch

from textdqn.envs.textgen.env import TextGenEnv
from textdqn.envs.textgen.prompts import PromptRecord, load_prompts
from textdqn.envs.textgen.rewards import (
    CoverageReward,
    coverage,
    covered,
    kl_penalty,
    make_reward,
    repetition,
    words,
)
from textdqn.envs.textgen.tokens import build_tokenizer
from textdqn.envs.word_tokenizer import save_tokenizer
from textdqn.errors import ConfigError

CONCEPTS = ("dog", "ball", "park", "run")
RECORD = PromptRecord(id="r", prompt="use: dog, ball, park, run", split="train", concepts=CONCEPTS)


def test_coverage_matches_whole_words_and_their_inflections():
    assert words("The dogs ran, to the PARK!") == ["the", "dogs", "ran", "to", "the", "park"]
    assert list(covered(words("The dogs ran to the park."), RECORD.concepts)) == [True, False, True, True]
    assert coverage(words("The dogs ran to the park."), RECORD.concepts) == 0.75
    assert coverage(words("dogma balloons parking rung"), RECORD.concepts) == 0.0  # not whole words
    assert coverage(words("running with balls"), ("run", "ball", "jog")) == pytest.approx(2 / 3)
    assert coverage(words("they were jogging"), ("jog",)) == 1.0  # an unlisted word: regular rules
    assert coverage([], ()) == 1.0


def test_repetition_counts_stutters_and_repeated_bigrams_not_function_words():
    assert repetition(words("the dog and the ball in the park")) == 0.0
    assert repetition(words("dog dog dog")) == pytest.approx(2 / 3)
    assert repetition(words("the dog saw the dog")) == pytest.approx(1 / 5)
    assert repetition(["dog"]) == 0.0


@pytest.fixture(scope="module")
def penalised():
    """An env whose text score is coverage less 0.5 × repetition (for every plug-in)."""
    return TextGenEnv(repeat_penalty=0.5)


def test_the_env_subtracts_the_repetition_penalty_from_any_plug_ins_score(penalised):
    assert penalised.text_score("dog dog dog", RECORD) == pytest.approx(0.25 - 0.5 * 2 / 3)
    assert TextGenEnv().text_score("the dog saw the dog", RECORD) == 0.25  # no penalty by default
    assert penalised.text_score(" , . ", RECORD) == 0.0


def test_coverage_plug_in_scores_succeeds_and_checks_its_records():
    reward = make_reward("coverage")
    assert reward.score("a dog runs with a ball in the park", RECORD) == 1.0
    assert reward.success("a dog runs with a ball in the park", RECORD)
    assert not reward.success("a dog runs", RECORD) and reward.score("", RECORD) == 0.0
    with pytest.raises(ConfigError, match="needs concepts"):
        reward.check([PromptRecord(id="x", prompt="hi", split="train")])
    with pytest.raises(ConfigError, match=r"repeat_penalty is env\.kwargs\.repeat_penalty now"):
        make_reward("coverage", {"repeat_penalty": 0.5})
    assert isinstance(reward, CoverageReward)


def test_text_score_along_a_growing_text_gives_the_per_token_increments(penalised):
    # The env pays per-token rewards as score increments (potential-based): these, summing to
    # the final score. tests/unit/test_textgen_env.py checks the env's sum against its terminal.
    texts = ["the", "the dog", "the dog dog", "the dog dog ran", "the dog dog ran ."]
    scores = [penalised.text_score(t, RECORD) for t in texts]
    increments = np.diff(scores, prepend=0.0)
    np.testing.assert_allclose(increments, [0.0, 0.25, -0.5 / 3, 0.25 + 0.5 / 3 - 0.5 / 4, 0.0], atol=1e-6)
    assert increments.sum() == pytest.approx(scores[-1])


def test_kl_penalty_is_at_most_zero_and_lower_for_less_likely_tokens():
    logp = np.log(np.array([0.9, 0.5, 0.1, 1.0]))
    penalty = kl_penalty(logp, 0.2)
    assert (penalty <= 0).all() and penalty[3] == 0.0
    assert penalty[0] > penalty[1] > penalty[2]
    np.testing.assert_allclose(penalty, 0.2 * logp)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(load_prompts())


def _save_bert(directory, tokenizer, classifier):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    torch.manual_seed(0)
    model = (BertForSequenceClassification if classifier else BertModel)(config)
    model.save_pretrained(directory)
    save_tokenizer(tokenizer, directory)
    return str(directory)


def test_classifier_reward_is_the_labels_probability(tmp_path, tokenizer):
    path = _save_bert(tmp_path / "clf", tokenizer, classifier=True)
    positive = make_reward("classifier", {"path": path, "label": "positive"})
    negative = make_reward("classifier", {"path": path, "label": 0})
    text = "a dog runs in the park"
    p = positive.score(text, RECORD)
    assert 0.0 < p < 1.0 and p + negative.score(text, RECORD) == pytest.approx(1.0, abs=1e-6)
    assert make_reward("classifier", {"path": path, "label": "1"}).score(text, RECORD) == pytest.approx(p)
    with torch.no_grad():
        logits = positive.model(**tokenizer(text, return_tensors="pt")).logits[0]
    assert p == pytest.approx(float(logits.softmax(-1)[1]), abs=1e-6)
    assert positive.success(text, RECORD) == (p >= 0.5) and positive.score("", RECORD) == 0.0
    with pytest.raises(ConfigError, match=r"label = 'happy'.*negative"):
        make_reward("classifier", {"path": path, "label": "happy"})
    with pytest.raises(ConfigError, match=r"reward_kwargs.path = .* is not a local directory"):
        make_reward("classifier", {"path": str(tmp_path / "nothing")})


def test_classifier_reward_is_what_the_env_pays_at_the_end(tmp_path, tokenizer):
    path = _save_bert(tmp_path / "clf", tokenizer, classifier=True)
    env = TextGenEnv(reward="classifier", reward_kwargs={"path": path})
    env.reset(seed=0)
    done, total = False, 0.0
    while not done:
        _, reward, done, _, info = env.step(env.rule_action())
        total += reward
    assert total == pytest.approx(env.reward_fn.score(env.generated_text(), env.record)) == info["reward"]


def test_similarity_reward_is_cosine_similarity_to_the_target(tmp_path, tokenizer):
    path = _save_bert(tmp_path / "emb", tokenizer, classifier=False)
    reward = make_reward("similarity", {"path": path})
    record = PromptRecord(id="t", prompt="describe", split="train", target="a dog runs in the park")
    assert reward.score("a dog runs in the park", record) == pytest.approx(1.0, abs=1e-5)
    other = reward.score("three red apples on a plate", record)
    assert -1.0 <= other < 0.9999 and reward.score("", record) == 0.0
    assert reward.success("a dog runs in the park", record) and not reward.success("", record)
    fixed = make_reward("similarity", {"path": path, "target": "three red apples on a plate"})
    assert fixed.score("three red apples on a plate", RECORD) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ConfigError, match="needs a target text"):
        reward.check([RECORD])
    with pytest.raises(ConfigError, match="needs a target text"):  # the env checks its records at once
        TextGenEnv(reward="similarity", reward_kwargs={"path": path})
