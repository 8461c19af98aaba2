"""An agenda-based user simulator (after Schatzmann et al. 2007 and TC-Bot).

The user holds a goal (constraints and requested slots) and answers each system turn:
requests for its constraints are answered, confirmations checked, informs of requested
slots noted, offers accepted (which answers requests for the domain's offer_slots) or
rejected with a correction, and a booking ends the dialogue. When nothing asks it
anything, it works through its agenda: tell the next untold constraint, then ask the next
unanswered request.

Success needs a booked entry that satisfies every goal constraint, every user-only
constraint told and every requested slot informed; or, for a goal nothing satisfies,
the system saying so (no_match) once the constraints the user told rule out every entry.
Turns count both sides; past `max_turns` the dialogue fails. NLU noise corrupts what the
system *perceives* of each user act, never the user's own state.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from textdqn.envs.dialogue.acts import USER_INTENTS, SystemAct, UserAct
from textdqn.envs.dialogue.domain import Domain, KnowledgeBase, UserGoal


@dataclasses.dataclass(frozen=True)
class SystemTurn:
    """A system act with what the environment resolved for it.

    value: for confirm, the value the system believes; for inform, the offered entry's value.
    entry: for offer and book, the knowledge-base entry index.
    """

    act: SystemAct
    value: str | None = None
    entry: int | None = None


@dataclasses.dataclass
class UserState:
    goal: UserGoal
    told: dict[str, str] = dataclasses.field(default_factory=dict)
    answered: set[str] = dataclasses.field(default_factory=set)
    turns: int = 0
    done: bool = False
    success: bool = False


class UserSimulator:
    """One simulated user at a time: `reset(goal)` opens, `respond(turn)` answers."""

    def __init__(self, domain: Domain, kb: KnowledgeBase, max_turns: int = 40) -> None:
        self.domain, self.kb, self.max_turns = domain, kb, max_turns
        self.state: UserState | None = None

    def reset(self, goal: UserGoal, rng: np.random.Generator) -> UserAct:
        """The opening turn: inform up to two constraints and ask the first request."""
        self.state = UserState(goal=goal, turns=1)
        slots = list(goal.constraints)
        told = [str(s) for s in rng.choice(slots, min(2, len(slots)), replace=False)]
        return self._inform(told, request=goal.requests[:1])

    def respond(self, turn: SystemTurn) -> UserAct:
        """The user's answer to `turn`; sets `state.done` / `state.success` when it ends."""
        s = self.state
        s.turns += 2
        intent, slot = turn.act.intent, turn.act.slot
        if intent in ("book", "no_match", "bye"):
            s.done = True
            s.success = self._succeeds(turn)
            return UserAct("thanks")
        if s.turns >= self.max_turns:
            s.done = True
        if intent == "request":
            if slot in s.goal.constraints:
                return self._inform([slot])
            return UserAct("dont_care", inform={slot: "any"})
        if intent == "confirm":
            if slot not in s.goal.constraints:
                return UserAct("dont_care", inform={slot: "any"})
            if turn.value == s.goal.constraints[slot]:
                return UserAct("confirm_yes", inform={slot: turn.value})
            return self._inform([slot])
        if intent == "inform" and slot in s.goal.requests and turn.value is not None:
            s.answered.add(slot)
        if intent == "offer" and turn.entry is not None:
            violated = self._violated(turn.entry)
            if violated:
                return dataclasses.replace(self._inform(violated[:1]), intent="reject")
            # An offer tells the entry's offer_slots (name, place, time, ...): those requests are answered.
            s.answered |= set(self.domain.offer_slots) & set(s.goal.requests)
            return UserAct("accept", request=self._pending_requests()[:1])
        return self._next_on_agenda()

    def _inform(self, slots: list[str], request: tuple[str, ...] = ()) -> UserAct:
        values = {slot: self.state.goal.constraints[slot] for slot in slots}
        self.state.told.update(values)
        return UserAct("inform", inform=values, request=tuple(request))

    def _pending_requests(self) -> tuple[str, ...]:
        return tuple(r for r in self.state.goal.requests if r not in self.state.answered)

    def _next_on_agenda(self) -> UserAct:
        untold = [s for s in self.state.goal.constraints if s not in self.state.told]
        if untold:
            return self._inform(untold[:1])
        pending = self._pending_requests()
        if pending:
            return UserAct("request", request=pending[:1])
        return UserAct("accept")

    def _violated(self, entry: int) -> list[str]:
        values = self.kb.entry(entry)
        return [s for s, v in self.state.goal.constraints.items() if s in values and values[s] != v]

    def _succeeds(self, turn: SystemTurn) -> bool:
        s, goal = self.state, self.state.goal
        if s.turns > self.max_turns:
            return False
        if turn.act.intent == "no_match":
            # Right only when what the user has told already rules out every entry.
            return not goal.feasible and not self.kb.match(s.told).any()
        if turn.act.intent != "book" or turn.entry is None or not goal.feasible:
            return False
        user_only = [k for k in goal.constraints if k in self.domain.user_slots]
        return (
            not self._violated(turn.entry)
            and all(k in s.told for k in user_only)
            and not self._pending_requests()
        )


def perceive(act: UserAct, domain: Domain, error_rate: float, rng: np.random.Generator) -> UserAct:
    """What the system's NLU hears: with probability `error_rate` the intent is replaced by
    another, and independently each informed value by another value of its slot."""
    if error_rate <= 0:
        return act
    intent = act.intent
    if rng.random() < error_rate:
        intent = str(rng.choice([i for i in USER_INTENTS if i != act.intent]))
    inform = {}
    for slot, value in act.inform.items():
        values = domain.values(slot) if slot in domain.slots else (value,)
        if value != "any" and len(values) > 1 and rng.random() < error_rate:
            value = str(rng.choice([v for v in values if v != value]))
        inform[slot] = value
    return UserAct(intent, inform=inform, request=act.request)
