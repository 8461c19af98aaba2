"""Dialogue acts as natural language, and the word-level tokenizer of a domain.

Pure functions, no gym: `render_user` / `render_system` turn the acts exchanged with the
user simulator into text from the domain file's `templates` (a variant drawn with the rng
given), `render_goal` describes a user goal on one line, `build_tokenizer` makes the
domain's tokenizer and `encode_dialogue` turns a transcript into the fixed-length token ids
of `textdqn/Dialogue-v0`'s "tokens" observations.

Templates fill `{slot}`, `{value}`, `{entity}` and `{summary}`; `templates.system.summary`
describes a knowledge-base entry with its slots by name (`{moviename} at {theater}`). The
English lives in the domain files, never here. A placeholder must be separated from the
words around it by a space or punctuation, so that every word the templates can produce is
a word of the tokenizer's vocabulary.

The tokenizer is built by textdqn/envs/word_tokenizer.py, which also saves and loads it.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from textdqn.envs.dialogue.acts import UserAct
from textdqn.envs.dialogue.domain import Domain, KnowledgeBase, UserGoal
from textdqn.envs.word_tokenizer import word_level_tokenizer
from textdqn.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from textdqn.envs.dialogue.user_simulator import SystemTurn

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[USR]", "[SYS]")
"""Ids 0..4 of every domain's tokenizer, in this order; [PAD] = 0 is the padding id."""
TURN_TOKENS = tuple(f"[T{k}]" for k in range(64))
"""Ids 5..68: "[Tk]" says the system has spoken k times so far (k >= 63 reads [T63])."""
PAD_ID = 0
DONT_CARE = "any"
"""The value the user simulator informs for a slot it does not care about."""
SPEAKERS = {"user": "[USR]", "system": "[SYS]"}
"""Transcript speakers and the token that opens each of their turns."""
_JOIN = ", "  # between the clauses of one turn (punctuation only: no English here)
_CLAUSE_INTENTS = ("inform", "request", "dont_care", "change")  # user intents said by their slots alone


def render_user(act: UserAct, domain: Domain, rng: np.random.Generator) -> str:
    """What the user says for `act`: the intent's template (greeting, accept, reject, ...), a
    clause per informed slot (`correct` for a reject's corrected constraint, `dont_care` for
    the value "any", `change` or else `correct` for a change of mind), then a clause per
    requested slot, joined by commas."""
    parts = [] if act.intent in _CLAUSE_INTENTS else [_fill(domain, "user", act.intent, rng)]
    if act.intent != "confirm_yes":  # "yes" confirms the value the system just said
        clause = {"reject": "correct", "change": _change_key(domain)}.get(act.intent, "inform")
        for slot, value in act.inform.items():
            key = "dont_care" if value == DONT_CARE else clause
            parts.append(_fill(domain, "user", key, rng, slot=slot, value=value))
    parts += [_fill(domain, "user", "request", rng, slot=slot) for slot in act.request]
    return _JOIN.join(parts)


def _change_key(domain: Domain) -> str:
    """A user's change of mind is said with `templates.user.change`, or `correct` without one."""
    return "change" if domain.templates.get("user", {}).get("change") else "correct"


def render_system(turn: SystemTurn, domain: Domain, kb: KnowledgeBase, rng: np.random.Generator) -> str:
    """What the system says for `turn` (its act with the value or entry the env resolved).

    Offers and bookings describe their entry with `templates.system.summary` (`no_entry`
    without one); a confirm without a value asks for the slot, an inform without one says
    the system cannot tell (`unknown`).
    """
    intent, slot, value = turn.act.intent, turn.act.slot, turn.value
    if intent in ("offer", "book"):
        if turn.entry is None:
            return _fill(domain, "system", "no_entry", rng, entity=domain.entity)
        summary = _fill(domain, "system", "summary", rng, **kb.entry(turn.entry))
        return _fill(domain, "system", intent, rng, entity=domain.entity, summary=summary)
    if intent in ("confirm", "inform") and value is None:
        intent = "request" if intent == "confirm" else "unknown"
    return _fill(domain, "system", intent, rng, slot=slot, value=value, entity=domain.entity)


def render_goal(goal: UserGoal, domain: Domain) -> str:
    """One line describing `goal`: its constraints, its requests, whether any entry fits (and
    what the user settles for when none does)."""
    constraints = ", ".join(f"{slot}={value}" for slot, value in goal.constraints.items())
    requests = ", ".join(goal.requests) or "none"
    feasible = "feasible" if goal.feasible else "infeasible"
    if goal.fallback:
        feasible += " (falls back to " + ", ".join(f"{k}={v}" for k, v in goal.fallback.items()) + ")"
    return f"{domain.name} goal: {constraints}; requests: {requests}; {feasible}"


def _templates(domain: Domain, side: str, key: str) -> tuple[str, ...]:
    found = domain.templates.get(side, {}).get(key)
    if not found:
        raise ConfigError(
            f"domain {domain.name!r} has no templates.{side}.{key}: add a list of sentences for it "
            "to the domain file (see textdqn/envs/dialogue/domains/movies.yaml)"
        )
    return found


def _fill(domain: Domain, side: str, key: str, rng: np.random.Generator, **fields: object) -> str:
    variants = _templates(domain, side, key)
    template = variants[int(rng.integers(len(variants)))]
    try:
        return template.format(**fields)
    except (KeyError, IndexError) as e:
        raise ConfigError(
            f"domain {domain.name!r}: templates.{side}.{key} {template!r} uses placeholder {e}, "
            f"which is not available there; available: {sorted(fields)}"
        ) from None


