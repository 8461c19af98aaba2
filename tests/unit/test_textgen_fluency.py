"""What TextGen-v0 reports about a text besides the task: repetition metrics, EOS, the fluency
judge's perplexity (the reference LM, or a local causal LM of its own), the reference's
sampled baseline, evaluation over every test prompt once, and the fluency terms of the reward."""

import json
import math

import numpy as np
import pytest

from textdqn.actors.evaluator import Evaluator, baseline_policy
from textdqn.config import Config
from textdqn.envs.textgen.env import TextGenEnv
from textdqn.envs.textgen.fluency import (
    Judge,
    corpus_distinct,
    distinct,
    evaluation_metrics,
    perplexity,
    repeated_ngrams,
    text_metrics,
)
from textdqn.envs.textgen.rewards import words
from textdqn.errors import ConfigError
from textdqn.lm import SHIPPED_LM, causal_lm, resolve_path
from textdqn.typed_config import from_dict


def test_repetition_metrics_of_hand_made_texts():
    text = words("the dog runs the dog runs")
    assert distinct(text, 1) == pytest.approx(3 / 6) and distinct(text, 2) == pytest.approx(3 / 5)
    assert repeated_ngrams(text, 3) == pytest.approx(1 / 4)  # (the dog runs) again, of 4 trigrams
    assert repeated_ngrams(words("a dog sees a cat"), 3) == 0.0
    assert distinct([], 2) == 1.0 and repeated_ngrams(["dog"], 3) == 0.0
    assert text_metrics(text)["words"] == 6.0
    assert perplexity(2 * math.log(4.0), 2) == pytest.approx(4.0) and perplexity(0.0, 0) == 1.0
    # The corpus perplexity of an evaluation: total nll over total tokens (the ratio of the means).
    assert evaluation_metrics({"judge_nll_mean": 6.0, "judge_tokens_mean": 3.0})["judge_perplexity"] == (
        pytest.approx(math.exp(2.0))
    )
    assert evaluation_metrics({"coverage_mean": 1.0}) == {}
    # distinct-n over a set of texts: their n-grams pooled, none across two texts.
    shared = [words("the dog runs fast"), words("the cat runs fast")]
    assert corpus_distinct(shared, 2) == pytest.approx(5 / 6)  # (runs fast) twice, of 6 bigrams
    assert corpus_distinct([["a", "b"], ["c", "d"]], 2) == 1.0 and corpus_distinct([], 2) == 1.0
    assert evaluation_metrics({}, ["the dog runs fast", "the cat runs fast"]) == {
        "corpus_distinct_2": pytest.approx(5 / 6)
    }


@pytest.fixture(scope="module")
def env():
    return TextGenEnv(split="test")


def _finish(env, policy, index):
    env.reset(seed=index, options={"prompt_index": index})
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(policy())
    return info


def test_episode_info_has_eos_perplexity_and_repetition_and_the_reference_judges(env):
    info = _finish(env, env.rule_action, 0)
    assert info["eos"] == 1.0 and info["judge_tokens"] == info["length"]
    assert info["judge_nll"] == pytest.approx(info["kl"])  # the reference judges: −Σ log p_ref
    assert info["perplexity"] == pytest.approx(math.exp(info["kl"] / info["length"]))
    assert {"distinct_1", "distinct_2", "repeated_3grams", "words"} <= set(info)
    dog = env.tokenizer.convert_tokens_to_ids("dog")
    info = _finish(env, lambda: dog, 1)  # never ends: cut at the limit
    assert info["eos"] == 0.0 and info["length"] == env.max_new_tokens and info["distinct_1"] < 0.1
    text = env.episode_text()
    assert "perplexity" in text and "cut at the limit" in text and "distinct-2" in text


