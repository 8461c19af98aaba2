"""The agenda-based user simulator on scripted dialogues."""

import dataclasses

import numpy as np
import pytest

from textdqn.envs.dialogue.acts import SystemAct, UserAct, system_acts
from textdqn.envs.dialogue.domain import DOMAINS_DIR as DOMAIN_DIR
from textdqn.envs.dialogue.domain import UserRules, load_domain, make_goals, make_kb
from textdqn.envs.dialogue.user_simulator import SystemTurn, UserSimulator, perceive
from textdqn.errors import ConfigError

DOMAIN = load_domain("movies")
KB = make_kb(DOMAIN, 0)
TRAIN, _ = make_goals(DOMAIN, KB, seed=0)
FEASIBLE = [g for g in TRAIN if g.feasible]
INFEASIBLE = [g for g in TRAIN if not g.feasible]
STEADY = UserRules(change_mind=0.0)  # users who never change their mind


def _perfect_dialogue(goal, sim, rng):
    """Ask for every constraint, offer a matching entry, inform the requests, book it."""
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(sim.state.told))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=entry)).intent == "accept"
    for slot in goal.requests:
        sim.respond(_inform(slot, entry))
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    return sim.state


def _inform(slot, entry):
    """The system telling `slot` of `entry`, as the env resolves an inform."""
    return SystemTurn(SystemAct("inform", slot), value=KB.entry(entry)[slot], entry=entry)


def _two_matching_entries_that_differ():
    """A feasible goal with a request outside the offer slots, and two entries satisfying it
    whose values for that request differ."""
    for goal in FEASIBLE:
        asked = [r for r in goal.requests if r not in DOMAIN.offer_slots]
        matches = np.flatnonzero(KB.match(goal.constraints))
        for r in asked:
            values = {KB.entry(int(e))[r]: int(e) for e in matches}
            if len(values) >= 2:
                a, b = list(values.values())[:2]
                return goal, r, a, b
    raise AssertionError("no such goal")


def _told_everything(goal, sim, rng):
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))


def test_a_perfect_policy_succeeds_on_every_feasible_goal():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    for goal in FEASIBLE[:50]:
        state = _perfect_dialogue(goal, sim, rng)
        assert state.done and state.success, goal


def test_booking_a_wrong_entry_fails():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal = FEASIBLE[0]
    sim.reset(goal, rng)
    wrong = int(np.flatnonzero(~KB.match(goal.constraints))[0])
    reply = sim.respond(SystemTurn(SystemAct("offer"), entry=wrong))
    assert reply.intent == "reject" and reply.inform  # with a correction
    sim.respond(SystemTurn(SystemAct("book"), entry=wrong))
    assert sim.state.done and not sim.state.success


def test_unanswered_requests_make_a_correct_booking_fail():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal = FEASIBLE[1]
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(goal.constraints))[0])
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    assert not sim.state.success


def test_max_turns_fails():
    patient = UserRules(patience=100, greeting_replies=100, change_mind=0.0)
    sim, rng = UserSimulator(DOMAIN, KB, max_turns=40, rules=patient), np.random.default_rng(0)
    sim.reset(FEASIBLE[0], rng)
    system_turns = 0
    while not sim.state.done:
        sim.respond(SystemTurn(SystemAct("greeting")))
        system_turns += 1
    assert system_turns == 20 and not sim.state.success  # 1 + 2·20 turns > 40


def _book_what_fits(goal, sim):
    """Offer the first entry fitting the user's constraints as they stand, inform, book."""
    entry = int(np.flatnonzero(KB.match(sim.state.constraints))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=entry)).intent == "accept"
    for slot in goal.requests:
        sim.respond(_inform(slot, entry))
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    return entry


