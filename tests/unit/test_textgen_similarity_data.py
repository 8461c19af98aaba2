"""The similarity task's data the repo makes (textdqn.envs.textgen.make_similarity): target
sentences that use exactly each record's concepts, the shipped files equal to what the module
writes, and an encoder whose similarity counts shared content words in any inflection."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from textdqn.envs.textgen import make_similarity
from textdqn.envs.textgen.prompts import PromptRecord, load_prompts
from textdqn.envs.textgen.rewards import coverage, make_reward, words

SHIPPED = "textdqn:envs/textgen/data/"


def test_each_target_sentence_uses_exactly_its_records_concepts():
    records = make_similarity.make_target_records()
    assert [r.concepts for r in records] == [r.concepts for r in load_prompts()]
    for r in records:
        assert coverage(words(r.target), r.concepts) == 1.0, r
        assert r.target.endswith(" .")


def test_shipped_prompts_and_encoder_are_what_the_module_writes(tmp_path):
    shipped = load_prompts(SHIPPED + make_similarity.PROMPTS_NAME)
    assert shipped == make_similarity.make_target_records()
    make_similarity.main([str(tmp_path)])
    assert (tmp_path / make_similarity.PROMPTS_NAME).read_bytes() == (
        make_similarity.DATA / make_similarity.PROMPTS_NAME
    ).read_bytes()
    ours = load_file(str(tmp_path / make_similarity.ENCODER_NAME / "model.safetensors"))
    theirs = load_file(str(make_similarity.DATA / make_similarity.ENCODER_NAME / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])


@pytest.fixture(scope="module")
def similarity():
    return make_reward("similarity", {"path": SHIPPED + make_similarity.ENCODER_NAME})


def test_the_encoder_compares_content_words_in_any_inflection(similarity):
    record = PromptRecord(
        "t", "p", "test", ("ball", "farmer", "kick", "park"), "the farmer kicked the ball in the park ."
    )
    score = lambda text: similarity.score(text, record)  # noqa: E731
    assert score("a farmer kicks a ball near the parks !") == pytest.approx(1.0, abs=1e-5)
    assert score("farmer kick ball park") == pytest.approx(1.0, abs=1e-5)  # keywords alone score fully
    assert score("the farmer kicked the ball .") == pytest.approx(np.sqrt(3 / 4), abs=0.05)  # 3 of 4 words
    assert abs(score("the dog runs .")) < 0.2  # no shared content word
    assert score("the farmer and the farmer") < score("the farmer and the ball")
