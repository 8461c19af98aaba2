"""textdqn/Dialogue-v0 (vector observations): API, masks, rewards, baselines' extremes."""

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import textdqn.envs  # noqa: F401  (registers the textdqn/ ids)
from textdqn.envs.dialogue.acts import USER_INTENTS
from textdqn.envs.dialogue.agents import random_action


def _run(env, policy, episodes, seed=0):
    successes, returns = [], []
    for ep in range(episodes):
        _, info = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, info = env.step(policy(env.unwrapped, info))
            total += reward
            done = terminated or truncated
        successes.append(info["success"])
        returns.append(total)
    return np.array(successes), np.array(returns)


def _scripted(env, info):
    """The rule agent plus what it lacks: say when nothing matches, offer again when the user
    changes its mind."""
    index = env.act_index
    if env.last_user == "change" and info["action_mask"][index[("offer", None)]]:
        return index[("offer", None)]
    if all(slot in env.heard for slot in env.domain.informable):
        if not info["action_mask"][index[("offer", None)]] and env.offered is None:
            return index[("no_match", None)]
    return env.rule_action()


def test_passes_the_gymnasium_env_checker():
    env = gym.make("textdqn/Dialogue-v0")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["action_mask"].dtype == bool and info["action_mask"].shape == (env.action_space.n,)


def test_masks_forbid_booking_before_an_offer():
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    _, info = env.reset(seed=0)
    book = next(i for i, a in enumerate(env.acts) if a.intent == "book")
    offer = next(i for i, a in enumerate(env.acts) if a.intent == "offer")
    assert not info["action_mask"][book]
    _, _, _, _, info = env.step(offer)
    assert info["action_mask"][book]


def test_baselines_are_as_strong_as_tc_bots_and_a_complete_policy_always_succeeds():
    env = gym.make("textdqn/Dialogue-v0", split="test")
    rng = np.random.default_rng(0)
    random_success, random_returns = _run(env, lambda e, info: random_action(e, rng), 300)
    assert random_success.mean() < 0.07  # 0.036 over the 500 test dialogues of `textdqn eval`
    rule_success, _ = _run(env, lambda e, info: e.rule_action(), 300)
    assert 0.30 <= rule_success.mean() <= 0.55  # TC-Bot's rule agent: about 0.42
    scripted_success, scripted_returns = _run(env, _scripted, 300)
    assert scripted_success.mean() == 1.0
    # Success pays +2·max_turn at the end, failure −max_turn, and every turn −1.
    assert scripted_returns[scripted_success == 1].min() > 0 > random_returns[random_success == 0].max()


def test_noise_changes_what_the_system_hears():
    clean = gym.make("textdqn/Dialogue-v0")
    noisy = gym.make("textdqn/Dialogue-v0", nlu_error=0.3)
    clean_success, _ = _run(clean, _scripted, 100)
    noisy_success, _ = _run(noisy, _scripted, 100)
    assert noisy_success.mean() < clean_success.mean()


def test_a_turn_that_costs_the_users_patience_costs_one_more_reward():
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    env.reset(seed=0)
    greeting = env.act_index[("greeting", None)]
    _, first, *_ = env.step(greeting)  # answered with the next constraint
    _, second, *_ = env.step(greeting)  # hello again: patience lost
    assert (first, second) == (-1.0, -2.0) and env.user.state.lapses == 1


def test_informs_are_masked_once_the_offered_entry_no_longer_fits():
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    offer = env.act_index[("offer", None)]
    informs = [i for i, a in enumerate(env.acts) if a.intent == "inform"]
    for seed in range(50):
        _, info = env.reset(seed=seed)
        assert not info["action_mask"][informs].any()  # nothing offered yet
        _, _, _, _, info = env.step(offer)
        if env.last_user == "reject":  # the correction rules the offered entry out
            assert not info["action_mask"][informs].any() and info["action_mask"][offer]
            return
        assert info["action_mask"][informs].all()
    raise AssertionError("no rejected offer in 50 dialogues")


def test_the_observation_says_what_the_system_asked_for_confirmed_and_whether_it_said_no_match():
    """A second identical question costs patience, and a second "nothing matches" gets no
    second fallback, so the policy must see what it has said."""
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    obs, _ = env.reset(seed=0)
    n = len(env.domain.informable)
    start = len(USER_INTENTS) + 3 * n  # after the last user intent, its slots, heard and confirmed slots
    requested, confirming = slice(start, start + n), slice(start + n, start + 2 * n)
    assert not obs[requested].any() and not obs[confirming].any()
    heard = next(s for s in env.domain.informable if s in env.heard)
    asked = env.domain.informable.index(heard)
    obs, *_ = env.step(env.act_index[("confirm", heard)])
    assert np.flatnonzero(obs[confirming]).tolist() == [asked] and not obs[requested].any()
    obs, *_ = env.step(env.act_index[("request", env.domain.informable[0])])
    assert np.flatnonzero(obs[requested]).tolist() == [0]
    assert np.flatnonzero(obs[confirming]).tolist() == [asked]  # still said
    said_no_match = start + 2 * n
    assert obs[said_no_match] == 0.0
    env.heard, _ = _misheard(env)
    obs, *_ = env.step(env.act_index[("no_match", None)])  # the user settles for its fallback once
    assert obs[said_no_match] == 1.0


def test_when_nothing_matches_the_observation_names_the_heard_constraints_that_rule_everything_out():
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    env.reset(seed=0)
    d, n = env.domain, len(env.domain.informable)
    suspects = slice(-n, None)  # the last features
    slots = [s for s in d.informable if s in d.kb_slots]
    entry = env.kb.entry(0)
    env.heard = {s: entry[s] for s in slots}  # entry 0 itself: it matches, nobody is suspect
    assert env.kb.match(env.heard).any() and not env._observation()[suspects].any()
    env.heard, misheard = _misheard(env)  # nothing matches; dropping `misheard` would leave entry 0
    obs = env._observation()
    assert obs.shape == env.observation_space.shape
    assert obs[suspects][d.informable.index(misheard)] == 1.0
    rest = [{k: v for k, v in env.heard.items() if k != s} for s in d.informable]
    expected = [float(s in slots and env.kb.match(r).any()) for s, r in zip(d.informable, rest, strict=True)]
    assert obs[suspects].tolist() == expected


def _misheard(env):
    """(heard, slot): knowledge-base entry 0's informable values with `slot`'s changed so that
    nothing matches."""
    d, entry = env.domain, env.kb.entry(0)
    heard = {s: entry[s] for s in d.informable if s in d.kb_slots}
    slot = next(iter(heard))
    others = {s: v for s, v in heard.items() if s != slot}
    heard[slot] = next(v for v in d.kb_slots[slot] if not env.kb.match({**others, slot: v}).any())
    return heard, slot


def test_the_observation_says_which_slots_the_last_user_turn_informed():
    """When nothing matches right after the user told a slot, that slot is the first suspect."""
    env = gym.make("textdqn/Dialogue-v0").unwrapped
    obs, _ = env.reset(seed=0)
    d, start = env.domain, len(USER_INTENTS)
    told = {s for s in d.informable if obs[start + d.informable.index(s)]}
    assert told and told == set(env.heard)  # the opening turn tells up to two constraints
    unheard = next(s for s in d.informable if s not in env.heard)
    obs, *_ = env.step(env.act_index[("request", unheard)])
    answered = {s for s in d.informable if obs[start + d.informable.index(s)]}
    assert answered == {unheard}