def test_no_match_once_the_user_told_enough_makes_it_fall_back_and_a_guess_fails():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
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
    assert goal.fallback and not KB.match(goal.constraints).any()
    _told_everything(goal, sim, rng)
    reply = sim.respond(SystemTurn(SystemAct("no_match")))
    assert reply == UserAct("change", inform=goal.fallback) and not sim.state.done  # settles for less
    assert sim.state.relaxed and KB.match(sim.state.constraints).any()
    _book_what_fits(goal, sim)
    assert sim.state.success
    # Booking without saying no_match never makes the user fall back: every entry violates a constraint.
    _told_everything(goal, sim, rng)
    fits_fallback = int(np.flatnonzero(KB.match({**goal.constraints, **goal.fallback}))[0])
    sim.respond(SystemTurn(SystemAct("book"), entry=fits_fallback))
    assert sim.state.done and not sim.state.success
    _told_everything(FEASIBLE[0], sim, rng)
    sim.respond(SystemTurn(SystemAct("no_match")))
    assert sim.state.done and not sim.state.success


def test_an_infeasible_goal_without_fallback_succeeds_on_a_timely_no_match():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal = dataclasses.replace(INFEASIBLE[0], fallback=None)
    _told_everything(goal, sim, rng)
    sim.respond(SystemTurn(SystemAct("no_match")))
    assert sim.state.done and sim.state.success


# --- users who change their mind ---


def test_a_user_who_changes_its_mind_needs_a_new_offer_before_the_booking():
    sim, rng = UserSimulator(DOMAIN, KB, rules=UserRules(change_mind=1.0)), np.random.default_rng(0)
    goal = FEASIBLE[0]
    _told_everything(goal, sim, rng)
    slot, value = sim.state.change
    assert value != goal.constraints[slot] and KB.match({**goal.constraints, slot: value}).any()
    first = int(np.flatnonzero(KB.match(goal.constraints))[0])
    reply = sim.respond(SystemTurn(SystemAct("offer"), entry=first))
    assert reply == UserAct("change", inform={slot: value}) and sim.state.accepted is None
    for r in goal.requests:  # answers about the entry the user no longer wants
        assert sim.respond(_inform(r, first)).intent == "reject"
    sim.respond(SystemTurn(SystemAct("book"), entry=first))
    assert sim.state.done and not sim.state.success and sim.state.diagnostics()["changed_mind"] == 1
    # The same user, offered an entry that fits the revised goal, books it.
    _told_everything(goal, sim, rng)
    sim.respond(SystemTurn(SystemAct("offer"), entry=first))
    entry = _book_what_fits(goal, sim)
    assert entry != first and sim.state.success


def test_the_share_of_users_who_change_their_mind_follows_the_rules():
    rng = np.random.default_rng(0)
    for share in (0.0, 0.5):
        sim = UserSimulator(DOMAIN, KB, rules=UserRules(change_mind=share))
        changes = []
        for goal in FEASIBLE[:400]:
            sim.reset(goal, rng)
            changes.append(sim.state.change is not None)
        assert np.mean(changes) == pytest.approx(share, abs=0.06)


def test_an_accepted_offer_answers_requests_for_the_offer_slots():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal = next(g for g in FEASIBLE if set(g.requests) <= set(DOMAIN.offer_slots))
    sim.reset(goal, rng)
    for slot in goal.constraints:
        sim.respond(SystemTurn(SystemAct("request", slot)))
    entry = int(np.flatnonzero(KB.match(goal.constraints))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=entry)).intent == "accept"
    sim.respond(SystemTurn(SystemAct("book"), entry=entry))
    assert sim.state.success


def test_confirm_and_dont_care():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
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


def test_a_confirmations_yes_carries_the_proposed_value_unmisheard():
    """The user says "yes" to a confirmation: its intent can be misheard, its value cannot
    (the value is the one the system proposed, not something the user said)."""
    act = UserAct("confirm_yes", inform={"city": "seattle"})
    rng = np.random.default_rng(0)
    heard = [perceive(act, DOMAIN, 0.3, rng) for _ in range(2000)]
    assert all(h.inform == {"city": "seattle"} for h in heard)
    assert np.mean([h.intent != "confirm_yes" for h in heard]) == pytest.approx(0.3, abs=0.04)