def test_a_separate_judge_scores_the_text_after_its_prompt_with_its_own_tokenizer(env, tmp_path):
    judge = Judge(env.reference.model, env.tokenizer)  # the reference as a separate judge
    info = _finish(env, env.rule_action, 2)
    text = env.generated_text()
    nll, tokens = judge.nll(env.record.prompt, text, ended=True)
    assert tokens == info["judge_tokens"] and nll == pytest.approx(info["judge_nll"], rel=1e-4)
    assert judge.nll(env.record.prompt, "", ended=False) == (0.0, 0)
    judged = TextGenEnv(split="test", judge={"path": resolve_path(SHIPPED_LM)})
    assert _finish(judged, judged.rule_action, 2)["judge_nll"] == pytest.approx(info["judge_nll"], rel=1e-4)
    with pytest.raises(ConfigError, match=r"env\.kwargs\.judge"):
        TextGenEnv(judge={"model": "x"})
    with pytest.raises(ConfigError, match="not a local directory"):
        TextGenEnv(judge={"path": str(tmp_path / "none")})


def test_sampled_baseline_is_seeded_and_differs_from_greedy(env):
    first = [_finish_seeded(env, seed) for seed in (0, 0, 1)]
    assert first[0] == first[1] and first[0] != first[2]
    greedy = _finish(env, env.rule_action, 0)
    assert greedy["judge_nll"] < _finish(env, env.sample_action, 0)["judge_nll"] + 50  # both finite


def _finish_seeded(env, seed):
    env.reset(seed=seed, options={"prompt_index": 0})
    done, tokens = False, []
    while not done:
        tokens.append(env.sample_action())
        _, _, done, _, _ = env.step(tokens[-1])
    return tokens


def test_evaluation_runs_every_test_prompt_once_in_order_and_reports_baselines(monkeypatch):
    config = from_dict(
        Config,
        {
            "env": {"id": "textdqn/TextGen-v0", "kwargs": {"split": "test"}},
            "network": {"kind": "lm", "lm": {"path": SHIPPED_LM}},
            "eval": {"num_envs": 7, "episodes": 120},
        },
    )
    evaluator = Evaluator(config)
    seen: dict[int, list[str]] = {}
    for slot, env in enumerate(evaluator.envs.envs):
        original = env.unwrapped.reset

        def reset(*args, _env=env.unwrapped, _original=original, _slot=slot, **kwargs):
            out = _original(*args, **kwargs)
            seen.setdefault(_slot, []).append(_env.record.id)
            return out

        monkeypatch.setattr(env.unwrapped, "reset", reset)
    greedy = evaluator.run(baseline_policy("rule", evaluator.envs), 120)
    test_ids = [r.id for r in evaluator.envs.envs[0].unwrapped.records]
    quota = [120 // 7 + (slot < 120 % 7) for slot in range(7)]  # the evaluator's episodes per env
    counted = [i for slot in range(7) for i in seen[slot][: quota[slot]]]  # later resets: not evaluated
    assert sorted(counted) == sorted(test_ids)  # every test prompt once
    assert seen[0][:3] == [test_ids[0], test_ids[7], test_ids[14]]  # in order, round-robin
    sampled = evaluator.run(baseline_policy("sample", evaluator.envs), 120)
    assert greedy["judge_perplexity"] < sampled["judge_perplexity"]  # greedy text is the likelier
    assert greedy["corpus_distinct_2"] < sampled["corpus_distinct_2"]  # and the more alike across prompts
    for agent in ("rule", "sample"):  # the same prompts, the same texts (sampled ones seeded)
        first = evaluator.run(baseline_policy(agent, evaluator.envs), 14)
        assert first == evaluator.run(baseline_policy(agent, evaluator.envs), 14), agent
    assert {"eos_mean", "distinct_2_mean", "repeated_3grams_mean", "perplexity_mean"} <= set(greedy)
    evaluator.close()


def test_prompt_words_outside_the_vocabulary_are_an_error(tmp_path):
    prompts = tmp_path / "p.jsonl"
    records = [
        {"id": "a", "concepts": ["dog"], "split": "train", "prompt": "write about the dog"},
        {"id": "b", "concepts": ["dog"], "split": "test", "prompt": "write about the zebra", "target": "x"},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"prompt of prompt record 'b'.*\['zebra'\]"):
        TextGenEnv(prompts=str(prompts))
    records[1]["prompt"] = "write about the dog"
    records[1]["target"] = "the giraffe runs"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ConfigError, match=r"target of prompt record 'b'.*\['giraffe'\]"):
        TextGenEnv(prompts=str(prompts))


