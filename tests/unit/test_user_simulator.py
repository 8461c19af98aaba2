"""The agenda-based user simulator on scripted dialogues."""

import numpy as np
import pytest

from textdqn.envs.dialogue.acts import SystemAct, UserAct, system_acts
from textdqn.envs.dialogue.domain import load_domain, make_goals, make_kb
from textdqn.envs.dialogue.user_simulator import SystemTurn, UserSimulator, perceive

DOMAIN = load_domain("movies")
KB = make_kb(DOMAIN, 0)
TRAIN, _ = make_goals(DOMAIN, KB, seed=0)
FEASIBLE = [g for g in TRAIN if g.feasible]
INFEASIBLE = [g for g in TRAIN if not g.feasible]


def _perfect_dialogue(goal, sim, rng):
    """Ask for every constraint, offer a matching entry, inform the requests, book it."""
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(sim.state.told))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=entry)).intent == "accept"
    for slot in goal.requests:
        sim.respond(SystemTurn(SystemAct("inform", slot), value=KB.entry(entry)[slot]))
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    return sim.state


def test_a_perfect_policy_succeeds_on_every_feasible_goal():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    for goal in FEASIBLE[:50]:
        state = _perfect_dialogue(goal, sim, rng)
        assert state.done and state.success, goal


def test_booking_a_wrong_entry_fails():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    goal = FEASIBLE[0]
    sim.reset(goal, rng)
    wrong = int(np.flatnonzero(~KB.match(goal.constraints))[0])
    reply = sim.respond(SystemTurn(SystemAct("offer"), entry=wrong))
    assert reply.intent == "reject" and reply.inform  # with a correction
    sim.respond(SystemTurn(SystemAct("book"), entry=wrong))
    assert sim.state.done and not sim.state.success


def test_unanswered_requests_make_a_correct_booking_fail():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    goal = FEASIBLE[1]
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(goal.constraints))[0])
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    assert not sim.state.success


def test_max_turns_fails():
    sim, rng = UserSimulator(DOMAIN, KB, max_turns=40), np.random.default_rng(0)
    sim.reset(FEASIBLE[0], rng)
    system_turns = 0
    while not sim.state.done:
        sim.respond(SystemTurn(SystemAct("greeting")))
        system_turns += 1
    assert system_turns == 20 and not sim.state.success  # 1 + 2·20 turns > 40


def test_no_match_succeeds_only_for_infeasible_goals_once_the_user_told_enough():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    guesses = 0
    for goal in INFEASIBLE[:20]:
        sim.reset(goal, rng)
        if KB.match(sim.state.told).any():
            # Saying "nothing matches" before the user told what rules it out is a guess: fail.
            sim.respond(SystemTurn(SystemAct("no_match")))
            assert sim.state.done and not sim.state.success
            guesses += 1
    assert guesses > 0
    goal = INFEASIBLE[0]
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    sim.respond(SystemTurn(SystemAct("no_match")))
    assert sim.state.success
    sim.reset(FEASIBLE[0], rng)
    for slot in FEASIBLE[0].constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    sim.respond(SystemTurn(SystemAct("no_match")))
    assert not sim.state.success


def test_an_accepted_offer_answers_requests_for_the_offer_slots():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    goal = next(g for g in FEASIBLE if set(g.requests) <= set(DOMAIN.offer_slots))
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(goal.constraints))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=entry)).intent == "accept"
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    assert sim.state.success


def test_confirm_and_dont_care():
    sim, rng = UserSimulator(DOMAIN, KB), np.random.default_rng(0)
    goal = FEASIBLE[0]
    sim.reset(goal, rng)
    slot, value = next(iter(goal.constraints.items()))
    assert sim.respond(SystemTurn(SystemAct("confirm", slot), value=value)).intent == "confirm_yes"
    other = next(v for v in DOMAIN.values(slot) if v != value)
    corrected = sim.respond(SystemTurn(SystemAct("confirm", slot), value=other))
    assert corrected.intent == "inform" and corrected.inform == {slot: value}
    free = next(s for s in DOMAIN.informable if s not in goal.constraints)
    assert sim.respond(SystemTurn(SystemAct("request", free))).intent == "dont_care"


def test_noise_zero_changes_nothing_and_noise_rate_is_respected():
    act = UserAct("inform", inform={"city": "seattle", "date": "today"}, request=("price",))
    rng = np.random.default_rng(0)
    assert all(perceive(act, DOMAIN, 0.0, rng) == act for _ in range(100))
    heard = [perceive(act, DOMAIN, 0.3, rng) for _ in range(4000)]
    intent_errors = np.mean([h.intent != "inform" for h in heard])
    value_errors = np.mean([h.inform["city"] != "seattle" for h in heard])
    assert intent_errors == pytest.approx(0.3, abs=0.03) and value_errors == pytest.approx(0.3, abs=0.03)


def test_action_space_is_built_from_the_domain():
    acts = system_acts(DOMAIN)
    assert len(acts) == 1 + 2 * len(DOMAIN.informable) + len(DOMAIN.requestable) + 4
    assert len(set(acts)) == len(acts)
    assert len(system_acts(load_domain("restaurants"))) == 1 + 2 * 7 + 5 + 4
