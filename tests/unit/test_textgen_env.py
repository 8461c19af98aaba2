"""textdqn/TextGen-v0: API, length-prefixed observations, action masks, episode ends, rewards
paid by the env, the reference LM's greedy baseline, and configuration errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import textdqn.envs  # noqa: F401  (registers the textdqn/ ids)
from textdqn.envs.textgen.env import TextGenEnv
from textdqn.envs.word_tokenizer import save_tokenizer
from textdqn.errors import ConfigError
from textdqn.lm import causal_lm


@pytest.fixture(scope="module")
def env():
    return TextGenEnv()


def _concept_tokens(env):
    return [int(env.tokenizer.convert_tokens_to_ids(c)) for c in env.record.concepts]


def _play(env, actions, index=0):
    env.reset(seed=0, options={"prompt_index": index})
    rewards, info, terminated = [], {}, False
    for a in actions:
        _, reward, terminated, truncated, info = env.step(a)
        assert not truncated
        rewards.append(reward)
        if terminated:
            break
    return np.array(rewards), terminated, info


def test_passes_the_gymnasium_env_checker():
    env = gym.make("textdqn/TextGen-v0")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and obs.dtype == np.uint16
    assert env.observation_space.shape == (41,) and env.action_space.n == len(env.unwrapped.tokenizer)
    assert info["action_mask"].dtype == bool and info["action_mask"].shape == (env.action_space.n,)


def test_observations_are_length_prefixed_prompt_then_generated_tokens(env):
    obs, _ = env.reset(seed=0, options={"prompt_index": 3})
    prompt = env.tokenizer(env.records[3].prompt, add_special_tokens=False)["input_ids"]
    n = len(prompt)
    assert obs[0] == n and list(obs[1 : 1 + n]) == prompt and not obs[1 + n :].any()
    dog = env.tokenizer.convert_tokens_to_ids("dog")
    obs, *_ = env.step(dog)
    obs, *_ = env.step(dog)
    assert obs[0] == n + 2 and list(obs[1 + n : 3 + n]) == [dog, dog] and not obs[3 + n :].any()
    assert env.generated_text() == "dog dog"


def test_mask_is_the_references_top_k_plus_eos_and_unused_concepts_never_pad(env):
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        concepts = _concept_tokens(env)
        done = False
        while not done:
            mask = info["action_mask"]
            unused = [
                t for t, c in zip(concepts, env.record.concepts, strict=True) if c not in env.generated_text()
            ]
            assert mask[env.eos_id] and mask[unused].all() and not mask[0] and not mask[1]  # PAD, UNK
            # The top-k of a fresh full forward pass over the observation (no KV cache):
            with torch.no_grad():
                logits = env.reference.model(torch.as_tensor(obs[1 : 1 + obs[0]], dtype=torch.long)[None])
            logits = logits.logits[0, -1].numpy()
            logits[env.banned] = -np.inf
            top = np.argsort(-logits)[: env.top_k]
            assert mask[top].all()
            assert mask.sum() <= env.top_k + len(concepts) + 1
            obs, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(mask))))


def test_episode_ends_at_eos_or_after_max_new_tokens():
    env = TextGenEnv(max_new_tokens=3)
    rewards, terminated, info = _play(env, [env.eos_id])
    assert terminated and len(rewards) == 1 and info["length"] == 1.0
    assert {"coverage", "success", "length", "reward", "kl"} <= set(info)
    assert info["action_mask"].sum() == 1 and info["action_mask"][env.eos_id]
    dog = env.tokenizer.convert_tokens_to_ids("dog")
    env.reset(seed=0)
    for step in range(3):
        _, _, terminated, truncated, info = env.step(dog)
        assert terminated == (step == 2) and not truncated
    assert info["length"] == 3.0


def test_using_every_concept_succeeds_and_pays_the_coverage_score_at_the_end(env):
    env.reset(seed=0, options={"prompt_index": 0})
    concepts = _concept_tokens(env)
    rewards, terminated, info = _play(env, [*concepts, env.eos_id])
    assert terminated and info["success"] == 1.0 and info["coverage"] == 1.0
    assert np.all(rewards[:-1] == 0) and rewards[-1] == pytest.approx(1.0)
    penalised = TextGenEnv(repeat_penalty=0.5)
    rewards, _, info = _play(penalised, [concepts[0], concepts[0], env.eos_id])  # one concept, repeated
    expected = 1 / len(env.record.concepts) - 0.5 * 1 / 2  # coverage − 0.5 × repetition ("dog dog": 1/2)
    assert info["success"] == 0.0 and info["coverage"] == 1 / len(env.record.concepts)
    assert rewards.sum() == pytest.approx(expected) == pytest.approx(info["reward"])


def test_per_token_rewards_sum_to_the_terminal_reward():
    terminal, per_token = TextGenEnv(kl_coef=0.1), TextGenEnv(kl_coef=0.1, per_token=True)
    terminal.reset(seed=0, options={"prompt_index": 1})
    concepts = _concept_tokens(terminal)
    the = terminal.tokenizer.convert_tokens_to_ids("the")
    actions = [the, concepts[0], the, concepts[0], concepts[-1], the, terminal.eos_id]
    end, _, end_info = _play(terminal, actions, index=1)
    steps, _, step_info = _play(per_token, actions, index=1)
    assert np.count_nonzero(steps) > np.count_nonzero(end[:-1])
    assert steps.sum() == pytest.approx(end.sum(), abs=1e-5) == pytest.approx(end_info["reward"], abs=1e-5)
    assert step_info["reward"] == pytest.approx(end_info["reward"], abs=1e-5)


def test_kl_penalty_is_never_positive_and_lower_for_less_likely_tokens():
    plain, kl = TextGenEnv(), TextGenEnv(kl_coef=0.5)
    _, info = kl.reset(seed=0)
    logp = kl._state.logp.copy()
    likely, unlikely = int(np.argmax(logp)), int(np.argmin(logp))
    costs = []
    for token in (likely, unlikely):
        kl.reset(seed=0)
        plain.reset(seed=0)
        costs.append(kl.step(token)[1] - plain.step(token)[1])
    assert costs[0] == pytest.approx(0.5 * logp[likely], rel=1e-5)
    assert costs[1] < costs[0] <= 0
    _, _, info = _play(kl, [likely, kl.eos_id])
    assert info["kl"] > 0


def test_reference_greedy_is_what_rule_actions_play_and_episode_text_shows_both(env):
    env.reset(seed=0, options={"prompt_index": 2})
    greedy = env.reference_greedy(2)
    actions, done, info = [], False, {}
    while not done:
        actions.append(env.rule_action())
        _, _, done, _, info = env.step(actions[-1])
    assert actions == list(greedy.tokens) and info["reward"] == pytest.approx(greedy.reward)
    text = env.episode_text()
    assert env.records[2].prompt in text and "agent:" in text and "reference:" in text
    assert text.count(f"reward {greedy.reward:.3f}") == 2


def test_reset_options_pick_the_prompt_and_splits_hold_their_records(env):
    env.reset(options={"prompt_index": 7})
    assert env.record == env.records[7] and all(r.split == "train" for r in env.records)
    with pytest.raises(IndexError, match="out of range"):
        env.reset(options={"prompt_index": len(env.records)})
    test = TextGenEnv(split="test")
    assert len(test.records) == 120 and test.tokenizer.get_vocab() == env.tokenizer.get_vocab()


def test_a_local_checkpoint_brings_its_tokenizer_and_run_files_keep_it(env, tmp_path):
    model = causal_lm(vocab_size=env.vocab_size, max_positions=40, width=32, heads=2, seed=3)
    model.save_pretrained(tmp_path / "lm")
    save_tokenizer(env.tokenizer, tmp_path / "lm")
    loaded = TextGenEnv(lm={"path": str(tmp_path / "lm")})
    assert loaded.eos_id == env.eos_id and loaded.vocab_size == env.vocab_size
    obs, _ = loaded.reset(seed=0)
    assert loaded.observation_space.contains(obs)
    loaded.save_run_files(tmp_path / "run")
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(str(tmp_path / "run" / "tokenizer"), local_files_only=True)
    assert saved.get_vocab() == env.tokenizer.get_vocab() and saved.eos_token == "[EOS]"


def test_configuration_errors_name_the_key_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"prompts = .*is not a file"):
        TextGenEnv(prompts=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfigError, match="not a local directory"):
        TextGenEnv(lm={"path": str(tmp_path / "no-lm")})
    with pytest.raises(ConfigError, match=r"unknown keys \['depth'\]"):
        TextGenEnv(lm={"depth": 2})
    with pytest.raises(ConfigError, match=r"raise env\.kwargs\.max_tokens"):
        TextGenEnv(max_tokens=20)
    with pytest.raises(ConfigError, match=r"env\.kwargs\.reward = 'bleu'"):
        TextGenEnv(reward="bleu")
    with pytest.raises(ConfigError, match="do not fit reward 'coverage'"):
        TextGenEnv(reward_kwargs={"penalty": 1.0})
    with pytest.raises(ConfigError, match="kl_coef"):
        TextGenEnv(kl_coef=-1.0)
    (tmp_path / "lm").mkdir()
    from transformers import PreTrainedTokenizerFast

    no_eos = PreTrainedTokenizerFast(tokenizer_object=TextGenEnv().tokenizer.backend_tokenizer)
    no_eos.save_pretrained(str(tmp_path / "lm"))
    with pytest.raises(ConfigError, match="has no eos_token"):
        TextGenEnv(lm={"path": str(tmp_path / "lm")})


def test_a_bfloat16_reference_lm_gives_float32_log_probs_close_to_float32(env):
    half = TextGenEnv(lm_dtype="bfloat16")
    assert next(half.reference.model.parameters()).dtype == torch.bfloat16
    assert next(env.reference.model.parameters()).dtype == torch.float32  # a separate, shared copy
    half.reset(seed=0, options={"prompt_index": 2})
    env.reset(seed=0, options={"prompt_index": 2})
    assert half._state.logp.dtype == np.float32
    np.testing.assert_allclose(half._state.logp, env._state.logp, atol=0.15)
    with pytest.raises(ConfigError, match=r"env\.kwargs\.lm_dtype = 'half': use float32 or bfloat16"):
        TextGenEnv(lm_dtype="half")


def test_mark_used_concepts_rewrites_only_the_observed_prompt():
    from textdqn.cluster.preflight import check_before_start
    from textdqn.config import load_config

    marked = TextGenEnv(split="test", eos_after_concepts=True, mark_used_concepts=True)
    plain = TextGenEnv(split="test", eos_after_concepts=True)
    assert not marked.observations_grow and plain.observations_grow
    unk, tok = marked.tokenizer.unk_token_id, marked.tokenizer
    index = [r.id for r in marked.records].index("cg-0039")  # box, piano, wait
    obs, _ = marked.reset(options={"prompt_index": index})
    plain_obs, _ = plain.reset(options={"prompt_index": index})
    np.testing.assert_array_equal(obs, plain_obs)  # nothing used yet
    prompt = list(plain_obs[1 : 1 + plain_obs[0]])
    for word in ["the", "boxes", "waits", "the", "piano", "."]:  # an inflection marks its concept
        token = tok.convert_tokens_to_ids(word)
        obs, reward, _, _, info = marked.step(token)
        plain_obs, plain_reward, _, _, plain_info = plain.step(token)
        assert reward == plain_reward  # the reference LM reads the real prompt
        np.testing.assert_array_equal(info["action_mask"], plain_info["action_mask"])
        assert obs[0] == plain_obs[0] and (obs[1 + len(prompt) :] == plain_obs[1 + len(prompt) :]).all()
    seen = list(obs[1 : 1 + len(prompt)])
    for concept in ("box", "piano", "wait"):
        assert seen[prompt.index(tok.convert_tokens_to_ids(concept))] == unk
    assert sum(a != b for a, b in zip(seen, prompt, strict=True)) == 3  # nothing else changes
    config = load_config(
        "configs/textgen-fluent.yaml", ("env.kwargs.mark_used_concepts=true", "network.kv_cache=true")
    )
    with pytest.raises(ConfigError, match=r"network\.kv_cache reads only each step"):
        check_before_start(config, "serial", None, None)