def test_the_default_reference_is_the_shipped_lm_and_a_config_built_one_stays_possible():
    shipped = TextGenEnv()
    assert shipped.reference.model.config.n_layer == causal_lm(resolve_path(SHIPPED_LM)).config.n_layer
    built = TextGenEnv(lm={"layers": 1, "width": 16, "heads": 2})
    assert built.reference.model.config.n_embd == 16


def test_fluency_terms_of_the_reward_apply_to_any_plug_in():
    cut = TextGenEnv(unfinished_penalty=0.3)
    plain = TextGenEnv()
    dog = plain.tokenizer.convert_tokens_to_ids("dog")
    costs = [_finish(e, lambda: dog, 0)["reward"] for e in (cut, plain)]
    assert costs[0] == pytest.approx(costs[1] - 0.3)
    ended = [_finish(e, lambda e=e: e.eos_id, 0)["reward"] for e in (cut, plain)]
    assert ended[0] == ended[1]  # a text that ends pays nothing
    with pytest.raises(ConfigError, match="unfinished_penalty"):
        TextGenEnv(unfinished_penalty=-1)
    assert np.isfinite(costs).all()


def test_the_token_bonus_pays_each_token_eos_included_in_steps_episodes_and_the_reference_score():
    plain = TextGenEnv(kl_coef=0.1, per_token=True)
    bonus = TextGenEnv(kl_coef=0.1, per_token=True, token_bonus=0.03)
    dog = plain.tokenizer.convert_tokens_to_ids("dog")
    infos = [_finish(e, lambda: dog, 0) for e in (plain, bonus)]  # cut at the limit: max_new_tokens tokens
    assert infos[1]["reward"] == pytest.approx(infos[0]["reward"] + 0.03 * plain.max_new_tokens)
    for env in (plain, bonus):
        env.reset(seed=0, options={"prompt_index": 0})
    steps = [e.step(e.eos_id)[1] for e in (plain, bonus)]  # one token: EOS
    assert steps[1] == pytest.approx(steps[0] + 0.03)
    greedy = [e.reference_greedy(0) for e in (plain, bonus)]
    assert greedy[1].reward == pytest.approx(greedy[0].reward + 0.03 * len(greedy[0].tokens))
    with pytest.raises(ConfigError, match="token_bonus"):
        TextGenEnv(token_bonus=-0.1)


def test_eos_after_concepts_lets_the_text_end_only_once_every_concept_is_used():
    env = TextGenEnv(eos_after_concepts=True)
    _, info = env.reset(seed=0, options={"prompt_index": 0})
    concepts = [int(env.tokenizer.convert_tokens_to_ids(c)) for c in env.record.concepts]
    assert not info["action_mask"][env.eos_id] and info["action_mask"][concepts].all()
    for i, token in enumerate(concepts):
        _, _, done, _, info = env.step(token)
        assert info["action_mask"][env.eos_id] == (i == len(concepts) - 1) and not done
    _, _, done, _, info = env.step(env.eos_id)
    assert done and info["coverage"] == 1.0 and info["eos"] == 1.0


def test_a_concept_the_text_uses_leaves_the_mask_unless_the_reference_ranks_it_top_k():
    env = TextGenEnv(top_k=1)
    _, info = env.reset(seed=0, options={"prompt_index": 0})
    dog = int(env.tokenizer.convert_tokens_to_ids(env.record.concepts[0]))
    assert info["action_mask"][dog]
    _, _, _, _, info = env.step(dog)
    top = int(np.argmax(np.where(env.banned, -np.inf, env._state.logp)))
    assert info["action_mask"][dog] == (top == dog)