# --- tokens ---


def build_tokenizer(domain: Domain) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over every word `domain`'s dialogues can contain.

    The vocabulary is the special tokens (ids 0..4, see SPECIAL_TOKENS), the turn counters
    (ids 5..68, TURN_TOKENS), then, sorted, every word of the templates (each placeholder
    filled with each of its possible values), the slot names, the slot values and the entity:
    the same ids in every process. Text is lowercased and split at whitespace and at each
    punctuation character.
    """
    return word_level_tokenizer(
        _all_text(domain),
        SPECIAL_TOKENS + TURN_TOKENS,
        pad_token="[PAD]",
        cls_token="[CLS]",
        extra_special_tokens=[*SPEAKERS.values(), *TURN_TOKENS],
    )


def _all_text(domain: Domain) -> Iterator[str]:
    values = {v for slot in domain.slots for v in domain.values(slot)}
    candidates: dict[str, Sequence[str]] = {
        "slot": domain.slots,
        "value": sorted(values | {DONT_CARE}),
        "entity": (domain.entity,),
        **domain.kb_slots,
    }
    system = domain.templates.get("system", {})
    candidates["summary"] = sorted(set(_variants(domain, system.get("summary", ()), candidates)))
    yield from (*domain.slots, *candidates["value"], domain.entity, _JOIN)
    for side in domain.templates.values():
        for templates in side.values():
            yield from _variants(domain, templates, candidates)


def _variants(domain: Domain, templates: Sequence[str], candidates: dict) -> Iterator[str]:
    """Each template with one placeholder at a time taking each of its candidate values (the
    others their first): every word next to every placeholder value, at linear cost."""
    for template in templates:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        unknown = sorted(set(names) - set(candidates))
        if unknown:
            raise ConfigError(
                f"domain {domain.name!r}: template {template!r} uses unknown placeholders {unknown}; "
                f"known: {sorted(candidates)}"
            )
        first = {name: candidates[name][0] for name in names}
        yield template.format(**first)
        for name in dict.fromkeys(names):
            for value in candidates[name]:
                yield template.format(**{**first, name: value})


def check_max_tokens(max_tokens: int) -> None:
    """ValueError unless `max_tokens` holds [CLS], the turn counter and one token."""
    if max_tokens < 3:
        raise ValueError(f"max_tokens must be >= 3 ([CLS], the turn counter and one token), got {max_tokens}")


def encode_dialogue(
    tokenizer: PreTrainedTokenizerFast, turns: Sequence[tuple[str, str]], max_tokens: int
) -> np.ndarray:
    """uint16 [max_tokens] token ids of a transcript of (speaker, text) turns.

    [CLS], the turn counter [Tk] (k = the system turns so far), then each turn opened by [USR]
    or [SYS] (speaker "user" or "system"). When too long, [CLS] and [Tk] stay first and the
    most recent tokens are kept; the rest is padded with 0.

    The counter is how far the dialogue has gone even once its start is cut off: without it a
    dialogue that repeats itself reads the same at every turn, and the looming failure at the
    turn limit cannot be told from the observation (the vector observation has `turn` for the
    same reason).
    """
    return TranscriptEncoder(tokenizer, max_tokens).encode(turns)


class TranscriptEncoder:
    """`encode_dialogue` for a transcript that grows a turn at a time: each turn is tokenized
    once, when it first appears, instead of the whole dialogue again at every step.

    `encode(turns)` reuses what it tokenized for the same list object if the list only grew
    since (the env appends to one list per episode and starts a new list at reset); for any
    other list it starts over.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerFast, max_tokens: int) -> None:
        check_max_tokens(max_tokens)
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self._marker = {
            speaker: tokenizer.convert_tokens_to_ids(token) for speaker, token in SPEAKERS.items()
        }
        self._cls = tokenizer.convert_tokens_to_ids("[CLS]")
        self._turn_ids = [tokenizer.convert_tokens_to_ids(t) for t in TURN_TOKENS]
        self._source: Sequence[tuple[str, str]] | None = None
        self._ids: list[int] = []  # every turn so far, each opened by its speaker's marker
        self._done = 0  # turns of _source in _ids
        self._system_turns = 0

    def encode(self, turns: Sequence[tuple[str, str]]) -> np.ndarray:
        """uint16 [max_tokens], as `encode_dialogue(tokenizer, turns, max_tokens)`."""
        if turns is not self._source or len(turns) < self._done:
            self._source, self._ids, self._done, self._system_turns = turns, [], 0, 0
        new = turns[self._done :]
        unknown = {speaker for speaker, _ in new} - set(SPEAKERS)
        if unknown:
            raise ValueError(f"transcript speakers must be one of {sorted(SPEAKERS)}, got {sorted(unknown)}")
        if new:
            encoded = self.tokenizer.backend_tokenizer.encode_batch(
                [t for _, t in new], add_special_tokens=False
            )
            for (speaker, _), e in zip(new, encoded, strict=True):
                self._ids += (self._marker[speaker], *e.ids)
            self._system_turns += sum(speaker == "system" for speaker, _ in new)
            self._done = len(turns)
        body = self._ids[-(self.max_tokens - 2) :]  # the most recent tokens
        out = np.full(self.max_tokens, PAD_ID, dtype=np.uint16)
        out[0] = self._cls
        out[1] = self._turn_ids[min(self._system_turns, len(self._turn_ids) - 1)]
        out[2 : 2 + len(body)] = body
        return out
