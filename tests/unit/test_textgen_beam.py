"""Constrained beam search (textdqn/envs/textgen/beam.py) and TextGen-v0's beam baseline."""

import itertools

import numpy as np
import pytest

from textdqn.envs.textgen.beam import constrained_beam
from textdqn.envs.textgen.env import TextGenEnv

EOS, CONCEPT, V, LIMIT = 0, 3, 4, 4


def _bigram(seed):
    table = np.log(np.random.default_rng(seed).dirichlet(np.ones(V), size=V))
    return table, lambda prefixes: np.stack([table[p[-1] if p else 1] for p in prefixes])


def _mask(prefix, logp):
    mask = np.ones(V, dtype=bool)
    mask[EOS] = CONCEPT in prefix  # EOS once the concept is used
    return mask


def _progress(prefix):
    return int(CONCEPT in prefix)


def _exhaustive(table, bonus):
    """The best text by enumeration: every sequence ending with EOS after the concept."""
    best, best_score = None, -np.inf
    for n in range(1, LIMIT + 1):
        for seq in itertools.product(range(1, V), repeat=n - 1):
            text = [*seq, EOS]
            if CONCEPT not in seq:
                continue
            prev = [1, *text[:-1]]
            score = sum(table[a, b] for a, b in zip(prev, text, strict=True)) + bonus * n
            if score > best_score:
                best, best_score = text, score
    return best


def test_a_wide_enough_beam_finds_the_best_text_and_the_length_bonus_picks_longer_ones():
    lengths = {0.0: [], 2.0: []}
    for seed in range(6):
        table, next_logps = _bigram(seed)
        for bonus in lengths:
            found = constrained_beam(
                next_logps, _mask, _progress, EOS, LIMIT, length_bonus=bonus, width=V**LIMIT
            )
            assert found == _exhaustive(table, bonus)
            lengths[bonus].append(len(found))
    assert all(b >= a for a, b in zip(lengths[0.0], lengths[2.0], strict=True))
    assert sum(lengths[2.0]) > sum(lengths[0.0])


def test_without_a_finished_text_the_beam_returns_the_one_of_most_progress_cut_at_the_limit():
    table, next_logps = _bigram(0)
    table[:, CONCEPT] = -20.0  # the concept is very unlikely: greedy beams of width 1 would skip it
    found = constrained_beam(next_logps, _mask, _progress, EOS, max_new_tokens=1, width=1)
    assert found == [CONCEPT]  # the one-token text with the concept, although EOS is out of reach


def test_the_beam_baseline_writes_every_concept_within_the_env_masks_and_ends():
    env = TextGenEnv(split="test", top_k=4, eos_after_concepts=True, kl_coef=0.05)
    longer = TextGenEnv(split="test", top_k=4, eos_after_concepts=True, kl_coef=0.05, token_bonus=0.05)
    lengths = []
    for e in (env, longer):
        total = 0
        for index in range(3):
            e.reset(seed=0, options={"prompt_index": index})
            done = False
            while not done:
                action = e.beam_action()
                assert e.action_mask()[action]
                _, _, done, _, info = e.step(action)
            assert info["coverage"] == 1.0 and info["eos"] == 1.0
            total += info["length"]
        lengths.append(total)
    assert lengths[1] > lengths[0]  # token_bonus / kl_coef = 1 nat a token: longer texts


def test_a_warm_start_with_the_beam_agent_acts_the_beam_texts_then_hands_over():
    from textdqn.actors.worker import RolloutWorker
    from textdqn.config import ActorConfig, Config, EnvConfig, load_config
    from textdqn.errors import ConfigError

    kwargs = {"top_k": 4, "eos_after_concepts": True, "kl_coef": 0.05}
    env = EnvConfig(id="textdqn/TextGen-v0", num_envs=2, kwargs=kwargs)
    actors = ActorConfig(warm_start_steps=30, warm_start_agent="beam", epsilon=1.0, epsilon_alpha=0.0)
    worker = RolloutWorker(Config(env=env, actors=actors), 0)
    _, warm = worker.rollout(30)
    assert warm.episode_returns and set(warm.episode_metrics["success"]) == {1.0}  # every concept used
    _, after = worker.rollout(300)  # ε = 1: uniform over the allowed tokens, often cut at the limit
    assert np.mean(after.episode_metrics["success"]) < 0.9
    with pytest.raises(ConfigError, match="warm_start_agent = 'oracle' is not accepted"):
        load_config("configs/textgen-fluent.yaml", ["actors.warm_start_agent=oracle"])