def test_action_space_is_built_from_the_domain():
    acts = system_acts(DOMAIN)
    assert len(acts) == 1 + 2 * len(DOMAIN.informable) + len(DOMAIN.requestable) + 4
    assert len(set(acts)) == len(acts)
    assert len(system_acts(load_domain("restaurants"))) == 1 + 2 * 7 + 5 + 4


# --- the entry under discussion ---


def test_an_inform_about_another_entry_is_a_wrong_answer_and_the_booking_fails():
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal, slot, booked, other = _two_matching_entries_that_differ()
    _told_everything(goal, sim, rng)
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=booked)).intent == "accept"
    reply = sim.respond(_inform(slot, other))  # the value of an entry never offered
    assert reply.intent == "reject" and reply.request == (slot,)  # says so, asks again
    assert sim.state.wrong_informs == 1
    for r in goal.requests:
        if r != slot:
            sim.respond(_inform(r, booked))
    sim.respond(SystemTurn(SystemAct("book"), entry=booked))
    assert sim.state.done and not sim.state.success


def test_answers_about_an_earlier_offer_do_not_count_for_the_booked_one():
    """Accept A, hear A's value, then accept C and book it: the user never heard C's value."""
    sim, rng = UserSimulator(DOMAIN, KB, rules=STEADY), np.random.default_rng(0)
    goal, _, first, second = _two_matching_entries_that_differ()
    _told_everything(goal, sim, rng)
    sim.respond(SystemTurn(SystemAct("offer"), entry=first))
    for r in goal.requests:
        sim.respond(_inform(r, first))
    assert sim.state.wrong_informs == 0
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=second)).request  # asks again
    sim.respond(SystemTurn(SystemAct("book"), entry=second))
    assert not sim.state.success
    # The same dialogue answering the booked entry's values succeeds.
    _told_everything(goal, sim, rng)
    sim.respond(SystemTurn(SystemAct("offer"), entry=first))
    sim.respond(SystemTurn(SystemAct("offer"), entry=second))
    for r in goal.requests:
        sim.respond(_inform(r, second))
    sim.respond(SystemTurn(SystemAct("book"), entry=second))
    assert sim.state.success and sim.state.wrong_informs == 0


# --- patience ---


def test_repeated_greetings_exhaust_patience_and_the_user_leaves():
    sim, rng = (
        UserSimulator(DOMAIN, KB, rules=UserRules(patience=2, greeting_replies=1, change_mind=0.0)),
        np.random.default_rng(0),
    )
    sim.reset(FEASIBLE[0], rng)
    first = sim.respond(SystemTurn(SystemAct("greeting")))
    assert first.intent == "inform"  # the first greeting gets the next constraint
    assert sim.respond(SystemTurn(SystemAct("greeting"))) == UserAct("greeting")  # nothing new
    sim.respond(SystemTurn(SystemAct("greeting")))
    assert not sim.state.done  # two lapses forgiven
    assert sim.respond(SystemTurn(SystemAct("greeting"))).intent == "thanks"
    assert sim.state.done and sim.state.left and not sim.state.success
    assert sim.state.diagnostics()["greetings"] == 4 and sim.state.diagnostics()["user_left"] == 1


def test_repeated_questions_and_contradicting_offers_cost_patience_but_new_ones_do_not():
    sim = UserSimulator(DOMAIN, KB, rules=UserRules(patience=1, change_mind=0.0))
    rng = np.random.default_rng(0)
    goal = FEASIBLE[0]
    sim.reset(goal, rng)
    slots = list(goal.constraints)
    for slot in slots:  # each asked once: no cost
        sim.respond(SystemTurn(SystemAct("request", slot)))
    assert sim.state.lapses == 0
    sim.respond(SystemTurn(SystemAct("request", slots[0])))  # asked before
    assert sim.state.lapses == 1 and sim.state.repeated_acts == 1 and not sim.state.done
    told = next(s for s in slots if s in DOMAIN.kb_slots)
    wrong = int(np.flatnonzero(~KB.match({told: goal.constraints[told]}))[0])
    assert sim.respond(SystemTurn(SystemAct("offer"), entry=wrong)).intent == "thanks"  # contradicts: gone
    assert sim.state.left and sim.state.offers_rejected == 1


