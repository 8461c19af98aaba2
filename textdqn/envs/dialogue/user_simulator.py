"""An agenda-based user simulator (after Schatzmann et al. 2007 and TC-Bot).

The user holds a goal (constraints and requested slots) and answers each system turn:
requests for its constraints are answered, confirmations checked, offers accepted (the
accepted entry is then the one under discussion, and the offer answers requests for the
domain's offer_slots; the user accepts asking all it still wants to know) or rejected with
a correction, and a booking ends the dialogue. An
inform answers a request only when it carries the value of the entry under discussion;
an inform about any other entry (rejected, never accepted) is a wrong answer: the user
says so and asks again. When nothing asks it anything, it works through its agenda: tell
the next untold constraint, then ask the next unanswered request.

Users change their mind (MultiWOZ-style goal changes): a share `change_mind` of the users
with a feasible goal, once they accept an offer, revise one constraint they told to another
value that some entry still has ("actually, make it 9pm"). The accepted entry then no longer
fits, and the booking must be of one that fits the revised goal.

Users lose patience (the domain's `user:` rules, UserRules): a greeting past the first
`greeting_replies` gets a bare greeting back, and it, a repeated identical request,
confirmation or inform, an offer that contradicts a constraint the user already gave, a
wrong inform, or an inform of something the user did not ask about each cost one unit;
past `patience` the user leaves and the dialogue fails.

Success needs a booked entry that satisfies every (revised) goal constraint, every user-only
constraint told and every requested slot answered with the booked entry's value. A goal
nothing satisfies was made from a feasible one (UserGoal.fallback): once the system says so
(no_match) at the right time, when what the user told rules out every entry, the user
settles for the fallback and the dialogue goes on; a wrong no_match fails. (An infeasible
goal without a fallback succeeds on that no_match.)
Turns count both sides; past `max_turns` the dialogue fails. NLU noise corrupts what the
system *perceives* of each user act, never the user's own state.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from textdqn.envs.dialogue.acts import USER_INTENTS, SystemAct, UserAct
from textdqn.envs.dialogue.domain import Domain, KnowledgeBase, UserGoal, UserRules, change_one_constraint


@dataclasses.dataclass(frozen=True)
class SystemTurn:
    """A system act with what the environment resolved for it.

    value: for confirm, the value the system believes; for inform, the offered entry's value.
    entry: for offer, book and inform, the knowledge-base entry index (inform: the offered one).
    """

    act: SystemAct
    value: str | None = None
    entry: int | None = None


@dataclasses.dataclass
class UserState:
    goal: UserGoal
    constraints: dict[str, str] = dataclasses.field(default_factory=dict)
    """the goal's constraints as they stand (a user who changes its mind revises one)"""
    change: tuple[str, str] | None = None
    """(slot, new value) this user will switch to after accepting an offer, if it changes its mind"""
    changed: bool = False
    relaxed: bool = False
    """whether the user, told nothing matches, fell back to its goal's `fallback`"""
    told: dict[str, str] = dataclasses.field(default_factory=dict)
    answered: dict[str, int] = dataclasses.field(default_factory=dict)
    """requested slot -> the entry whose value the system told for it"""
    accepted: int | None = None
    """the entry under discussion: the last offer the user accepted"""
    asked: set[tuple[str, str | None]] = dataclasses.field(default_factory=set)
    turns: int = 0
    done: bool = False
    success: bool = False
    lapses: int = 0
    left: bool = False
    greetings: int = 0
    repeated_acts: int = 0
    offers_rejected: int = 0
    wrong_informs: int = 0
    unrequested_informs: int = 0

    def diagnostics(self) -> dict[str, float]:
        """Per-dialogue counts for the episode's info (and the evaluation's means)."""
        return {
            "greetings": float(self.greetings),
            "repeated_acts": float(self.repeated_acts),
            "offers_rejected": float(self.offers_rejected),
            "wrong_informs": float(self.wrong_informs),
            "any_wrong_inform": float(self.wrong_informs > 0),
            "unrequested_informs": float(self.unrequested_informs),
            "lapses": float(self.lapses),
            "user_left": float(self.left),
            "changed_mind": float(self.changed),
            "relaxed": float(self.relaxed),
        }


