"""Dialogue acts: what the system and the simulated user say to each other.

System acts form the agent's discrete action space, built from the domain:
greeting, request(slot) per informable slot, confirm(slot) per informable slot,
inform(slot) per requestable slot (the value of the offered entry), offer (the first
entry matching the constraints heard so far), book (the offered entry), no_match (tell
the user nothing fits their constraints), bye.
"""

from __future__ import annotations

import dataclasses

from textdqn.envs.dialogue.domain import Domain

USER_INTENTS = (
    "greeting", "inform", "request", "confirm_yes", "accept", "reject", "thanks", "dont_care", "change",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SystemAct:
    """One system action: an intent and, for slot acts, the slot."""

    intent: str
    slot: str | None = None


@dataclasses.dataclass(frozen=True)
class UserAct:
    """One user act: an intent, and the slots it informs (slot -> value) or requests."""

    intent: str
    inform: dict[str, str] = dataclasses.field(default_factory=dict)
    request: tuple[str, ...] = ()


def system_acts(domain: Domain) -> tuple[SystemAct, ...]:
    """The agent's action space for `domain`, in a fixed order."""
    acts = [SystemAct("greeting")]
    acts += [SystemAct("request", s) for s in domain.informable]
    acts += [SystemAct("confirm", s) for s in domain.informable]
    acts += [SystemAct("inform", s) for s in domain.requestable]
    acts += [SystemAct("offer"), SystemAct("book"), SystemAct("no_match"), SystemAct("bye")]
    return tuple(acts)
