"""Dialogue text: rendering acts from the domains' templates, the word-level tokenizer, token
observations of textdqn/Dialogue-v0 and its transcript."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import textdqn.envs  # noqa: F401  (registers the textdqn/ ids)
from textdqn.envs.dialogue.acts import USER_INTENTS, SystemAct, UserAct
from textdqn.envs.dialogue.agents import random_action
from textdqn.envs.dialogue.domain import load_domain, make_goals, make_kb
from textdqn.envs.dialogue.text import (
    SPECIAL_TOKENS,
    TURN_TOKENS,
    TranscriptEncoder,
    build_tokenizer,
    encode_dialogue,
    render_goal,
    render_system,
    render_user,
)
from textdqn.envs.dialogue.user_simulator import SystemTurn
from textdqn.envs.word_tokenizer import load_tokenizer, save_tokenizer

DOMAINS = ("movies", "restaurants")


@pytest.fixture(scope="module")
def movies():
    domain = load_domain("movies")
    return domain, make_kb(domain), build_tokenizer(domain)


def test_user_acts_say_their_slots_and_values(movies):
    domain, _, _ = movies
    rng = np.random.default_rng(0)
    said = render_user(
        UserAct("inform", inform={"moviename": "la la land", "city": "any"}, request=("price",)),
        domain,
        rng,
    )
    assert "la la land" in said and "city" in said and "price" in said  # "{value} please" has no slot
    assert "i don't care about the city" in said.lower() or "any city" in said
    reject = render_user(UserAct("reject", inform={"theater": "regal"}), domain, rng)
    assert "regal" in reject and "theater" in reject
    for intent in USER_INTENTS:  # every intent has its templates, in both domains
        for name in DOMAINS:
            assert render_user(UserAct(intent, inform={"date": "friday"}), load_domain(name), rng)


def test_system_acts_say_their_arguments(movies):
    domain, kb, _ = movies
    rng = np.random.default_rng(0)
    entry = kb.entry(7)
    offer = render_system(SystemTurn(SystemAct("offer"), entry=7), domain, kb, rng)
    assert all(entry[slot] in offer for slot in domain.offer_slots)
    confirm = render_system(SystemTurn(SystemAct("confirm", "date"), value="friday"), domain, kb, rng)
    assert "date" in confirm and "friday" in confirm
    inform = render_system(SystemTurn(SystemAct("inform", "price"), value="$12"), domain, kb, rng)
    assert "price" in inform and "$12" in inform
    unknown = render_system(SystemTurn(SystemAct("inform", "price")), domain, kb, rng)
    assert "price" in unknown and "None" not in unknown
    nothing = render_system(SystemTurn(SystemAct("book")), domain, kb, rng)
    assert domain.entity in nothing


def test_goal_is_one_line_with_constraints_requests_and_feasibility(movies):
    domain, kb, _ = movies
    train, _ = make_goals(domain, kb)
    for goal in train[:50]:
        line = render_goal(goal, domain)
        assert "\n" not in line and all(f"{s}={v}" in line for s, v in goal.constraints.items())
        assert all(r in line for r in goal.requests)
        if goal.feasible:
            assert line.endswith("; feasible")
        else:
            slot, value = next(iter(goal.fallback.items()))
            assert line.endswith(f"; infeasible (falls back to {slot}={value})")


def test_tokenizer_is_deterministic_and_round_trips_known_words(movies, tmp_path):
    domain, _, tokenizer = movies
    again = build_tokenizer(domain)
    assert tokenizer.get_vocab() == again.get_vocab()
    assert [tokenizer.convert_ids_to_tokens(i) for i in range(5)] == list(SPECIAL_TOKENS)
    words = "zootopia at regal in seattle , friday 7pm , $ 12".split()
    ids = tokenizer("Zootopia at regal in Seattle, friday 7pm, $12", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == words
    assert tokenizer.unk_token_id not in ids
    assert tokenizer("qwertyuiop", add_special_tokens=False)["input_ids"] == [tokenizer.unk_token_id]
    loaded = load_tokenizer(save_tokenizer(tokenizer, tmp_path / "tokenizer"))
    assert loaded.get_vocab() == tokenizer.get_vocab()


def test_encoding_keeps_cls_and_the_most_recent_tokens(movies):
    _, _, tokenizer = movies
    turns = [("user", "hi"), ("system", "which city would you like?"), ("user", "seattle please")]
    full = encode_dialogue(tokenizer, turns, 64)
    n = int((full != 0).sum())
    assert full.dtype == np.uint16 and full.shape == (64,) and not full[n:].any()
    usr, sys_, cls, t1 = (tokenizer.convert_tokens_to_ids(t) for t in ("[USR]", "[SYS]", "[CLS]", "[T1]"))
    assert full[0] == cls and full[1] == t1 and full[2] == usr and list(full[:n]).count(sys_) == 1
    assert tokenizer.decode(full[n - 3 : n]) == "[USR] seattle please"
    short = encode_dialogue(tokenizer, turns, 6)
    assert list(short[:2]) == [cls, t1] and list(short[2:]) == list(full[n - 4 : n])
    with pytest.raises(ValueError, match="speakers"):
        encode_dialogue(tokenizer, [("narrator", "hi")], 8)


def test_turn_counter_counts_system_turns_and_stops_at_the_last_token(movies):
    _, _, tokenizer = movies
    assert [tokenizer.convert_ids_to_tokens(5 + k) for k in (0, 63)] == list(TURN_TOKENS[::63])
    for k, expected in ((0, "[T0]"), (5, "[T5]"), (63, "[T63]"), (80, "[T63]")):
        turns = [("user", "hi")] + [("system", "hello"), ("user", "hi")] * k
        ids = encode_dialogue(tokenizer, turns, 16)
        assert tokenizer.convert_ids_to_tokens(int(ids[1])) == expected
    assert "[T" not in tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("name", DOMAINS)
def test_no_unknown_words_in_random_dialogues(name):
    env = gym.make("textdqn/Dialogue-v0", domain=name, nlu_error=0.3).unwrapped
    rng = np.random.default_rng(0)
    texts = []
    for episode in range(300):
        env.reset(seed=episode)
        done = False
        while not done:  # mostly random acts (any act, masked or not), some rule acts to book
            action = env.rule_action() if rng.random() < 0.5 else random_action(env, rng)
            _, _, done, _, _ = env.step(action)
        texts += [text for _, text in env.transcript]
    encoded = env.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    unknown = [t for t, e in zip(texts, encoded, strict=True) if env.tokenizer.unk_token_id in e.ids]
    assert unknown == []
    assert len(set(texts)) > 100  # the dialogues did vary


def test_token_observations_pass_the_env_checker_and_stay_in_their_space():
    env = gym.make("textdqn/Dialogue-v0", observation="tokens", max_tokens=64).unwrapped
    check_env(env)
    space = env.observation_space
    assert space.dtype == np.uint16 and space.shape == (64,) and space.high.max() == len(env.tokenizer) - 1
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=1)
    for _ in range(30):
        assert space.contains(obs)
        obs, _, done, _, _ = env.step(random_action(env, rng))
        if done:
            break
    last = env.tokenizer.decode(obs[obs != 0][-5:])
    assert last.endswith(env.tokenizer.decode(env.tokenizer(env.transcript[-1][1])["input_ids"][-4:]))


def test_transcript_records_what_the_user_said_not_what_was_heard():
    clean = gym.make("textdqn/Dialogue-v0").unwrapped
    noisy = gym.make("textdqn/Dialogue-v0", nlu_error=1.0).unwrapped
    clean.reset(seed=4)
    noisy.reset(seed=4)
    assert noisy.transcript == clean.transcript and clean.transcript[0][0] == "user"
    assert noisy.heard != clean.heard  # every informed value was misheard
    clean.step(clean.act_index[("request", "date")])
    assert [speaker for speaker, _ in clean.transcript] == ["user", "system", "user"]


def test_bad_observation_mode_names_the_choices():
    with pytest.raises(ValueError, match=r"'vector', 'tokens'"):
        gym.make("textdqn/Dialogue-v0", observation="pixels")


def test_vector_observations_do_not_import_transformers():
    code = (
        "import sys, gymnasium as gym, textdqn.envs;"
        "from textdqn.config import NetworkConfig; from textdqn.networks import make_q_network;"
        "env = gym.make('textdqn/Dialogue-v0'); env.reset(seed=0); env.step(0);"
        "make_q_network(env.observation_space, env.action_space, NetworkConfig());"
        "print(','.join(m for m in ('transformers', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_incremental_encoder_matches_encoding_the_whole_transcript():
    """The env's TranscriptEncoder tokenizes each turn once; every observation of real
    dialogues (growing, cut to the most recent tokens, a new list at each reset) must equal
    encode_dialogue of the whole transcript."""
    env = gym.make("textdqn/Dialogue-v0", observation="tokens", max_tokens=24, nlu_error=0.2).unwrapped
    rng = np.random.default_rng(3)
    checked = 0
    for episode in range(20):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            assert np.array_equal(obs, encode_dialogue(env.tokenizer, env.transcript, 24))
            checked += 1
            obs, _, done, _, _ = env.step(random_action(env, rng))
        assert np.array_equal(obs, encode_dialogue(env.tokenizer, env.transcript, 24))
    assert checked > 100
    encoder = TranscriptEncoder(env.tokenizer, 24)
    turns = [("user", "hi")]
    first = encoder.encode(turns)
    other = [("user", "seattle please")]  # another list: starts over
    assert np.array_equal(encoder.encode(other), encode_dialogue(env.tokenizer, other, 24))
    assert not np.array_equal(first, encoder.encode(other))