class UserSimulator:
    """One simulated user at a time: `reset(goal)` opens, `respond(turn)` answers."""

    def __init__(
        self, domain: Domain, kb: KnowledgeBase, max_turns: int = 40, rules: UserRules | None = None
    ) -> None:
        self.domain, self.kb, self.max_turns = domain, kb, max_turns
        self.rules = rules or domain.user_rules
        self.state: UserState | None = None

    def reset(self, goal: UserGoal, rng: np.random.Generator) -> UserAct:
        """The opening turn: inform up to two constraints and ask the first request."""
        self.state = UserState(goal=goal, constraints=dict(goal.constraints), turns=1)
        if goal.feasible and rng.random() < self.rules.change_mind:
            self.state.change = change_one_constraint(
                self.domain, self.kb, goal.constraints, rng, feasible=True
            )
        slots = list(goal.constraints)
        told = [str(s) for s in rng.choice(slots, min(2, len(slots)), replace=False)]
        return self._inform(told, request=goal.requests[:1])

    def respond(self, turn: SystemTurn) -> UserAct:
        """The user's answer to `turn`; sets `state.done` / `state.success` when it ends."""
        s = self.state
        s.turns += 2
        intent, slot = turn.act.intent, turn.act.slot
        if intent == "no_match" and s.goal.fallback and not s.relaxed and self._nothing_fits():
            s.done = s.turns >= self.max_turns  # out of turns: over, and failed
            return self._relax()  # right: nothing fits what the user said, so it settles for less
        if intent in ("book", "no_match", "bye"):
            s.done = True
            s.success = self._succeeds(turn)
            return UserAct("thanks")
        if s.turns >= self.max_turns:
            s.done = True
        if intent == "greeting":
            s.greetings += 1
            if s.greetings > self.rules.greeting_replies:  # hello again: nothing new, patience lost
                return self._lapse(UserAct("greeting"))
            return self._next_on_agenda()
        if intent in ("request", "confirm"):
            repeated = (intent, slot) in s.asked
            s.asked.add((intent, slot))
            s.repeated_acts += repeated
            reply = self._answer(intent, slot, turn.value)
            return self._lapse(reply) if repeated else reply
        if intent == "inform":
            if slot not in s.goal.requests or turn.value is None:
                s.unrequested_informs += 1  # nothing the user wants to know: patience lost
                return self._lapse(self._next_on_agenda())
            about = turn.entry if turn.entry is not None and turn.entry == s.accepted else None
            if about is None or turn.value != self.kb.entry(about)[slot]:
                s.wrong_informs += 1  # not about the entry under discussion: say so, ask again
                return self._lapse(UserAct("reject", request=(slot,)))
            if s.answered.get(slot) == about:  # told already
                s.repeated_acts += 1
                return self._lapse(self._next_on_agenda())
            s.answered[slot] = turn.entry
        if intent == "offer" and turn.entry is not None:
            violated = self._violated(turn.entry)
            if violated:
                s.offers_rejected += 1
                contradicts = any(v in s.told for v in violated)  # against what the user said
                reply = dataclasses.replace(self._inform(violated[:1]), intent="reject")
                return self._lapse(reply) if contradicts else reply
            s.accepted = turn.entry
            if s.change is not None and not s.changed:
                return self._change_mind()
            # An offer tells the entry's offer_slots (name, place, time, ...): those requests are answered.
            for r in set(self.domain.offer_slots) & set(s.goal.requests):
                s.answered[r] = turn.entry
            return UserAct("accept", request=self._pending_requests())  # all it still wants to know
        return self._next_on_agenda()

    def _nothing_fits(self) -> bool:
        """Whether what the user has told rules out every entry."""
        return not self.kb.match(self.state.told).any()

    def _relax(self) -> UserAct:
        """Told that nothing matches, fall back to the goal's original constraint."""
        s = self.state
        s.relaxed = True
        s.constraints.update(s.goal.fallback)
        s.told.update(s.goal.fallback)
        return UserAct("change", inform=dict(s.goal.fallback))

    def _change_mind(self) -> UserAct:
        """Revise the constraint in `state.change`: the accepted entry is no longer the one."""
        s = self.state
        slot, value = s.change
        s.changed, s.accepted = True, None
        s.constraints[slot] = value
        s.told[slot] = value
        return UserAct("change", inform={slot: value})

    def _answer(self, intent: str, slot: str | None, value: str | None) -> UserAct:
        """The reply to a request for, or a confirmation of, `slot`."""
        if slot not in self.state.constraints:
            return UserAct("dont_care", inform={slot: "any"})
        if intent == "confirm" and value == self.state.constraints[slot]:
            return UserAct("confirm_yes", inform={slot: value})
        return self._inform([slot])

    def _lapse(self, reply: UserAct) -> UserAct:
        """A turn that cost patience: past `rules.patience` such turns the user leaves."""
        s = self.state
        s.lapses += 1
        if s.lapses > self.rules.patience:
            s.done, s.left, s.success = True, True, False
            return UserAct("thanks")
        return reply

    def _inform(self, slots: list[str], request: tuple[str, ...] = ()) -> UserAct:
        values = {slot: self.state.constraints[slot] for slot in slots}
        self.state.told.update(values)
        return UserAct("inform", inform=values, request=tuple(request))

    def _pending_requests(self) -> tuple[str, ...]:
        """Requests not yet answered about the entry under discussion."""
        s = self.state
        return tuple(r for r in s.goal.requests if s.accepted is None or s.answered.get(r) != s.accepted)

    def _next_on_agenda(self) -> UserAct:
        untold = [s for s in self.state.constraints if s not in self.state.told]
        if untold:
            return self._inform(untold[:1])
        pending = self._pending_requests()
        if pending:
            return UserAct("request", request=pending[:1])
        return UserAct("accept")

    def _violated(self, entry: int) -> list[str]:
        values = self.kb.entry(entry)
        return [s for s, v in self.state.constraints.items() if s in values and values[s] != v]

    def _succeeds(self, turn: SystemTurn) -> bool:
        s, goal = self.state, self.state.goal
        if s.turns > self.max_turns:
            return False
        if turn.act.intent == "no_match":
            # Right only when what the user has told already rules out every entry.
            return not goal.feasible and not goal.fallback and self._nothing_fits()
        if turn.act.intent != "book" or turn.entry is None:
            return False  # the constraints as they stand: an unrelaxed infeasible goal violates one
        user_only = [k for k in s.constraints if k in self.domain.user_slots]
        return (
            not self._violated(turn.entry)
            and all(k in s.told for k in user_only)
            and all(s.answered.get(r) == turn.entry for r in goal.requests)  # about the booked entry
        )


def perceive(act: UserAct, domain: Domain, error_rate: float, rng: np.random.Generator) -> UserAct:
    """What the system's NLU hears: with probability `error_rate` the intent is replaced by
    another, and independently each informed value by another value of its slot. A
    confirmation ("yes", "that's right") says no value: its slot carries the value the system
    proposed, which nothing can mishear."""
    if error_rate <= 0:
        return act
    intent = act.intent
    if rng.random() < error_rate:
        intent = str(rng.choice([i for i in USER_INTENTS if i != act.intent]))
    inform = {}
    for slot, value in act.inform.items():
        values = domain.values(slot) if slot in domain.slots else (value,)
        said = act.intent != "confirm_yes" and value != "any"
        if said and len(values) > 1 and rng.random() < error_rate:
            value = str(rng.choice([v for v in values if v != value]))
        inform[slot] = value
    return UserAct(intent, inform=inform, request=act.request)
