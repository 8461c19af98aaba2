"""Baseline dialogue policies: the rule-based agent and the uniform-random agent.

The rule agent is TC-Bot's baseline in our action space: request every informable slot it
has not heard yet (in the domain's order), then offer the first matching entry, answer the
user's requests about that entry once it is accepted, then book it. It gives up (bye) when
nothing matches, and re-offers after a rejection. The random agent picks
uniformly among all system acts, as TC-Bot's does (acts that make no sense then fail or
do nothing); `masked=True` restricts it to the acts the mask allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from textdqn.envs.dialogue.env import DialogueEnv


def rule_action(env: DialogueEnv) -> int:
    """The rule agent's next act in `env`'s current dialogue."""
    index = env.act_index
    mask = env.action_mask()
    for slot in env.domain.informable:
        if slot not in env.heard:
            return index[("request", slot)]
    if env.offered is None or env.last_user == "reject":
        offer = index[("offer", None)]
        return offer if mask[offer] else index[("bye", None)]
    asked = [slot for slot in env.domain.requestable if slot in env.user_requests]
    return index[("inform", asked[0])] if asked else index[("book", None)]


def random_action(env: DialogueEnv, rng: np.random.Generator, masked: bool = False) -> int:
    """A uniformly random act (among the allowed ones when `masked`)."""
    if masked:
        return int(rng.choice(np.flatnonzero(env.action_mask())))
    return int(rng.integers(len(env.acts)))