def test_an_offer_against_a_constraint_not_yet_told_is_a_plain_rejection():
    sim = UserSimulator(DOMAIN, KB, rules=UserRules(patience=0, change_mind=0.0))
    rng = np.random.default_rng(0)
    goal = FEASIBLE[0]
    sim.reset(goal, rng)
    untold = [s for s in goal.constraints if s not in sim.state.told and s in DOMAIN.kb_slots]
    fits_told = KB.match(sim.state.told) & ~KB.match({untold[0]: goal.constraints[untold[0]]})
    reply = sim.respond(SystemTurn(SystemAct("offer"), entry=int(np.flatnonzero(fits_told)[0])))
    assert reply.intent == "reject" and not sim.state.done and sim.state.lapses == 0


def test_user_rules_come_from_the_domain_file(tmp_path):
    text = (DOMAIN_DIR / "movies.yaml").read_text() + "user: {patience: 5, greeting_replies: 0}\n"
    (tmp_path / "d.yaml").write_text(text)
    assert load_domain(str(tmp_path / "d.yaml")).user_rules == UserRules(patience=5, greeting_replies=0)
    (tmp_path / "bad.yaml").write_text(text.replace("patience: 5", "patiense: 5"))
    with pytest.raises(ConfigError, match=r"unknown keys \['patiense'\].*patience"):
        load_domain(str(tmp_path / "bad.yaml"))
    (tmp_path / "neg.yaml").write_text(text.replace("patience: 5", "patience: -1"))
    with pytest.raises(ConfigError, match=r"user\.patience must be a whole number >= 0"):
        load_domain(str(tmp_path / "neg.yaml"))


def test_informs_the_user_did_not_ask_for_or_heard_already_cost_patience():
    sim, rng = (
        UserSimulator(DOMAIN, KB, rules=UserRules(patience=2, change_mind=0.0)),
        np.random.default_rng(0),
    )
    goal = next(g for g in FEASIBLE if set(g.requests) - set(DOMAIN.offer_slots))
    _told_everything(goal, sim, rng)
    entry = int(np.flatnonzero(KB.match(goal.constraints))[0])
    sim.respond(SystemTurn(SystemAct("offer"), entry=entry))
    unasked = next(s for s in DOMAIN.requestable if s not in goal.requests)
    sim.respond(_inform(unasked, entry))  # filler: "the <slot> is ..." that nobody asked about
    assert sim.state.lapses == 1 and sim.state.diagnostics()["unrequested_informs"] == 1
    asked = next(r for r in goal.requests if r not in DOMAIN.offer_slots)
    sim.respond(_inform(asked, entry))
    assert sim.state.lapses == 1  # a requested value of the accepted entry: welcome
    sim.respond(_inform(asked, entry))  # the same again
    assert sim.state.lapses == 2 and sim.state.repeated_acts == 1 and not sim.state.done
    assert sim.respond(_inform(unasked, entry)).intent == "thanks" and sim.state.left


def test_falling_back_at_the_turn_limit_ends_the_dialogue_as_a_failure():
    sim, rng = (
        UserSimulator(DOMAIN, KB, max_turns=40, rules=UserRules(patience=100, change_mind=0.0)),
        np.random.default_rng(0),
    )
    goal = INFEASIBLE[0]
    _told_everything(goal, sim, rng)
    while sim.state.turns < 39:
        sim.respond(SystemTurn(SystemAct("request", next(iter(goal.constraints)))))
    assert not sim.state.done
    assert sim.respond(SystemTurn(SystemAct("no_match"))).intent == "change"
    assert sim.state.relaxed and sim.state.done and not sim.state.success
