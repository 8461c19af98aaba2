"""textdqn/Dialogue-v0 (vector observations): API, masks, rewards, baselines' extremes."""

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import textdqn.envs  # noqa: F401  (registers the textdqn/ ids)


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
    """Ask for every informable slot not heard yet, offer (again after a rejection) or say
    nothing matches, answer the user's requests, book."""
    index = {(a.intent, a.slot): i for i, a in enumerate(env.acts)}
    for slot in env.domain.informable:
        if slot not in env.heard:
            return index[("request", slot)]
    if env.offered is None or env.last_user == "reject":
        offer = index[("offer", None)]
        return offer if info["action_mask"][offer] else index[("no_match", None)]
    for slot in env.domain.requestable:
        if slot in env.user_requests:
            return index[("inform", slot)]
    return index[("book", None)]


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


def test_random_agent_almost_never_succeeds_and_a_scripted_one_often_does():
    env = gym.make("textdqn/Dialogue-v0")
    rng = np.random.default_rng(0)
    random_success, random_returns = _run(
        env, lambda e, info: rng.choice(np.flatnonzero(info["action_mask"])), 200
    )
    assert random_success.mean() < 0.05
    scripted_success, scripted_returns = _run(env, _scripted, 200)
    assert scripted_success.mean() > 0.8
    # Success pays +2·max_turn at the end, failure −max_turn, and every turn −1.
    assert scripted_returns[scripted_success == 1].min() > 0 > random_returns[random_success == 0].max()


def test_noise_changes_what_the_system_hears():
    clean = gym.make("textdqn/Dialogue-v0")
    noisy = gym.make("textdqn/Dialogue-v0", nlu_error=0.3)
    clean_success, _ = _run(clean, _scripted, 100)
    noisy_success, _ = _run(noisy, _scripted, 100)
    assert noisy_success.mean() < clean_success.mean()
